#include "NetworkNamespace.h"

#include "Subprocess.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sched.h>
#include <stdexcept>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace rdtmon::test {

namespace {

void ip(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"ip"};
    argv.insert(argv.end(), args.begin(), args.end());
    const CommandResult r = runCommand(argv);
    if (r.exitCode != 0) {
        std::string cmd;
        for (const std::string& a : argv) {
            cmd += a;
            cmd += ' ';
        }
        throw std::runtime_error("network namespace: " + cmd + "failed: " + r.err);
    }
}

} // namespace

NetworkNamespace::NetworkNamespace(std::string hostIf, std::string hostAddr, std::string nodeAddr)
    : hostIf_(std::move(hostIf)), hostAddr_(std::move(hostAddr)), nodeAddr_(std::move(nodeAddr)) {
    // A pair left by a crashed run whose namespace is still held would make the add fail.
    runCommand({"ip", "link", "del", hostIf_});
    int ready[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) {
        throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
    }
    const pid_t parent = ::getpid();
    holder_ = ::fork();
    if (holder_ < 0) {
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    }
    if (holder_ == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent || ::unshare(CLONE_NEWNET) != 0) {
            ::_exit(1);
        }
        const char ok = 1;
        (void)!::write(ready[1], &ok, 1);
        for (;;) {
            ::pause();
        }
    }
    ::close(ready[1]);
    char ok = 0;
    const ssize_t n = ::read(ready[0], &ok, 1);
    ::close(ready[0]);
    try {
        if (n != 1) {
            throw std::runtime_error("network namespace: the holder could not unshare (root?)");
        }
        ns_.reset(
            ::open(("/proc/" + std::to_string(holder_) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC));
        if (!ns_) {
            throw std::runtime_error(std::string("open ns/net: ") + std::strerror(errno));
        }
        ip({"link", "add", hostIf_, "type", "veth", "peer", "name", "eth0", "netns",
            std::to_string(holder_)});
        ip({"addr", "add", hostAddr_ + "/24", "dev", hostIf_});
        ip({"link", "set", hostIf_, "up"});
        Inside in(*this);
        ip({"addr", "add", nodeAddr_ + "/24", "dev", "eth0"});
        ip({"link", "set", "eth0", "up"});
        ip({"link", "set", "lo", "up"});
    } catch (...) {
        ::kill(holder_, SIGKILL);
        ::waitpid(holder_, nullptr, 0);
        runCommand({"ip", "link", "del", hostIf_});
        throw;
    }
}

NetworkNamespace::~NetworkNamespace() {
    ::kill(holder_, SIGKILL);
    ::waitpid(holder_, nullptr, 0);
    // Gone with the namespace, unless a process started inside still holds it.
    runCommand({"ip", "link", "del", hostIf_});
}

NetworkNamespace::Inside::Inside(const NetworkNamespace& ns)
    : home_(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) {
    if (!home_ || ::setns(ns.ns_.get(), CLONE_NEWNET) != 0) {
        throw std::runtime_error(std::string("setns into the node's network namespace: ") +
                                 std::strerror(errno));
    }
}

NetworkNamespace::Inside::~Inside() {
    // Back home; a thread left in the node's namespace would start the next node's
    // processes there too.
    if (::setns(home_.get(), CLONE_NEWNET) != 0) {
        std::abort();
    }
}

} // namespace rdtmon::test
