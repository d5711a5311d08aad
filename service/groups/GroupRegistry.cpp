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
constexpr const char* kJournalName = "groups.journal";
constexpr std::size_t kMaxFileSize = 64u << 20; // 64 MiB
// The journal is compacted when it has more lines than this or than records, whichever is
// more: a compaction costs one snapshot, paid for by at least as many appends.
constexpr std::size_t kMinCompactLines = 64;

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

// Reads the file name relative to dirfd. Returns nullopt when it does not exist; throws
// std::runtime_error (caught by load) describing why it cannot be used otherwise.
std::optional<std::string> readStateFile(int dirfd, const char* name) {
    auto problem = [name](const std::string& what) {
        return std::runtime_error(std::string(name) + ": " + what);
    };
    UniqueFd fd(::openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT) {
            return std::nullopt;
        }
        throw problem(std::string("cannot open: ") + errnoText(errno));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        throw problem(std::string("cannot stat: ") + errnoText(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        throw problem("not a regular file");
    }
    if (static_cast<uint64_t>(st.st_size) > kMaxFileSize) {
        throw problem("larger than 64 MiB");
    }
    std::string text;
    text.resize(static_cast<std::size_t>(st.st_size) + 1);
    std::size_t got = 0;
    for (;;) {
        if (got == text.size()) {
            if (text.size() > kMaxFileSize) {
                throw problem("larger than 64 MiB");
            }
            text.resize(std::min(text.size() * 2, kMaxFileSize + 1));
        }
        ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw problem(std::string("cannot read: ") + errnoText(errno));
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

    records_.clear();
    waitingCount_ = 0;
    activeCount_ = 0;
    journalExists_ = false;
    journalBytes_ = 0;
    journalLines_ = 0;
    journalUsable_ = true;
    std::string problem;
    try {
        std::optional<std::string> snapshot = readStateFile(dir.get(), kFileName);
        result.fileExisted = snapshot.has_value();
        std::optional<std::string> journal = readStateFile(dir.get(), kJournalName);
        result.fileExisted = result.fileExisted || journal.has_value();
        std::map<std::string, GroupRecord> records;
        if (snapshot) {
            records = parse(*snapshot);
        }
        if (journal) {
            const JournalReplay jr = replayJournal(*journal, records);
            result.journalLines = jr.lines;
            result.tornJournalTail = jr.tornTail;
            journalExists_ = true;
            journalBytes_ = journal->size();
            journalLines_ = jr.lines;
            // Appending after a torn tail would glue the next line onto it.
            journalUsable_ = !jr.tornTail;
        }
        records_ = std::move(records);
    } catch (const std::exception& e) {
        problem = e.what();
    }

    if (!problem.empty()) {
        // Neither file is the state without the other: both go aside, under one suffix.
        result.fileExisted = true;
        journalExists_ = false;
        journalBytes_ = 0;
        journalLines_ = 0;
        journalUsable_ = true;
        const std::string suffix = ".corrupt-" + std::to_string(realtimeUsec());
        for (const char* name : {kFileName, kJournalName}) {
            const std::string aside = name + suffix;
            if (::renameat(dir.get(), name, dir.get(), aside.c_str()) != 0) {
                if (errno == ENOENT) {
                    continue;
                }
                failErrno(errno, "cannot move corrupt " + stateDir_ + "/" + name + " aside (" +
                                     problem + ")");
            }
            result.movedAside.push_back(stateDir_ + "/" + aside);
        }
        ::fsync(dir.get());
        if (!result.movedAside.empty()) {
            result.movedAsideTo = result.movedAside.front();
        }
        result.problem = problem;
        return result;
    }

    for (const auto& [id, r] : records_) {
        count(r, true);
    }
    if (journalLines_ > 0 || !journalUsable_) {
        // Start from one snapshot: a restart then reads one file, and a torn tail is gone.
        try {
            compact();
        } catch (const std::exception& e) {
            log::warning(std::string("cannot compact the group records at start-up (the next "
                                     "change tries again): ") +
                         e.what());
        }
    }
    return result;
}

void GroupRegistry::count(const GroupRecord& r, bool add) {
    if (r.waiting) {
        waitingCount_ = add ? waitingCount_ + 1 : waitingCount_ - 1;
    }
    if (isActive(r)) {
        activeCount_ = add ? activeCount_ + 1 : activeCount_ - 1;
    }
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
    const std::string line = journalPut(r);
    auto it = records_.find(r.id);
    if (it == records_.end()) {
        it = records_.emplace(r.id, r).first;
        try {
            persist(line);
        } catch (...) {
            records_.erase(it);
            throw;
        }
        count(r, true);
        return;
    }
    GroupRecord old = std::exchange(it->second, r);
    try {
        persist(line);
    } catch (...) {
        it->second = std::move(old);
        throw;
    }
    count(old, false);
    count(r, true);
}

void GroupRegistry::erase(const std::string& id) {
    auto node = records_.extract(id);
    if (node.empty()) {
        return;
    }
    try {
        persist(journalErase(id));
    } catch (...) {
        records_.insert(std::move(node));
        throw;
    }
    count(node.mapped(), false);
}

void GroupRegistry::persist(const std::string& line) {
    if (!journalUsable_ || !appendToJournal(line)) {
        compact();
        return;
    }
    if (journalLines_ > std::max(kMinCompactLines, records_.size())) {
        // The change is durable already: a compaction that fails is tried again next time.
        try {
            compact();
        } catch (const std::exception& e) {
            log::warning(std::string("cannot compact the group records: ") + e.what());
        }
    }
}

bool GroupRegistry::appendToJournal(const std::string& line) {
    const std::string file = stateDir_ + "/" + kJournalName;
    // O_NONBLOCK: a FIFO planted at the name must not block the open.
    int flags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
    if (!journalExists_) {
        flags |= O_CREAT | O_EXCL;
    }
    UniqueFd fd(::open(file.c_str(), flags, 0600));
    if (!fd) {
        const int err = errno;
        if (err == ENOENT || err == EEXIST || err == ELOOP || err == ENXIO || err == EISDIR) {
            return false; // not the journal we left: the state is rewritten from memory
        }
        failErrno(err, "cannot save " + file + ": open");
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        failErrno(errno, "cannot save " + file + ": stat");
    }
    if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != journalBytes_) {
        return false;
    }
    const bool created = !journalExists_;
    journalExists_ = true;
    try {
        writeAll(fd.get(), line, file);
        // fdatasync covers the new size, which is what reading the line back needs.
        if (::fdatasync(fd.get()) != 0) {
            failErrno(errno, "cannot save " + file + ": fdatasync");
        }
        if (created) {
            // A new file's name is durable only once its directory is.
            UniqueFd dir = openDir(stateDir_);
            if (::fsync(dir.get()) != 0) {
                failErrno(errno, "cannot save " + file + ": fsync of the state directory");
            }
        }
    } catch (...) {
        // Part of the line may be in the file: cut it off, and append nothing more until a
        // compaction has rewritten the state, whatever the cut achieved.
        if (::ftruncate(fd.get(), static_cast<off_t>(journalBytes_)) != 0) {
            log::warning("cannot cut a failed append off " + file + ": " + errnoText(errno));
        }
        journalUsable_ = false;
        throw;
    }
    journalBytes_ += line.size();
    ++journalLines_;
    return true;
}

void GroupRegistry::compact() {
    writeSnapshot();
    // The snapshot holds every line of the journal now. Were the unlink lost to a crash,
    // those lines would be applied again to records that already have them: no change.
    UniqueFd dir(::open(stateDir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir || (::unlinkat(dir.get(), kJournalName, 0) != 0 && errno != ENOENT)) {
        log::warning("cannot remove " + stateDir_ + "/" + kJournalName +
                     " after writing the snapshot: " + errnoText(errno));
        return;
    }
    journalExists_ = false;
    journalBytes_ = 0;
    journalLines_ = 0;
    journalUsable_ = true;
}

void GroupRegistry::writeSnapshot() {
    const std::string text = serialize(records_);
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
