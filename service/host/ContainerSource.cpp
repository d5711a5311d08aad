#include "ContainerSource.h"

#include "ContainerId.h"
#include "Errors.h"
#include "UniqueFd.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <spawn.h>
#include <string_view>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

namespace rdtmon {
namespace {

constexpr std::size_t kMaxOutput = 16u << 20; // 16 MiB of ids is far more than any host has
constexpr std::size_t kMaxStderr = 4096;      // kept for the error message

[[noreturn]] void fail(const std::string& msg) {
    throw Error(ErrorKind::Failed, msg);
}

std::string joinWords(const std::vector<std::string>& words, const char* sep) {
    std::string s;
    for (const auto& w : words) {
        if (!s.empty()) {
            s += sep;
        }
        s += w;
    }
    return s;
}

bool hasGlobMagic(const std::string& p) {
    return p.find_first_of("*?[\\") != std::string::npos;
}

// Adds the ids of every subdirectory of `root` to `out`. Returns false (without throwing)
// when the root does not exist, or when it is not a directory and `skipNonDir` is set.
bool listRoot(const std::string& root, bool skipNonDir, std::set<std::string>& out) {
    UniqueFd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) {
        int err = errno;
        if (err == ENOENT || (err == ENOTDIR && skipNonDir)) {
            return false;
        }
        fail("cannot read container state root " + root + ": " + std::strerror(err));
    }
    DIR* d = ::fdopendir(fd.get());
    if (d == nullptr) {
        fail("cannot read container state root " + root + ": " + std::strerror(errno));
    }
    fd.release(); // now owned by d
    struct DirCloser {
        DIR* d;
        ~DirCloser() { ::closedir(d); }
    } closer{d};
    for (;;) {
        errno = 0;
        dirent* e = ::readdir(d);
        if (e == nullptr) {
            if (errno != 0) {
                fail("cannot read container state root " + root + ": " + std::strerror(errno));
            }
            break;
        }
        if (e->d_name[0] == '.') {
            continue; // ".", "..", and hidden entries (e.g. runc's lock files)
        }
        bool isDir = false;
        if (e->d_type == DT_DIR) {
            isDir = true;
        } else if (e->d_type == DT_UNKNOWN) {
            struct stat st {};
            isDir = ::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                    S_ISDIR(st.st_mode);
        }
        if (isDir && isValidContainerId(e->d_name)) {
            out.emplace(e->d_name);
        }
    }
    return true;
}

int globError(const char* /*path*/, int err) {
    // A directory on the way that does not exist is "nothing there"; anything else means the
    // list would be incomplete.
    return (err == ENOENT || err == ENOTDIR) ? 0 : 1;
}

struct GlobGuard {
    glob_t g{};
    ~GlobGuard() { ::globfree(&g); }
};

int64_t monotonicMs() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::string formatSeconds(std::chrono::milliseconds ms) {
    auto n = ms.count();
    if (n % 1000 == 0) {
        return std::to_string(n / 1000) + "s";
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3gs", static_cast<double>(n) / 1000.0);
    return buf;
}

// The spawned child, in its own process group. The destructor kills the whole group and
// reaps the child, so no path out of CommandSource::list leaves a process or a zombie.
class Child {
public:
    explicit Child(pid_t pid) : pid_(pid) {}
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    ~Child() {
        if (pid_ > 0) {
            kill();
            int status = 0;
            while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
            }
        }
    }
    void kill() const {
        if (pid_ > 0) {
            ::kill(-pid_, SIGKILL); // the group: a script's own children go too
            ::kill(pid_, SIGKILL);
        }
    }
    // Returns true and sets status when the child has exited (and is reaped).
    bool tryReap(int& status) {
        for (;;) {
            pid_t r = ::waitpid(pid_, &status, WNOHANG);
            if (r == pid_) {
                pid_ = -1;
                return true;
            }
            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r < 0) {
                // ECHILD: someone else reaped it (SIGCHLD ignored?); treat as a failure.
                pid_ = -1;
                status = -1;
                return true;
            }
            return false;
        }
    }
    pid_t pid() const { return pid_; }

private:
    pid_t pid_;
};

struct SpawnActions {
    posix_spawn_file_actions_t fa{};
    SpawnActions() { posix_spawn_file_actions_init(&fa); }
    ~SpawnActions() { posix_spawn_file_actions_destroy(&fa); }
};
struct SpawnAttr {
    posix_spawnattr_t attr{};
    SpawnAttr() { posix_spawnattr_init(&attr); }
    ~SpawnAttr() { posix_spawnattr_destroy(&attr); }
};

std::string firstLine(const std::string& s) {
    std::size_t b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) {
        return {};
    }
    std::size_t e = s.find('\n', b);
    std::string line = s.substr(b, e == std::string::npos ? std::string::npos : e - b);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) {
        line.pop_back();
    }
    return line;
}

} // namespace

StateDirSource::StateDirSource(std::vector<std::string> patterns, bool adopt)
    : patterns_(std::move(patterns)), adopt_(adopt) {}

std::string StateDirSource::describe() const {
    return "state dirs " + joinWords(patterns_, ", ");
}

std::vector<StateDirSource::Root> StateDirSource::roots() const {
    std::vector<Root> out;
    for (const auto& pattern : patterns_) {
        if (!hasGlobMagic(pattern)) {
            out.push_back({pattern, false});
            continue;
        }
        GlobGuard gg;
        int rc = ::glob(pattern.c_str(), GLOB_NOSORT | GLOB_ONLYDIR, globError, &gg.g);
        if (rc == GLOB_NOMATCH) {
            continue;
        }
        if (rc == GLOB_ABORTED) {
            fail("cannot read container state roots " + pattern +
                 ": a directory could not be read");
        }
        if (rc == GLOB_NOSPACE) {
            fail("cannot expand container state roots " + pattern + ": out of memory");
        }
        if (rc != 0) {
            fail("cannot expand container state roots " + pattern);
        }
        for (std::size_t i = 0; i < gg.g.gl_pathc; ++i) {
            // GLOB_ONLYDIR is only a hint: a matched file is skipped, not an error.
            out.push_back({gg.g.gl_pathv[i], true});
        }
    }
    return out;
}

std::set<std::string> StateDirSource::list() const {
    std::set<std::string> ids;
    for (const Root& root : roots()) {
        listRoot(root.path, root.skipNonDir, ids);
    }
    return ids;
}

std::vector<RuntimeContainer>
StateDirSource::inspect(const std::set<std::string>& ids,
                        std::map<std::string, std::string>& whyNot) const {
    std::vector<RuntimeContainer> out;
    if (!adopt_ || ids.empty()) {
        return out;
    }
    std::set<std::string> left = ids;
    for (const Root& root : roots()) {
        std::set<std::string> here;
        if (!listRoot(root.path, root.skipNonDir, here)) {
            continue;
        }
        for (const std::string& id : here) {
            if (left.count(id) == 0) {
                continue;
            }
            left.erase(id);
            std::string why;
            if (std::optional<RuntimeContainer> c = readRuntimeContainer(root.path, id, why)) {
                whyNot.erase(id);
                out.push_back(std::move(*c));
            } else {
                whyNot[id] = why;
            }
        }
    }
    return out;
}

CommandSource::CommandSource(std::vector<std::string> argv, std::chrono::milliseconds timeout)
    : argv_(std::move(argv)), timeout_(timeout) {}

std::string CommandSource::describe() const {
    return "command " + joinWords(argv_, " ");
}

std::set<std::string> CommandSource::list() const {
    const std::string what = "command `" + joinWords(argv_, " ") + "`";
    if (argv_.empty() || argv_[0].empty()) {
        fail("container source command is empty");
    }
    int outPipe[2];
    int errPipe[2];
    if (::pipe2(outPipe, O_CLOEXEC) != 0) {
        fail("cannot run " + what + ": pipe: " + std::strerror(errno));
    }
    UniqueFd outRead(outPipe[0]), outWrite(outPipe[1]);
    if (::pipe2(errPipe, O_CLOEXEC) != 0) {
        fail("cannot run " + what + ": pipe: " + std::strerror(errno));
    }
    UniqueFd errRead(errPipe[0]), errWrite(errPipe[1]);

    SpawnActions actions;
    posix_spawn_file_actions_addopen(&actions.fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions.fa, outWrite.get(), 1);
    posix_spawn_file_actions_adddup2(&actions.fa, errWrite.get(), 2);
    posix_spawn_file_actions_addclosefrom_np(&actions.fa, 3);
    SpawnAttr attr;
    sigset_t none;
    sigemptyset(&none);
    sigset_t all;
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr.attr, &none);
    // Signals the daemon handles must not stay ignored in the child either.
    posix_spawnattr_setsigdefault(&attr.attr, &all);
    posix_spawnattr_setpgroup(&attr.attr, 0);
    posix_spawnattr_setflags(&attr.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                             POSIX_SPAWN_SETSIGDEF);

    std::vector<char*> argv;
    for (const auto& a : argv_) {
        argv.push_back(const_cast<char*>(a.c_str()));
    }
    argv.push_back(nullptr);

    pid_t pid = -1;
    int rc = ::posix_spawnp(&pid, argv_[0].c_str(), &actions.fa, &attr.attr, argv.data(), environ);
    if (rc != 0) {
        fail("cannot run " + what + ": " + std::strerror(rc));
    }
    Child child(pid);
    outWrite.reset();
    errWrite.reset();

    const int64_t deadline = monotonicMs() + timeout_.count();
    std::string out;
    std::string err;
    bool outOpen = true;
    bool errOpen = true;
    char buf[65536];
    auto timedOut = [&]() -> void {
        child.kill();
        fail(what + " timed out after " + formatSeconds(timeout_));
    };
    while (outOpen || errOpen) {
        int64_t left = deadline - monotonicMs();
        if (left <= 0) {
            timedOut();
        }
        pollfd fds[2];
        nfds_t n = 0;
        if (outOpen) {
            fds[n++] = {outRead.get(), POLLIN, 0};
        }
        if (errOpen) {
            fds[n++] = {errRead.get(), POLLIN, 0};
        }
        int pr = ::poll(fds, n, static_cast<int>(std::min<int64_t>(left, 1000000)));
        if (pr < 0) {
            if (errno == EINTR) {
                continue;
            }
            fail("cannot read the output of " + what + ": poll: " + std::strerror(errno));
        }
        for (nfds_t i = 0; i < n; ++i) {
            if (fds[i].revents == 0) {
                continue;
            }
            bool isOut = fds[i].fd == outRead.get();
            ssize_t r = ::read(fds[i].fd, buf, sizeof buf);
            if (r < 0) {
                if (errno == EINTR || errno == EAGAIN) {
                    continue;
                }
                fail("cannot read the output of " + what + ": " + std::strerror(errno));
            }
            if (r == 0) {
                (isOut ? outOpen : errOpen) = false;
                continue;
            }
            if (isOut) {
                out.append(buf, static_cast<std::size_t>(r));
                if (out.size() > kMaxOutput) {
                    child.kill();
                    fail(what + " printed more than 16 MiB");
                }
            } else if (err.size() < kMaxStderr) {
                err.append(buf, std::min(static_cast<std::size_t>(r), kMaxStderr - err.size()));
            }
        }
    }

    // Output is complete; the process must still exit within the deadline.
    int status = 0;
    while (!child.tryReap(status)) {
        int64_t left = deadline - monotonicMs();
        if (left <= 0) {
            timedOut();
        }
        timespec ts{0, static_cast<long>(std::min<int64_t>(left, 5)) * 1000000L};
        ::nanosleep(&ts, nullptr);
    }
    std::string detail = firstLine(err);
    std::string suffix = detail.empty() ? "" : ": " + detail;
    if (status == -1) {
        fail(what + ": exit status lost (was SIGCHLD ignored?)");
    }
    if (WIFSIGNALED(status)) {
        fail(what + " was killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
             strsignal(WTERMSIG(status)) + ")" + suffix);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fail(what + " exited with status " + std::to_string(WEXITSTATUS(status)) + suffix);
    }

    std::set<std::string> ids;
    std::size_t pos = 0;
    std::size_t lineNo = 0;
    while (pos < out.size()) {
        std::size_t nl = out.find('\n', pos);
        std::size_t end = nl == std::string::npos ? out.size() : nl;
        std::string_view line(out.data() + pos, end - pos);
        pos = end + 1;
        ++lineNo;
        while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) {
            line.remove_suffix(1);
        }
        if (line.empty()) {
            continue;
        }
        if (!isValidContainerId(line)) {
            std::string shown(line.substr(0, 64));
            for (char& c : shown) {
                if (!std::isprint(static_cast<unsigned char>(c))) {
                    c = '?';
                }
            }
            fail(what + " printed something that is not a container id on line " +
                 std::to_string(lineNo) + ": \"" + shown + "\"");
        }
        ids.emplace(line);
    }
    return ids;
}

std::vector<std::unique_ptr<ContainerSource>> makeSources(const std::vector<SourceConfig>& cfg) {
    std::vector<std::unique_ptr<ContainerSource>> out;
    for (const auto& s : cfg) {
        if (!s.command.empty()) {
            out.push_back(std::make_unique<CommandSource>(s.command, s.commandTimeout));
        } else {
            out.push_back(std::make_unique<StateDirSource>(s.stateDirs, s.adopt));
        }
    }
    return out;
}

} // namespace rdtmon
