#include "BusFixture.h"

#include "TestUtil.h"
#include "UniqueFd.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <grp.h>
#include <poll.h>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace rdtmon::test {

namespace {

using Clock = std::chrono::steady_clock;

struct Pipe {
    int fd[2] = {-1, -1};
    Pipe() {
        if (::pipe2(fd, O_CLOEXEC) != 0) {
            throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
        }
    }
    ~Pipe() {
        closeRead();
        closeWrite();
    }
    void closeRead() {
        if (fd[0] >= 0) {
            ::close(fd[0]);
            fd[0] = -1;
        }
    }
    void closeWrite() {
        if (fd[1] >= 0) {
            ::close(fd[1]);
            fd[1] = -1;
        }
    }
};

std::vector<char*> cstrings(std::vector<std::string>& v) {
    std::vector<char*> out;
    out.reserve(v.size() + 1);
    for (std::string& s : v) {
        out.push_back(s.data());
    }
    out.push_back(nullptr);
    return out;
}

std::vector<std::string> mergedEnv(const std::vector<std::string>& extra) {
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        std::string entry(*e);
        std::string name = entry.substr(0, entry.find('='));
        bool overridden = false;
        for (const std::string& x : extra) {
            if (x.substr(0, x.find('=')) == name) {
                overridden = true;
            }
        }
        if (!overridden) {
            env.push_back(entry);
        }
    }
    env.insert(env.end(), extra.begin(), extra.end());
    return env;
}

// In a forked child: drop to uid/gid with no supplementary groups.
void dropPrivileges(uid_t uid, gid_t gid) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) {
        _exit(126);
    }
}

int waitStatusToCode(int status) {
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    if (WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    return -1;
}

// Waits up to timeout for pid to exit; returns its status or nullopt.
std::optional<int> waitFor(pid_t pid, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        int status = 0;
        pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            return status;
        }
        if (r < 0 && errno != EINTR) {
            return std::nullopt;
        }
        if (Clock::now() >= deadline) {
            return std::nullopt;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

// Forks and execs argv (PATH is searched) with env. stdin is /dev/null; stderr, and stdout
// too when stdoutToLog, append to logPath; otherwise stdout is /dev/null.
pid_t spawnLogged(std::vector<std::string> argv, std::vector<std::string> env,
                  const std::string& logPath, bool stdoutToLog) {
    std::vector<char*> cargs = cstrings(argv);
    std::vector<char*> cenv = cstrings(env);
    pid_t pid = ::fork();
    if (pid < 0) {
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
        int devnull = ::open("/dev/null", O_RDWR);
        int logfd = ::open(logPath.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        ::dup2(devnull, 0);
        ::dup2(stdoutToLog ? logfd : devnull, 1);
        ::dup2(logfd, 2);
        ::execvpe(cargs[0], cargs.data(), cenv.data());
        _exit(127);
    }
    return pid;
}

// SIGTERM, up to `grace` to exit, then SIGKILL and reap. The wait status when it stopped
// on SIGTERM, nullopt when it had to be killed.
std::optional<int> terminate(pid_t pid, std::chrono::milliseconds grace) {
    ::kill(pid, SIGTERM);
    if (std::optional<int> st = waitFor(pid, grace)) {
        return st;
    }
    ::kill(pid, SIGKILL);
    waitFor(pid, std::chrono::milliseconds(5000));
    return std::nullopt;
}

} // namespace

CommandResult runCommand(const std::vector<std::string>& argv, const CommandOptions& opts) {
    if (argv.empty()) {
        throw std::invalid_argument("runCommand: empty argv");
    }
    Pipe in, out, err;
    std::vector<std::string> args = argv;
    std::vector<std::string> env = mergedEnv(opts.env);
    std::vector<char*> cargs = cstrings(args);
    std::vector<char*> cenv = cstrings(env);
    const auto started = Clock::now();
    pid_t pid = ::fork();
    if (pid < 0) {
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
        ::dup2(in.fd[0], 0);
        ::dup2(out.fd[1], 1);
        ::dup2(err.fd[1], 2);
        ::setpgid(0, 0);
        if (opts.uid) {
            dropPrivileges(*opts.uid, opts.gid);
        }
        ::execvpe(cargs[0], cargs.data(), cenv.data());
        _exit(127);
    }
    in.closeRead();
    out.closeWrite();
    err.closeWrite();
    ::fcntl(in.fd[1], F_SETFL, O_NONBLOCK);
    std::signal(SIGPIPE, SIG_IGN);

    CommandResult res;
    size_t written = 0;
    if (opts.stdinText.empty()) {
        in.closeWrite();
    }
    const auto deadline = started + opts.timeout;
    while (out.fd[0] >= 0 || err.fd[0] >= 0) {
        pollfd fds[3] = {{out.fd[0], POLLIN, 0}, {err.fd[0], POLLIN, 0}, {in.fd[1], POLLOUT, 0}};
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) {
            res.timedOut = true;
            ::kill(-pid, SIGKILL);
            ::kill(pid, SIGKILL);
            break;
        }
        int r = ::poll(fds, 3, static_cast<int>(left.count()));
        if (r < 0 && errno != EINTR) {
            break;
        }
        char buf[65536];
        for (int i = 0; i < 2; ++i) {
            if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
                if (n > 0) {
                    (i == 0 ? res.out : res.err).append(buf, static_cast<size_t>(n));
                } else if (n == 0 || errno != EINTR) {
                    (i == 0 ? out : err).closeRead();
                }
            }
        }
        if (in.fd[1] >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n =
                ::write(in.fd[1], opts.stdinText.data() + written, opts.stdinText.size() - written);
            if (n > 0) {
                written += static_cast<size_t>(n);
            }
            if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == opts.stdinText.size()) {
                in.closeWrite();
            }
        }
    }
    in.closeWrite();
    // The pipes are closed (or it timed out): give the process the rest of its time to exit.
    auto rest = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    std::optional<int> status =
        waitFor(pid, res.timedOut ? std::chrono::milliseconds(5000)
                                  : std::max(rest, std::chrono::milliseconds(0)) +
                                        std::chrono::milliseconds(1000));
    if (!status) {
        ::kill(-pid, SIGKILL);
        ::kill(pid, SIGKILL);
        status = waitFor(pid, std::chrono::milliseconds(5000));
        res.timedOut = true;
    }
    res.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started);
    res.exitCode = res.timedOut ? -1 : (status ? waitStatusToCode(*status) : -1);
    return res;
}

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
    waitFor(pid_, std::chrono::milliseconds(5000));
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

Rdtmond::Rdtmond(const PrivateBus& bus, Options opts)
    : bus_(bus), opts_(std::move(opts)), dir_("rdtmond") {
    if (opts_.stateDir.empty()) {
        opts_.stateDir = dir_.file("state");
    }
    start();
}

Rdtmond::~Rdtmond() {
    if (pid_ > 0) {
        terminate(pid_, std::chrono::milliseconds(10000));
        pid_ = -1;
    }
}

void Rdtmond::start() {
    if (pid_ > 0) {
        throw std::logic_error("rdtmond already running");
    }
    {
        std::ofstream cfg(configPath());
        cfg << opts_.configJson;
    }
    std::vector<std::string> args = {RDTMOND_BIN,   "--config",    configPath(),   "--resctrl",
                                     opts_.resctrl, "--state-dir", opts_.stateDir, "--no-mount"};
    args.insert(args.end(), opts_.extraArgs.begin(), opts_.extraArgs.end());
    pid_ =
        spawnLogged(std::move(args), mergedEnv({bus_.envEntry()}), dir_.file("rdtmond.log"), true);
    if (!opts_.waitReady) {
        return;
    }
    auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline) {
        if (!running()) {
            throw std::runtime_error("rdtmond exited at start-up (status " +
                                     std::to_string(lastStatus_) + "):\n" + log());
        }
        // The owner must be this process: right after a kill -9 the old one may linger.
        if (bus_.nameOwnerPid("org.rdtmon1") == pid_) {
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    throw std::runtime_error("rdtmond did not take its bus name in 20 s:\n" + log());
}

void Rdtmond::stop() {
    if (pid_ <= 0) {
        return;
    }
    std::optional<int> st = terminate(pid_, std::chrono::milliseconds(10000));
    if (!st) {
        pid_ = -1;
        throw std::runtime_error("rdtmond did not stop on SIGTERM within 10 s");
    }
    lastStatus_ = waitStatusToCode(*st);
    pid_ = -1;
}

void Rdtmond::kill9() {
    if (pid_ <= 0) {
        return;
    }
    ::kill(pid_, SIGKILL);
    if (std::optional<int> st = waitFor(pid_, std::chrono::milliseconds(5000))) {
        lastStatus_ = waitStatusToCode(*st);
    }
    pid_ = -1;
}

bool Rdtmond::running() {
    if (pid_ <= 0) {
        return false;
    }
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
        lastStatus_ = waitStatusToCode(status);
        pid_ = -1;
        return false;
    }
    return true;
}

std::string Rdtmond::log() const {
    return readFile(dir_.file("rdtmond.log"));
}

} // namespace rdtmon::test
