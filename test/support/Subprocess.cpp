#include "Subprocess.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdexcept>
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

// In a forked child: drop to uid/gid with no supplementary groups.
void dropPrivileges(uid_t uid, gid_t gid) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) {
        _exit(126);
    }
}

} // namespace

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

int waitStatusToCode(int status) {
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    if (WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    return -1;
}

std::optional<int> waitForExit(pid_t pid, std::chrono::milliseconds timeout) {
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

std::string runAsNobody(const std::function<std::string()>& fn) {
    Pipe out;
    const pid_t child = ::fork();
    if (child < 0) {
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    }
    if (child == 0) {
        std::string text = "setup failed";
        if (::setgroups(0, nullptr) == 0 && ::setresgid(65534, 65534, 65534) == 0 &&
            ::setresuid(65534, 65534, 65534) == 0) {
            text = fn();
        }
        [[maybe_unused]] ssize_t n = ::write(out.fd[1], text.data(), text.size());
        ::_exit(0);
    }
    out.closeWrite();
    std::string text;
    char buf[256];
    for (ssize_t n; (n = ::read(out.fd[0], buf, sizeof buf)) > 0;) {
        text.append(buf, static_cast<std::size_t>(n));
    }
    ::waitpid(child, nullptr, 0);
    return text;
}

std::optional<int> terminate(pid_t pid, std::chrono::milliseconds grace) {
    ::kill(pid, SIGTERM);
    if (std::optional<int> st = waitForExit(pid, grace)) {
        return st;
    }
    ::kill(pid, SIGKILL);
    waitForExit(pid, std::chrono::milliseconds(5000));
    return std::nullopt;
}

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
            // A program named by its path is opened while still root, so that another user
            // can run a binary of a checkout in a directory only root may enter (/root).
            const int exe =
                std::strchr(cargs[0], '/') != nullptr ? ::open(cargs[0], O_PATH | O_CLOEXEC) : -1;
            dropPrivileges(*opts.uid, opts.gid);
            if (exe >= 0) {
                ::execveat(exe, "", cargs.data(), cenv.data(), AT_EMPTY_PATH);
                _exit(127);
            }
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
        waitForExit(pid, res.timedOut ? std::chrono::milliseconds(5000)
                                      : std::max(rest, std::chrono::milliseconds(0)) +
                                            std::chrono::milliseconds(1000));
    if (!status) {
        ::kill(-pid, SIGKILL);
        ::kill(pid, SIGKILL);
        status = waitForExit(pid, std::chrono::milliseconds(5000));
        res.timedOut = true;
    }
    res.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started);
    res.exitCode = res.timedOut ? -1 : (status ? waitStatusToCode(*status) : -1);
    return res;
}

} // namespace rdtmon::test
