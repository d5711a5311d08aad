#include "TestCgroup.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <linux/sched.h>
#include <sstream>
#include <stdexcept>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>

namespace rdtmon::test {
namespace {

// The cgroup2 mount, else a v1 hierarchy where the test process may make cgroups.
std::string cgroupParent() {
    std::ifstream in("/proc/self/mountinfo");
    std::string v2;
    std::string v1;
    for (std::string line; std::getline(in, line);) {
        std::istringstream f(line);
        std::string id, parent, dev, root, mp, opts, word;
        f >> id >> parent >> dev >> root >> mp >> opts;
        while (f >> word && word != "-") {
        }
        std::string fstype, source, super;
        f >> fstype >> source >> super;
        if (root != "/") {
            continue;
        }
        if (fstype == "cgroup2" && v2.empty()) {
            v2 = mp;
        } else if (fstype == "cgroup" && super.find("pids") != std::string::npos && v1.empty()) {
            v1 = mp;
        }
    }
    return !v2.empty() ? v2 : v1;
}

bool writeText(const std::string& path, const std::string& text) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ::close(fd);
    return ok;
}

std::vector<pid_t> readPids(const std::string& path) {
    std::ifstream in(path);
    std::vector<pid_t> out;
    for (long p = 0; in >> p;) {
        out.push_back(static_cast<pid_t>(p));
    }
    return out;
}

std::atomic<unsigned> counter{0};

} // namespace

bool TestCgroup::available() {
    return ::geteuid() == 0 && !cgroupParent().empty();
}

TestCgroup::TestCgroup() : parent_(cgroupParent()) {
    if (parent_.empty()) {
        throw std::runtime_error("no cgroup mount to make a test cgroup in");
    }
    dir_ = parent_ + "/rdtmon-test-" + std::to_string(::getpid()) + "-" +
           std::to_string(counter.fetch_add(1));
    if (::mkdir(dir_.c_str(), 0755) != 0) {
        throw std::runtime_error("mkdir " + dir_ + ": " + std::strerror(errno));
    }
}

TestCgroup::~TestCgroup() {
    for (int round = 0; round < 200; ++round) {
        std::vector<pid_t> left = procs();
        if (left.empty()) {
            break;
        }
        for (pid_t p : left) {
            if (p == ::getpid()) {
                writeText(parent_ + "/cgroup.procs", std::to_string(p));
            } else {
                ::kill(p, SIGKILL);
            }
        }
        if (round >= 100) {
            // Not gone in a second (unkillable, or a zombie nobody reaps): move them out.
            for (pid_t p : left) {
                writeText(parent_ + "/cgroup.procs", std::to_string(p));
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    for (int i = 0; i < 100 && ::rmdir(dir_.c_str()) != 0 && errno == EBUSY; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

void TestCgroup::add(pid_t pid) const {
    if (!writeText(dir_ + "/cgroup.procs", std::to_string(pid))) {
        throw std::runtime_error("cannot move " + std::to_string(pid) + " into " + dir_ + ": " +
                                 std::strerror(errno));
    }
}

std::vector<pid_t> TestCgroup::procs() const {
    return readPids(dir_ + "/cgroup.procs");
}

pid_t TestCgroup::spawnInto() const {
    const int dir = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) {
        throw std::runtime_error("open " + dir_ + ": " + std::strerror(errno));
    }
    clone_args args{};
    args.flags = CLONE_INTO_CGROUP;
    args.exit_signal = SIGCHLD;
    args.cgroup = static_cast<uint64_t>(dir);
    const long pid = ::syscall(SYS_clone3, &args, sizeof args);
    const int err = errno;
    if (pid == 0) {
        // Only async-signal-safe calls: the test process has threads.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;) {
            ::pause();
        }
    }
    ::close(dir);
    if (pid < 0) {
        throw std::runtime_error("clone3(CLONE_INTO_CGROUP) into " + dir_ + ": " +
                                 std::strerror(err));
    }
    return static_cast<pid_t>(pid);
}

} // namespace rdtmon::test
