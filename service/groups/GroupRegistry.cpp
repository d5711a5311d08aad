#include "GroupRegistry.h"

#include "Clock.h"
#include "ContainerId.h"
#include "Errors.h"
#include "Log.h"
#include "ResctrlNames.h"
#include "UniqueFd.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <limits>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

namespace rdtmon {
namespace {

constexpr const char* kFileName = "groups.json";
constexpr const char* kTempName = "groups.json.tmp";
constexpr std::size_t kMaxFileSize = 64u << 20; // 64 MiB

[[noreturn]] void fail(const std::string& msg) {
    throw Error(ErrorKind::Failed, msg);
}

[[noreturn]] void failErrno(int err, const std::string& what) {
    fail(what + ": " + errnoText(err));
}

// mkdir -p with mode 0700 for every component it creates.
void makeDirs(const std::string& path) {
    if (path.empty()) {
        fail("state directory path is empty");
    }
    std::string cur;
    std::size_t pos = 0;
    while (pos <= path.size()) {
        std::size_t next = path.find('/', pos);
        if (next == std::string::npos) {
            next = path.size();
        }
        cur = path.substr(0, next);
        pos = next + 1;
        if (cur.empty() || cur.back() == '/') {
            continue; // leading '/' or "//"
        }
        if (::mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) {
            failErrno(errno, "cannot create state directory " + cur);
        }
    }
}

UniqueFd openDir(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) {
        failErrno(errno, "cannot open state directory " + path);
    }
    return fd;
}

void writeAll(int fd, const std::string& data, const std::string& what) {
    const char* p = data.data();
    std::size_t left = data.size();
    while (left > 0) {
        ssize_t n = ::write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            failErrno(errno, "cannot write " + what);
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

// Reads groups.json relative to dirfd. Returns nullopt when it does not exist; throws
// std::runtime_error (caught by load) describing why it cannot be used otherwise.
std::optional<std::string> readStateFile(int dirfd) {
    UniqueFd fd(::openat(dirfd, kFileName, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT) {
            return std::nullopt;
        }
        throw std::runtime_error(std::string("cannot open: ") + errnoText(errno));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        throw std::runtime_error(std::string("cannot stat: ") + errnoText(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        throw std::runtime_error("not a regular file");
    }
    if (static_cast<uint64_t>(st.st_size) > kMaxFileSize) {
        throw std::runtime_error("larger than 64 MiB");
    }
    std::string text;
    text.resize(static_cast<std::size_t>(st.st_size) + 1);
    std::size_t got = 0;
    for (;;) {
        if (got == text.size()) {
            if (text.size() > kMaxFileSize) {
                throw std::runtime_error("larger than 64 MiB");
            }
            text.resize(std::min(text.size() * 2, kMaxFileSize + 1));
        }
        ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw std::runtime_error(std::string("cannot read: ") + errnoText(errno));
        }
        if (n == 0) {
            break;
        }
        got += static_cast<std::size_t>(n);
    }
    text.resize(got);
    return text;
}

} // namespace

GroupRegistry::GroupRegistry(std::string stateDir) : stateDir_(std::move(stateDir)) {}

GroupRegistry::LoadResult GroupRegistry::load() {
    LoadResult result;
    makeDirs(stateDir_);
    UniqueFd dir = openDir(stateDir_);

    // A temp file left by a crash mid-write is garbage: the rename never happened.
    if (::unlinkat(dir.get(), kTempName, 0) != 0 && errno != ENOENT) {
        log::warning("cannot remove stale " + stateDir_ + "/" + kTempName + ": " +
                     errnoText(errno));
    }

    std::optional<std::string> text;
    std::string problem;
    try {
        text = readStateFile(dir.get());
        if (!text) {
            records_.clear();
            lines_.clear();
            return result;
        }
        result.fileExisted = true;
        records_ = parse(*text);
        rebuildLines();
        waitingCount_ = static_cast<std::size_t>(std::count_if(
            records_.begin(), records_.end(), [](const auto& kv) { return kv.second.waiting; }));
        activeCount_ = static_cast<std::size_t>(std::count_if(
            records_.begin(), records_.end(), [](const auto& kv) { return isActive(kv.second); }));
        return result;
    } catch (const std::exception& e) {
        problem = e.what();
    }
    result.fileExisted = true;

    std::string aside = std::string(kFileName) + ".corrupt-" + std::to_string(realtimeUsec());
    if (::renameat(dir.get(), kFileName, dir.get(), aside.c_str()) != 0) {
        failErrno(errno, "cannot move corrupt " + stateDir_ + "/" + kFileName + " aside (" +
                             problem + ")");
    }
    ::fsync(dir.get());
    records_.clear();
    lines_.clear();
    waitingCount_ = 0;
    activeCount_ = 0;
    result.movedAsideTo = stateDir_ + "/" + aside;
    result.problem = problem;
    return result;
}

std::vector<GroupRecord> GroupRegistry::waiting() const {
    std::vector<GroupRecord> out;
    if (waitingCount_ == 0) {
        return out;
    }
    out.reserve(waitingCount_);
    for (const auto& [id, r] : records_) {
        if (r.waiting) {
            out.push_back(r);
        }
    }
    std::stable_sort(out.begin(), out.end(), [](const GroupRecord& a, const GroupRecord& b) {
        return a.waitSeq < b.waitSeq;
    });
    return out;
}

std::optional<GroupRecord> GroupRegistry::find(const std::string& id) const {
    auto it = records_.find(id);
    if (it == records_.end()) {
        return std::nullopt;
    }
    return it->second;
}

std::vector<GroupRecord> GroupRegistry::all() const {
    std::vector<GroupRecord> out;
    out.reserve(records_.size());
    for (const auto& [id, r] : records_) {
        out.push_back(r);
    }
    return out;
}

// put and erase change the map in place and undo the change if persisting fails, rather
// than persisting a modified copy: copying every record on every write made a CreateGroup
// at 1,000 groups cost milliseconds (measured by test/bench).
void GroupRegistry::put(const GroupRecord& r) {
    validateGroupRecord(r, ErrorKind::InvalidArgument);
    std::string line = serializeRecord(r);
    auto it = records_.find(r.id);
    if (it == records_.end()) {
        it = records_.emplace(r.id, r).first;
        auto lit = lines_.insert_or_assign(r.id, std::move(line)).first;
        try {
            persist();
        } catch (...) {
            records_.erase(it);
            lines_.erase(lit);
            throw;
        }
        waitingCount_ += r.waiting ? 1 : 0;
        activeCount_ += isActive(r) ? 1 : 0;
        return;
    }
    GroupRecord old = std::exchange(it->second, r);
    std::string oldLine = std::exchange(lines_[r.id], std::move(line));
    try {
        persist();
    } catch (...) {
        it->second = std::move(old);
        lines_[r.id] = std::move(oldLine);
        throw;
    }
    waitingCount_ = waitingCount_ - (old.waiting ? 1 : 0) + (r.waiting ? 1 : 0);
    activeCount_ = activeCount_ - (isActive(old) ? 1 : 0) + (isActive(r) ? 1 : 0);
}

void GroupRegistry::erase(const std::string& id) {
    auto node = records_.extract(id);
    if (node.empty()) {
        return;
    }
    auto lineNode = lines_.extract(id);
    try {
        persist();
    } catch (...) {
        records_.insert(std::move(node));
        if (!lineNode.empty()) {
            lines_.insert(std::move(lineNode));
        }
        throw;
    }
    waitingCount_ -= node.mapped().waiting ? 1 : 0;
    activeCount_ -= isActive(node.mapped()) ? 1 : 0;
}

void GroupRegistry::rebuildLines() {
    lines_.clear();
    for (const auto& [id, r] : records_) {
        lines_.emplace(id, serializeRecord(r));
    }
}

void GroupRegistry::persist() {
    const std::string text = serializeLines(lines_);
    const std::string file = stateDir_ + "/" + kFileName;
    UniqueFd dir(::open(stateDir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) {
        failErrno(errno, "cannot save " + file + ": cannot open the state directory");
    }
    int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    UniqueFd fd(::openat(dir.get(), kTempName, flags, 0600));
    if (!fd && errno == EEXIST) {
        // Left over from a crash, or planted: remove the name (never following it) and retry.
        if (::unlinkat(dir.get(), kTempName, 0) != 0 && errno != ENOENT) {
            failErrno(errno, "cannot save " + file + ": cannot remove stale temp file");
        }
        fd.reset(::openat(dir.get(), kTempName, flags, 0600));
    }
    if (!fd) {
        failErrno(errno, "cannot save " + file + ": cannot create temp file");
    }
    // From here on, any failure removes the temp file.
    struct TempGuard {
        int dirfd;
        bool armed = true;
        ~TempGuard() {
            if (armed) {
                ::unlinkat(dirfd, kTempName, 0);
            }
        }
    } guard{dir.get()};

    writeAll(fd.get(), text, file + " (temp file)");
    if (::fsync(fd.get()) != 0) {
        failErrno(errno, "cannot save " + file + ": fsync");
    }
    if (::close(fd.release()) != 0) {
        failErrno(errno, "cannot save " + file + ": close");
    }
    if (::renameat(dir.get(), kTempName, dir.get(), kFileName) != 0) {
        failErrno(errno, "cannot save " + file + ": rename");
    }
    guard.armed = false;
    if (::fsync(dir.get()) != 0) {
        failErrno(errno, "cannot save " + file + ": fsync of the state directory");
    }
}

} // namespace rdtmon
