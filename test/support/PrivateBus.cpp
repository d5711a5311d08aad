#include "PrivateBus.h"

#include "Subprocess.h"
#include "TestUtil.h"
#include "UniqueFd.h"

#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>

namespace rdtmon::test {

namespace {
using Clock = std::chrono::steady_clock;
} // namespace

namespace {
bool canConnect(const std::string& socketPath) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (!fd || socketPath.size() >= sizeof sa.sun_path) {
        return false;
    }
    std::memcpy(sa.sun_path, socketPath.c_str(), socketPath.size() + 1);
    return ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0;
}
} // namespace

PrivateBus::PrivateBus(Policy policy, const std::string& policyFile) : dir_("rdtmon-bus") {
    // Users other than root (nobody) must reach the socket.
    ::chmod(dir_.path().c_str(), 0755);
    const std::string socket = dir_.file("bus.sock");
    address_ = "unix:path=" + socket;
    // One template for every private bus (tests, demo, runtimes, bench).
    std::string conf = readFile(RDTMON_SOURCE_DIR "/test/support/private-bus.conf.in");
    auto fill = [&](const std::string& key, const std::string& value) {
        std::string::size_type at = conf.find(key);
        if (at == std::string::npos) {
            throw std::runtime_error("private-bus.conf.in has no " + key);
        }
        for (; at != std::string::npos; at = conf.find(key, at + value.size())) {
            conf.replace(at, key.size(), value);
        }
    };
    fill("@LISTEN@", address_);
    fill("@POLICY_FILE@", policyFile);
    if (policy == Policy::Permissive) {
        fill("</busconfig>", R"(  <policy context="mandatory">
    <allow send_destination="org.rdtmon1"/>
  </policy>
</busconfig>)");
    }
    std::ofstream(dir_.file("bus.conf")) << conf;

    pid_ = spawnLogged({"dbus-daemon", "--config-file=" + dir_.file("bus.conf"), "--nofork",
                        "--nopidfile", "--nosyslog"},
                       mergedEnv({}), dir_.file("dbus-daemon.log"), false);
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline) {
        // The socket file appears at bind(), before listen(): only a connect that succeeds
        // shows the bus is ready (a loaded machine otherwise sees "Connection refused").
        if (canConnect(socket)) {
            return;
        }
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error("dbus-daemon exited at start-up");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ::kill(pid_, SIGKILL);
    waitForExit(pid_, std::chrono::milliseconds(5000));
    pid_ = -1;
    throw std::runtime_error("dbus-daemon did not create its socket in 10 s");
}

PrivateBus::~PrivateBus() {
    if (pid_ > 0) {
        terminate(pid_, std::chrono::milliseconds(5000));
    }
}

std::string PrivateBus::log() const {
    return readFile(dir_.file("dbus-daemon.log"));
}

std::vector<std::string> PrivateBus::busctl(const std::vector<std::string>& args) const {
    std::vector<std::string> v = {"busctl", "--address=" + address_};
    v.insert(v.end(), args.begin(), args.end());
    return v;
}

bool PrivateBus::nameHasOwner(const std::string& name) const {
    CommandResult r = runCommand(busctl({"call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                         "org.freedesktop.DBus", "NameHasOwner", "s", name}));
    return r.exitCode == 0 && r.out.find("true") != std::string::npos;
}

pid_t PrivateBus::nameOwnerPid(const std::string& name) const {
    CommandResult r =
        runCommand(busctl({"call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                           "org.freedesktop.DBus", "GetConnectionUnixProcessID", "s", name}));
    if (r.exitCode != 0 || r.out.rfind("u ", 0) != 0) {
        return -1;
    }
    return static_cast<pid_t>(std::stol(r.out.substr(2)));
}

} // namespace rdtmon::test
