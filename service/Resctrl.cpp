#include "Resctrl.h"

#include "Errors.h"
#include "Log.h"

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <linux/openat2.h>
#include <memory>
#include <set>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace rdtmon {
namespace {

constexpr long kResctrlSuperMagic = 0x7655821;
constexpr int kMaxMovePasses = 10;

// ---------------------------------------------------------------------------
// Small helpers

std::string trim(std::string_view s) {
    std::size_t b = 0;
    std::size_t e = s.size();
    while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\n' || s[b] == '\r')) {
        ++b;
    }
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\n' || s[e - 1] == '\r')) {
        --e;
    }
    return std::string(s.substr(b, e - b));
}

bool isReservedName(std::string_view n) {
    return n == "info" || n == "mon_groups" || n == "mon_data";
}

// Every name used as a path component is checked here, whatever the caller validated:
// no '/', no NUL, no newline (the kernel refuses it with EINVAL), not "." or "..".
void validateComponent(std::string_view name, std::string_view what) {
    std::string problem;
    if (name.empty()) {
        problem = "is empty";
    } else if (name == "." || name == "..") {
        problem = "is a relative directory name";
    } else if (name.find('/') != std::string_view::npos) {
        problem = "contains '/'";
    } else if (name.find('\0') != std::string_view::npos) {
        problem = "contains a NUL byte";
    } else if (name.find('\n') != std::string_view::npos) {
        problem = "contains a newline";
    }
    if (!problem.empty()) {
        throw Error(ErrorKind::InvalidArgument, std::string(what) + " name \"" +
                                                    std::string(name.substr(0, 200)) + "\" " +
                                                    problem);
    }
}

void validateRef(const MonGroupRef& g) {
    if (!g.ctrl.empty()) {
        validateComponent(g.ctrl, "CTRL_MON group");
        if (isReservedName(g.ctrl)) {
            throw Error(ErrorKind::InvalidArgument,
                        "CTRL_MON group name \"" + g.ctrl + "\" is a name reserved by resctrl");
        }
    }
    validateComponent(g.name, "MON group");
    if (isReservedName(g.name)) {
        throw Error(ErrorKind::InvalidArgument,
                    "MON group name \"" + g.name + "\" is a name reserved by resctrl");
    }
}

std::atomic<bool> g_haveOpenat2{true};

// Opens one directory component below dirfd without following a symlink. Returns the fd
// or -errno. ELOOP / ENOTDIR mean "a symlink or not a directory".
int openDirComponent(int dirfd, const std::string& name) {
    if (g_haveOpenat2.load(std::memory_order_relaxed)) {
        struct open_how how {};
        how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW;
        how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        long fd = ::syscall(SYS_openat2, dirfd, name.c_str(), &how, sizeof(how));
        if (fd >= 0) {
            return static_cast<int>(fd);
        }
        int err = errno;
        if (err != ENOSYS && err != E2BIG) {
            return -err;
        }
        g_haveOpenat2.store(false, std::memory_order_relaxed);
    }
    int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    return fd >= 0 ? fd : -errno;
}

// Opens a regular file below dirfd without following a symlink. fd or -errno.
int openFileComponent(int dirfd, const std::string& name, int flags) {
    int fd = ::openat(dirfd, name.c_str(), flags | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    return fd >= 0 ? fd : -errno;
}

struct ReadResult {
    int err = 0;
    std::string text;
};

ReadResult readAll(int fd) {
    ReadResult r;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            r.err = errno;
            return r;
        }
        if (n == 0) {
            return r;
        }
        r.text.append(buf, static_cast<std::size_t>(n));
    }
}

ReadResult readFileAt(int dirfd, const std::string& name) {
    int fd = openFileComponent(dirfd, name, O_RDONLY);
    if (fd < 0) {
        return ReadResult{-fd, {}};
    }
    UniqueFd f(fd);
    return readAll(f.get());
}

// Reads a file given by plain path (used for /proc only).
ReadResult readProcFile(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        return ReadResult{errno, {}};
    }
    UniqueFd f(fd);
    return readAll(f.get());
}

struct DirCloser {
    void operator()(DIR* d) const noexcept { ::closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

// Calls fn(name, d_type) for every entry of the directory dirfd (other than . and ..).
// Uses its own descriptor so dirfd's offset is untouched. Returns 0 or errno.
int forEachEntry(int dirfd, const std::function<void(const std::string&, unsigned char)>& fn) {
    int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return errno;
    }
    DIR* raw = ::fdopendir(fd);
    if (raw == nullptr) {
        int err = errno;
        ::close(fd);
        return err;
    }
    DirPtr dir(raw);
    for (;;) {
        errno = 0;
        struct dirent* de = ::readdir(dir.get());
        if (de == nullptr) {
            return errno;
        }
        std::string_view n = de->d_name;
        if (n == "." || n == "..") {
            continue;
        }
        fn(std::string(n), de->d_type);
    }
}

// Resolves DT_UNKNOWN (some filesystems do not fill d_type) without following symlinks.
unsigned char entryType(int dirfd, const std::string& name, unsigned char dtype) {
    if (dtype != DT_UNKNOWN) {
        return dtype;
    }
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return DT_UNKNOWN;
    }
    if (S_ISDIR(st.st_mode)) {
        return DT_DIR;
    }
    if (S_ISREG(st.st_mode)) {
        return DT_REG;
    }
    if (S_ISLNK(st.st_mode)) {
        return DT_LNK;
    }
    return DT_UNKNOWN;
}

std::string unescapeMountField(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' &&
            s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
            int v = (s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0');
            out += static_cast<char>(v);
            i += 3;
        } else {
            out += s[i];
        }
    }
    return out;
}

std::vector<std::string_view> splitSpaces(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && line[i] == ' ') {
            ++i;
        }
        std::size_t b = i;
        while (i < line.size() && line[i] != ' ') {
            ++i;
        }
        if (i > b) {
            out.push_back(line.substr(b, i - b));
        }
    }
    return out;
}

bool sameFile(const std::string& a, const std::string& b) {
    struct stat sa {};
    struct stat sb {};
    if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) {
        return false;
    }
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

bool procExists(pid_t pid) {
    struct stat st {};
    return ::stat(("/proc/" + std::to_string(pid)).c_str(), &st) == 0;
}

// The tids currently listed in /proc/PID/task, or nullopt when the process is gone.
std::optional<std::vector<pid_t>> threadsOf(pid_t pid) {
    std::string path = "/proc/" + std::to_string(pid) + "/task";
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ESRCH) {
            return std::nullopt;
        }
        throwErrno(errno,
                   "cannot list the threads of process " + std::to_string(pid) + " in " + path);
    }
    UniqueFd dfd(fd);
    std::vector<pid_t> tids;
    int err = forEachEntry(dfd.get(), [&](const std::string& n, unsigned char) {
        pid_t t = 0;
        auto [p, ec] = std::from_chars(n.data(), n.data() + n.size(), t);
        if (ec == std::errc() && p == n.data() + n.size() && t > 0) {
            tids.push_back(t);
        }
    });
    if (err == ENOENT || err == ESRCH) {
        return std::nullopt;
    }
    if (err != 0) {
        throwErrno(err,
                   "cannot list the threads of process " + std::to_string(pid) + " in " + path);
    }
    return tids;
}

} // namespace

void setUseOpenat2(bool enabled) {
    g_haveOpenat2.store(enabled, std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------
// Parsers

std::optional<uint64_t> parseCounterValue(std::string_view text) {
    std::string t = trim(text);
    if (t.empty()) {
        return std::nullopt;
    }
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v, 10);
    if (ec != std::errc() || p != t.data() + t.size()) {
        return std::nullopt; // Unavailable, Error, Unassigned, garbage, overflow
    }
    return v;
}

std::vector<pid_t> parseTaskList(std::string_view text) {
    std::vector<pid_t> out;
    std::size_t i = 0;
    while (i <= text.size()) {
        std::size_t nl = text.find('\n', i);
        if (nl == std::string_view::npos) {
            nl = text.size();
        }
        std::string line = trim(text.substr(i, nl - i));
        if (!line.empty()) {
            pid_t v = 0;
            auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), v, 10);
            if (ec == std::errc() && p == line.data() + line.size() && v > 0) {
                out.push_back(v);
            }
        }
        i = nl + 1;
    }
    return out;
}

std::optional<std::string> parseProcResctrl(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size()) {
        std::size_t nl = text.find('\n', i);
        if (nl == std::string_view::npos) {
            nl = text.size();
        }
        std::string_view line = text.substr(i, nl - i);
        if (line.substr(0, 4) == "res:") {
            std::string v = trim(line.substr(4));
            while (!v.empty() && v.front() == '/') {
                v.erase(v.begin());
            }
            while (!v.empty() && v.back() == '/') {
                v.pop_back();
            }
            // The kernel names one directory here; anything else (a nested path, "..", a
            // NUL) is not trusted as a group name (fuzzer finding): treat it as no line.
            if (v.find('/') != std::string::npos || v.find('\0') != std::string::npos || v == "." ||
                v == "..") {
                return std::nullopt;
            }
            return v;
        }
        i = nl + 1;
    }
    return std::nullopt;
}

// ---------------------------------------------------------------------------
// Mount

std::optional<std::string> Resctrl::findMount(const std::string& mountinfo) {
    std::ifstream in(mountinfo);
    if (!in) {
        return std::nullopt;
    }
    std::string line;
    while (std::getline(in, line)) {
        // id parent maj:min root mountpoint options [optional...] - fstype source superopts
        auto f = splitSpaces(line);
        if (f.size() < 8) {
            continue;
        }
        std::size_t sep = 0;
        for (std::size_t i = 6; i < f.size(); ++i) {
            if (f[i] == "-") {
                sep = i;
                break;
            }
        }
        if (sep == 0 || sep + 1 >= f.size()) {
            continue;
        }
        if (f[sep + 1] == "resctrl") {
            return unescapeMountField(f[4]);
        }
    }
    return std::nullopt;
}

void Resctrl::mount(const std::string& path, const std::string& options) {
    if (auto m = findMount(); m && (*m == path || sameFile(*m, path))) {
        return; // already mounted here
    }
    const char* data = options.empty() ? nullptr : options.c_str();
    if (::mount("resctrl", path.c_str(), "resctrl", 0, data) == 0) {
        log::info("mounted resctrl at " + path);
        return;
    }
    int err = errno;
    std::string what = "cannot mount resctrl at " + path +
                       (options.empty() ? std::string() : " with options \"" + options + "\"");
    switch (err) {
    case ENODEV:
        throw Error(ErrorKind::NotSupported,
                    what + ": the kernel has no resctrl filesystem (no RDT support, or "
                           "CONFIG_X86_CPU_RESCTRL is off)");
    case EINVAL:
        throw Error(ErrorKind::InvalidArgument,
                    what + ": " + errnoText(err) + " (an option is not supported by this CPU)");
    case EBUSY: {
        auto m = findMount();
        if (m && (*m == path || sameFile(*m, path))) {
            return;
        }
        if (m) {
            throw Error(ErrorKind::Failed, what + ": resctrl is already mounted at " + *m +
                                               "; configure that path instead");
        }
        throw Error(ErrorKind::Failed,
                    what + ": the kernel says it is already mounted, but not in this mount "
                           "namespace; it was probably mounted inside another (private) mount "
                           "namespace, e.g. by a sandboxed service. Mount it from the host's "
                           "mount namespace (rdtmond --mount-only as ExecStartPre=+)");
    }
    default:
        throw Error(ErrorKind::Failed, what + ": " + errnoText(err));
    }
}

// ---------------------------------------------------------------------------
// Resctrl

Resctrl::Resctrl(std::string path) : path_(std::move(path)) {
    while (path_.size() > 1 && path_.back() == '/') {
        path_.pop_back();
    }
    int fd = ::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        throw Error(ErrorKind::NotSupported,
                    "cannot open resctrl root " + path_ + ": " + errnoText(err));
    }
    root_.reset(fd);
    int info = openDirComponent(root_.get(), "info");
    if (info < 0) {
        throw Error(ErrorKind::NotSupported, path_ + " is not a resctrl filesystem: cannot open " +
                                                 path_ + "/info: " + errnoText(-info));
    }
    UniqueFd infoFd(info);
    struct statfs sfs {};
    if (::fstatfs(root_.get(), &sfs) == 0) {
        kernel_ = static_cast<long>(sfs.f_type) == kResctrlSuperMagic;
    }
}

std::string Resctrl::groupPath(const MonGroupRef& g) const {
    std::string p = path_ == "/" ? std::string() : path_;
    if (!g.ctrl.empty()) {
        p += "/" + g.ctrl;
    }
    p += "/mon_groups/" + g.name;
    return p;
}

namespace {

// Path of "<root>/<rel>" for messages.
std::string joinPath(const std::string& root, const std::string& rel) {
    return (root == "/" ? std::string() : root) + "/" + rel;
}

} // namespace

std::string Resctrl::lastCmdStatus() const {
    int info = openDirComponent(root_.get(), "info");
    if (info < 0) {
        return {};
    }
    UniqueFd infoFd(info);
    ReadResult r = readFileAt(infoFd.get(), "last_cmd_status");
    if (r.err != 0) {
        return {};
    }
    return trim(r.text);
}

bool Resctrl::monitoringSupported() const {
    int info = openDirComponent(root_.get(), "info");
    if (info < 0) {
        return false;
    }
    UniqueFd infoFd(info);
    int mon = openDirComponent(infoFd.get(), "L3_MON");
    if (mon < 0) {
        return false;
    }
    UniqueFd monFd(mon);
    return true;
}

namespace {

ReadResult readInfoL3Mon(int root, const std::string& file) {
    int info = openDirComponent(root, "info");
    if (info < 0) {
        return ReadResult{-info, {}};
    }
    UniqueFd infoFd(info);
    int mon = openDirComponent(infoFd.get(), "L3_MON");
    if (mon < 0) {
        return ReadResult{-mon, {}};
    }
    UniqueFd monFd(mon);
    return readFileAt(monFd.get(), file);
}

} // namespace

std::vector<std::string> Resctrl::monFeatures() const {
    std::vector<std::string> out;
    ReadResult r = readInfoL3Mon(root_.get(), "mon_features");
    if (r.err != 0) {
        return out;
    }
    std::size_t i = 0;
    while (i < r.text.size()) {
        std::size_t nl = r.text.find('\n', i);
        if (nl == std::string::npos) {
            nl = r.text.size();
        }
        std::string f = trim(std::string_view(r.text).substr(i, nl - i));
        if (!f.empty()) {
            out.push_back(std::move(f));
        }
        i = nl + 1;
    }
    return out;
}

unsigned Resctrl::numRmids() const {
    ReadResult r = readInfoL3Mon(root_.get(), "num_rmids");
    if (r.err != 0) {
        return 0;
    }
    std::string t = trim(r.text);
    unsigned v = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v, 10);
    if (ec != std::errc() || p != t.data() + t.size()) {
        return 0;
    }
    return v;
}

namespace {

// Appends " (kernel: <status>)" when info/last_cmd_status says something other than ok.
std::string withStatus(std::string msg, const std::string& status) {
    if (!status.empty() && status != "ok") {
        msg += " (kernel: " + status + ")";
    }
    return msg;
}

} // namespace

// Opens one directory component below dirfd. A missing one is NoSuchGroup with the message
// `missing`; a symlink or a non-directory is refused; any other errno maps per kindFromErrno
// with "cannot open <what>".
static UniqueFd openDirOrThrow(int dirfd, const std::string& name, const std::string& shownPath,
                               const std::string& missing, const std::string& what) {
    int fd = openDirComponent(dirfd, name);
    if (fd >= 0) {
        return UniqueFd(fd);
    }
    int err = -fd;
    if (err == ENOENT) {
        throw Error(ErrorKind::NoSuchGroup, missing);
    }
    if (err == ELOOP || err == ENOTDIR) {
        throw Error(ErrorKind::Failed,
                    "refusing to use " + shownPath + ": it is a symlink or not a directory");
    }
    throwErrno(err, "cannot open " + what);
}

// Opens <root>/<ctrl>/mon_groups, throwing NoSuchGroup when the CTRL_MON group is absent.
static UniqueFd openMonGroupsDir(int root, const std::string& rootPath, const std::string& ctrl) {
    UniqueFd base;
    int baseFd = root;
    if (!ctrl.empty()) {
        const std::string p = joinPath(rootPath, ctrl);
        base = openDirOrThrow(root, ctrl, p, "CTRL_MON group " + p + " does not exist",
                              "CTRL_MON group " + p);
        baseFd = base.get();
    }
    const std::string p = joinPath(rootPath, ctrl.empty() ? "mon_groups" : ctrl + "/mon_groups");
    return openDirOrThrow(baseFd, "mon_groups", p,
                          p + " does not exist (no such CTRL_MON group, or no monitoring support)",
                          p);
}

// Opens the MON group's directory, throwing NoSuchGroup when absent.
static UniqueFd openGroupDir(int root, const std::string& rootPath, const MonGroupRef& g,
                             const std::string& groupPath) {
    UniqueFd mg = openMonGroupsDir(root, rootPath, g.ctrl);
    return openDirOrThrow(mg.get(), g.name, groupPath, "MON group " + groupPath + " does not exist",
                          "MON group " + groupPath);
}

void Resctrl::createMonGroup(const MonGroupRef& g) {
    validateRef(g);
    const std::string gp = groupPath(g);
    UniqueFd mg;
    try {
        mg = openMonGroupsDir(root_.get(), path_, g.ctrl);
    } catch (const Error& e) {
        throw Error(e.kind(), "cannot create MON group " + gp + ": " + e.what());
    }
    if (::mkdirat(mg.get(), g.name.c_str(), 0755) != 0) {
        int err = errno;
        std::string status = lastCmdStatus();
        throw Error(
            kindFromErrno(err),
            withStatus("cannot create MON group " + gp + ": mkdir: " + errnoText(err), status));
    }
}

void Resctrl::removeMonGroup(const MonGroupRef& g) {
    validateRef(g);
    const std::string gp = groupPath(g);
    UniqueFd mg;
    try {
        mg = openMonGroupsDir(root_.get(), path_, g.ctrl);
    } catch (const Error& e) {
        throw Error(e.kind(), "cannot remove MON group " + gp + ": " + e.what());
    }
    // rmdir alone: the kernel moves the group's tasks to the parent and frees its RMID.
    if (::unlinkat(mg.get(), g.name.c_str(), AT_REMOVEDIR) != 0) {
        int err = errno;
        if (err == ENOENT) {
            throw Error(ErrorKind::NoSuchGroup,
                        "cannot remove MON group " + gp + ": it does not exist");
        }
        if (err == ENOTDIR) {
            throw Error(ErrorKind::Failed,
                        "cannot remove MON group " + gp + ": it is not a directory");
        }
        std::string status = lastCmdStatus();
        throw Error(
            kindFromErrno(err),
            withStatus("cannot remove MON group " + gp + ": rmdir: " + errnoText(err), status));
    }
}

bool Resctrl::monGroupExists(const MonGroupRef& g) const {
    validateRef(g);
    // A missing component, or one that is a symlink or not a directory, means "no group".
    auto absent = [](int err) { return err == ENOENT || err == ELOOP || err == ENOTDIR; };
    UniqueFd ctrl;
    int base = root_.get();
    if (!g.ctrl.empty()) {
        int fd = openDirComponent(root_.get(), g.ctrl);
        if (fd < 0) {
            if (absent(-fd)) {
                return false;
            }
            throwErrno(-fd, "cannot check MON group " + groupPath(g));
        }
        ctrl.reset(fd);
        base = fd;
    }
    for (const std::string& comp : {std::string("mon_groups"), g.name}) {
        int fd = openDirComponent(base, comp);
        if (fd < 0) {
            if (absent(-fd)) {
                return false;
            }
            throwErrno(-fd, "cannot check MON group " + groupPath(g));
        }
        ctrl.reset(fd);
        base = fd;
    }
    return true;
}

std::vector<MonGroupRef> Resctrl::listMonGroups() const {
    std::vector<MonGroupRef> out;
    auto listIn = [&](int mgFd, const std::string& ctrl) {
        int err = forEachEntry(mgFd, [&](const std::string& n, unsigned char t) {
            if (entryType(mgFd, n, t) == DT_DIR) {
                out.push_back(MonGroupRef{ctrl, n});
            }
        });
        if (err != 0 && err != ENOENT) {
            throwErrno(err, "cannot list " + joinPath(path_, ctrl.empty() ? "mon_groups"
                                                                          : ctrl + "/mon_groups"));
        }
    };

    std::vector<std::string> ctrls;
    int err = forEachEntry(root_.get(), [&](const std::string& n, unsigned char t) {
        if (isReservedName(n)) {
            return;
        }
        if (entryType(root_.get(), n, t) == DT_DIR) {
            ctrls.push_back(n);
        }
    });
    if (err != 0) {
        throwErrno(err, "cannot list " + path_);
    }

    int rootMg = openDirComponent(root_.get(), "mon_groups");
    if (rootMg >= 0) {
        UniqueFd f(rootMg);
        listIn(f.get(), "");
    } else if (-rootMg == ELOOP || -rootMg == ENOTDIR) {
        log::warning("resctrl: " + joinPath(path_, "mon_groups") +
                     " is a symlink or not a directory; ignored");
    } else if (-rootMg != ENOENT) {
        throwErrno(-rootMg, "cannot open " + joinPath(path_, "mon_groups"));
    }
    for (const auto& c : ctrls) {
        int cfd = openDirComponent(root_.get(), c);
        if (cfd < 0) {
            continue; // removed meanwhile, or a symlink
        }
        UniqueFd cf(cfd);
        int mg = openDirComponent(cf.get(), "mon_groups");
        if (mg < 0) {
            continue;
        }
        UniqueFd mf(mg);
        listIn(mf.get(), c);
    }
    return out;
}

std::string Resctrl::ctrlGroupOf(pid_t pid) const {
    if (pid <= 0) {
        throw Error(ErrorKind::InvalidArgument, "invalid pid " + std::to_string(pid));
    }
    const std::string ps = std::to_string(pid);
    if (kernel_) {
        ReadResult r = readProcFile("/proc/" + ps + "/resctrl");
        if (r.err == 0) {
            if (auto v = parseProcResctrl(r.text)) {
                return *v;
            }
        } else if (r.err == ESRCH || (r.err == ENOENT && !procExists(pid))) {
            throw Error(ErrorKind::NoSuchProcess, "process " + ps + " does not exist");
        }
        // No CONFIG_PROC_CPU_RESCTRL: fall through to scanning the tasks files.
    }
    if (!procExists(pid)) {
        throw Error(ErrorKind::NoSuchProcess, "process " + ps + " does not exist");
    }
    // The CTRL_MON group whose own tasks file lists pid. Only directories at the root
    // are CTRL_MON groups; a MON group's tasks also list it, but those are not scanned.
    std::vector<std::string> ctrls;
    int err = forEachEntry(root_.get(), [&](const std::string& n, unsigned char t) {
        if (!isReservedName(n) && entryType(root_.get(), n, t) == DT_DIR) {
            ctrls.push_back(n);
        }
    });
    if (err != 0) {
        throwErrno(err, "cannot list " + path_ + " to find the group of process " + ps);
    }
    for (const auto& c : ctrls) {
        int cfd = openDirComponent(root_.get(), c);
        if (cfd < 0) {
            continue;
        }
        UniqueFd cf(cfd);
        ReadResult r = readFileAt(cf.get(), "tasks");
        if (r.err != 0) {
            continue; // not a group (no tasks file), or removed meanwhile
        }
        for (pid_t t : parseTaskList(r.text)) {
            if (t == pid) {
                return c;
            }
        }
    }
    if (!procExists(pid)) {
        throw Error(ErrorKind::NoSuchProcess, "process " + ps + " does not exist");
    }
    return "";
}

namespace {

// Writes one tid to an open tasks file: one id per write(2), as the kernel wants.
// Returns 0 or errno.
int writeTid(int tasksFd, pid_t tid) {
    std::string s = std::to_string(tid) + "\n";
    for (;;) {
        ssize_t n = ::pwrite(tasksFd, s.data(), s.size(), 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return errno;
        }
        if (static_cast<std::size_t>(n) != s.size()) {
            return EIO;
        }
        return 0;
    }
}

} // namespace

static UniqueFd openTasksForWrite(int groupFd, const std::string& gp) {
    int fd = openFileComponent(groupFd, "tasks", O_WRONLY);
    if (fd < 0) {
        int err = -fd;
        if (err == ENOENT) {
            throw Error(ErrorKind::NoSuchGroup, "cannot open " + gp + "/tasks: it does not exist");
        }
        if (err == ELOOP) {
            throw Error(ErrorKind::Failed, "refusing to write " + gp + "/tasks: it is a symlink");
        }
        throwErrno(err, "cannot open " + gp + "/tasks for writing");
    }
    return UniqueFd(fd);
}

void Resctrl::moveTask(const MonGroupRef& g, pid_t tid) {
    validateRef(g);
    const std::string gp = groupPath(g);
    if (tid <= 0) {
        throw Error(ErrorKind::InvalidArgument, "invalid task id " + std::to_string(tid));
    }
    UniqueFd gd = openGroupDir(root_.get(), path_, g, gp);
    UniqueFd tf = openTasksForWrite(gd.get(), gp);
    int err = writeTid(tf.get(), tid);
    if (err == 0) {
        return;
    }
    std::string what = "cannot move task " + std::to_string(tid) + " into " + gp;
    switch (err) {
    case ESRCH:
        throw Error(ErrorKind::NoSuchProcess, what + ": no such task");
    case ENODEV:
    case ENOENT:
        throw Error(ErrorKind::NoSuchGroup, what + ": the group was removed");
    case EINVAL:
        throw Error(ErrorKind::Failed,
                    withStatus(what + ": the task is not in the group's CTRL_MON group (" +
                                   (g.ctrl.empty() ? std::string("root") : g.ctrl) +
                                   "); a MON group only takes tasks of its parent CTRL_MON group",
                               lastCmdStatus()));
    default:
        throw Error(kindFromErrno(err),
                    withStatus(what + ": write: " + errnoText(err), lastCmdStatus()));
    }
}

void Resctrl::moveProcess(const MonGroupRef& g, pid_t pid) {
    validateRef(g);
    const std::string gp = groupPath(g);
    const std::string ps = std::to_string(pid);
    if (pid <= 0) {
        throw Error(ErrorKind::InvalidArgument, "invalid pid " + ps);
    }
    UniqueFd gd = openGroupDir(root_.get(), path_, g, gp);
    UniqueFd tf = openTasksForWrite(gd.get(), gp);

    std::set<pid_t> done;
    for (int pass = 0; pass < kMaxMovePasses; ++pass) {
        auto tids = threadsOf(pid);
        if (!tids) {
            throw Error(ErrorKind::NoSuchProcess,
                        "cannot move process " + ps + " into " + gp + ": it does not exist");
        }
        bool any = false;
        for (pid_t t : *tids) {
            if (done.count(t) != 0) {
                continue;
            }
            any = true;
            int err = writeTid(tf.get(), t);
            if (err == 0) {
                done.insert(t);
                continue;
            }
            std::string what =
                "cannot move thread " + std::to_string(t) + " of process " + ps + " into " + gp;
            if (err == ESRCH) {
                if (t == pid && !procExists(pid)) {
                    throw Error(ErrorKind::NoSuchProcess, "cannot move process " + ps + " into " +
                                                              gp + ": it exited meanwhile");
                }
                done.insert(t); // a thread that exited: nothing left to move
                continue;
            }
            if (err == ENODEV || err == ENOENT) {
                throw Error(ErrorKind::NoSuchGroup, what + ": the group was removed");
            }
            if (err == EINVAL) {
                throw Error(ErrorKind::Failed,
                            withStatus(what +
                                           ": the thread is not in the group's CTRL_MON group (" +
                                           (g.ctrl.empty() ? std::string("root") : g.ctrl) +
                                           "); a MON group only takes tasks of its parent "
                                           "CTRL_MON group",
                                       lastCmdStatus()));
            }
            throw Error(kindFromErrno(err),
                        withStatus(what + ": write: " + errnoText(err), lastCmdStatus()));
        }
        if (!any) {
            if (done.count(pid) == 0 && !procExists(pid)) {
                throw Error(ErrorKind::NoSuchProcess,
                            "cannot move process " + ps + " into " + gp + ": it does not exist");
            }
            return;
        }
    }
    throw Error(ErrorKind::Failed, "cannot move process " + ps + " into " + gp +
                                       ": it kept creating threads through " +
                                       std::to_string(kMaxMovePasses) + " passes");
}

std::vector<pid_t> Resctrl::tasks(const MonGroupRef& g) const {
    validateRef(g);
    const std::string gp = groupPath(g);
    UniqueFd gd = openGroupDir(root_.get(), path_, g, gp);
    ReadResult r = readFileAt(gd.get(), "tasks");
    if (r.err == ENOENT || r.err == ENODEV) {
        throw Error(ErrorKind::NoSuchGroup, "cannot read " + gp + "/tasks: the group was removed");
    }
    if (r.err != 0) {
        throwErrno(r.err, "cannot read " + gp + "/tasks");
    }
    return parseTaskList(r.text);
}

Counters Resctrl::readCounters(const MonGroupRef& g) const {
    validateRef(g);
    const std::string gp = groupPath(g);
    UniqueFd gd = openGroupDir(root_.get(), path_, g, gp);
    // ENOENT/ENODEV below mon_data means either the group was removed (NoSuchGroup) or a
    // domain went away (CPU hotplug), which only leaves that domain out.
    auto checkGone = [&](const std::string& what) {
        if (!monGroupExists(g)) {
            throw Error(ErrorKind::NoSuchGroup, "cannot read counters of " + gp +
                                                    ": the group was removed (" + what +
                                                    " vanished)");
        }
    };
    auto isGoneErr = [](int err) { return err == ENOENT || err == ENODEV; };
    int md = openDirComponent(gd.get(), "mon_data");
    if (md < 0) {
        int err = -md;
        if (isGoneErr(err)) {
            checkGone("mon_data");
        }
        throwErrno(err, "cannot read counters of " + gp + ": cannot open mon_data");
    }
    UniqueFd mdFd(md);

    Counters out;
    // Reads the event files of one (sub-)domain dir; collects the names of sub-domain dirs.
    auto readDomain = [&](int dirFd, const std::string& key, std::vector<std::string>* subdirs) {
        std::vector<std::string> files;
        int err = forEachEntry(dirFd, [&](const std::string& n, unsigned char t) {
            unsigned char type = entryType(dirFd, n, t);
            if (type == DT_REG) {
                files.push_back(n);
            } else if (type == DT_DIR && subdirs != nullptr && n.rfind("mon_sub_", 0) == 0) {
                subdirs->push_back(n);
            }
        });
        if (isGoneErr(err)) {
            checkGone("mon_data/" + key);
            return;
        }
        if (err != 0) {
            throwErrno(err, "cannot read counters of " + gp + ": cannot list mon_data/" + key);
        }
        std::map<std::string, uint64_t> events;
        for (const auto& f : files) {
            ReadResult r = readFileAt(dirFd, f);
            if (r.err != 0) {
                if (isGoneErr(r.err)) {
                    checkGone("mon_data/" + key + "/" + f);
                }
                log::debug("resctrl: " + gp + "/mon_data/" + key + "/" + f + ": " +
                           errnoText(r.err) + "; left out");
                continue;
            }
            if (auto v = parseCounterValue(r.text)) {
                events[f] = *v;
            }
        }
        if (!events.empty()) {
            out[key] = std::move(events);
        }
    };

    std::vector<std::string> domains;
    int err = forEachEntry(mdFd.get(), [&](const std::string& n, unsigned char t) {
        if (n.rfind("mon_", 0) == 0 && entryType(mdFd.get(), n, t) == DT_DIR) {
            domains.push_back(n);
        }
    });
    if (err != 0) {
        if (isGoneErr(err)) {
            checkGone("mon_data");
        }
        throwErrno(err, "cannot read counters of " + gp + ": cannot list mon_data");
    }
    for (const auto& d : domains) {
        int dfd = openDirComponent(mdFd.get(), d);
        if (dfd < 0) {
            if (isGoneErr(-dfd)) {
                checkGone("mon_data/" + d);
                continue;
            }
            throwErrno(-dfd, "cannot read counters of " + gp + ": cannot open mon_data/" + d);
        }
        UniqueFd df(dfd);
        std::vector<std::string> subs;
        readDomain(df.get(), d, &subs);
        for (const auto& s : subs) {
            int sfd = openDirComponent(df.get(), s);
            if (sfd < 0) {
                if (isGoneErr(-sfd)) {
                    checkGone("mon_data/" + d + "/" + s);
                    continue;
                }
                throwErrno(-sfd, "cannot read counters of " + gp + ": cannot open mon_data/" + d +
                                     "/" + s);
            }
            UniqueFd sf(sfd);
            readDomain(sf.get(), d + "/" + s, nullptr);
        }
    }
    return out;
}

} // namespace rdtmon
