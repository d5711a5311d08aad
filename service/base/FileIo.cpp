#include "FileIo.h"
#include "UniqueFd.h"

#include <atomic>
#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <memory>
#include <optional>
#include <string_view>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace rdtmon {

namespace {

// setUseOpenat2(false): the tests' way to take the fallback where openat2 works.
std::atomic<bool> g_openat2Allowed{true};

long callOpenat2(int dirfd, const char* path, int flags) {
    struct open_how how {};
    how.flags = static_cast<uint64_t>(flags);
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    return ::syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

// Whether openat2 can be used at all, probed once with an open that cannot fail: a kernel
// before 5.6 says ENOSYS, and a seccomp filter written before openat2 (older systemd's
// SystemCallFilter=, container runtimes' allow-lists) says EPERM or anything else it
// chose. Any refusal means openat, component by component, for the life of the process.
bool haveOpenat2() {
    static const bool have = [] {
        const long fd = callOpenat2(AT_FDCWD, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            return false;
        }
        ::close(static_cast<int>(fd));
        return true;
    }();
    return have;
}

// openat2 with no symlink, no escape; nullopt when openat2 is not usable here, so the
// caller falls back to openat.
std::optional<OpenResult> tryOpenat2(int dirfd, const std::string& path, int flags) {
    if (!g_openat2Allowed.load(std::memory_order_relaxed) || !haveOpenat2()) {
        return std::nullopt;
    }
    const long fd = callOpenat2(dirfd, path.c_str(), flags);
    if (fd >= 0) {
        return OpenResult{UniqueFd(static_cast<int>(fd)), 0};
    }
    return OpenResult{UniqueFd(), errno};
}

} // namespace

OpenResult openDirComponent(int dirfd, const std::string& name) {
    if (std::optional<OpenResult> r =
            tryOpenat2(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) {
        return std::move(*r);
    }
    int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    return fd >= 0 ? OpenResult{UniqueFd(fd), 0} : OpenResult{UniqueFd(), errno};
}

OpenResult openBeneath(int dirfd, const std::string& relPath, int flags) {
    // openat2 refuses any flag but these with O_PATH (EINVAL), O_NOCTTY included.
    flags |= O_CLOEXEC | O_NOFOLLOW | ((flags & O_PATH) != 0 ? 0 : O_NOCTTY);
    if (std::optional<OpenResult> r = tryOpenat2(dirfd, relPath, flags)) {
        return std::move(*r);
    }
    // Component by component: every one but the last as an O_PATH directory.
    UniqueFd cur;
    int base = dirfd;
    std::size_t i = 0;
    for (;;) {
        std::size_t slash = relPath.find('/', i);
        const std::string comp = relPath.substr(i, slash == std::string::npos ? slash : slash - i);
        if (comp.empty() || comp == "..") {
            return {UniqueFd(), EXDEV}; // what RESOLVE_BENEATH gives for an escape
        }
        const bool last = slash == std::string::npos;
        int fd = ::openat(base, comp.c_str(),
                          last ? flags : O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
            return {UniqueFd(), errno};
        }
        cur.reset(fd);
        base = fd;
        if (last) {
            return {std::move(cur), 0};
        }
        i = slash + 1;
    }
}

OpenResult openFileComponent(int dirfd, const std::string& name, int flags) {
    int fd = ::openat(dirfd, name.c_str(), flags | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    return fd >= 0 ? OpenResult{UniqueFd(fd), 0} : OpenResult{UniqueFd(), errno};
}

// One pread(2) usually returns a counter's whole line, so the read that would only confirm
// the end is skipped when the text ends in a newline.
ReadResult rereadShort(int fd) {
    char buf[64];
    ssize_t n;
    do {
        n = ::pread(fd, buf, sizeof buf, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return ReadResult{errno, {}};
    }
    ReadResult r;
    r.text.assign(buf, static_cast<std::size_t>(n));
    off_t off = n;
    // More only when the first read filled the buffer or stopped mid-line; a counter file
    // is never near 64 KiB, so more than that is not read.
    while (r.text.size() < 65536 &&
           (n == static_cast<ssize_t>(sizeof buf) || (n > 0 && r.text.back() != '\n'))) {
        n = ::pread(fd, buf, sizeof buf, off);
        if (n < 0) {
            if (errno == EINTR) {
                n = 1;
                continue;
            }
            return ReadResult{errno, {}};
        }
        r.text.append(buf, static_cast<std::size_t>(n));
        off += n;
    }
    return r;
}

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
    OpenResult o = openFileComponent(dirfd, name, O_RDONLY);
    if (o.err != 0) {
        return ReadResult{o.err, {}};
    }
    return readAll(o.fd.get());
}

ReadResult readPath(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        return ReadResult{errno, {}};
    }
    UniqueFd f(fd);
    return readAll(f.get());
}

namespace {
struct DirCloser {
    void operator()(DIR* d) const noexcept { ::closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;
} // namespace

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

int writeTid(int tasksFd, int tid) {
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

void setUseOpenat2(bool enabled) {
    g_openat2Allowed.store(enabled, std::memory_order_relaxed);
}

} // namespace rdtmon
