#include "GroupRegistry.h"

#include "Clock.h"
#include "ContainerId.h"
#include "Errors.h"
#include "Log.h"
#include "ResctrlNames.h"
#include "UniqueFd.h"

#include <nlohmann/json.hpp>

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
constexpr int kVersion = 1;

[[noreturn]] void fail(const std::string& msg) {
    throw Error(ErrorKind::Failed, msg);
}

[[noreturn]] void failErrno(int err, const std::string& what) {
    fail(what + ": " + errnoText(err));
}

// A CTRL_MON group name: "" (the root group) or one path component that resctrl could hold
// as a control group (so not ".", "..", nor one of resctrl's own names).
bool isValidCtrl(const std::string& ctrl) {
    if (ctrl.empty()) {
        return true;
    }
    if (ctrl.size() > 255 || ctrl == "." || ctrl == ".." || isReservedResctrlName(ctrl)) {
        return false;
    }
    return ctrl.find('/') == std::string::npos && ctrl.find('\0') == std::string::npos;
}

void validateRecord(const GroupRecord& r, ErrorKind kind) {
    if (!isValidContainerId(r.id)) {
        throw Error(kind, "group record has an invalid container id");
    }
    if (!isValidCtrl(r.ctrl)) {
        throw Error(kind,
                    "group record for container " + r.id + " has an invalid control group name");
    }
    try {
        validateLabels(r.labels);
    } catch (const Error& e) {
        throw Error(kind, "group record for container " + r.id + ": " + e.what());
    }
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
            return result;
        }
        result.fileExisted = true;
        records_ = parse(*text);
        waitingCount_ = static_cast<std::size_t>(std::count_if(
            records_.begin(), records_.end(), [](const auto& kv) { return kv.second.waiting; }));
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
    waitingCount_ = 0;
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
    validateRecord(r, ErrorKind::InvalidArgument);
    auto it = records_.find(r.id);
    if (it == records_.end()) {
        it = records_.emplace(r.id, r).first;
        try {
            persist(records_);
        } catch (...) {
            records_.erase(it);
            throw;
        }
        waitingCount_ += r.waiting ? 1 : 0;
        return;
    }
    GroupRecord old = std::exchange(it->second, r);
    try {
        persist(records_);
    } catch (...) {
        it->second = std::move(old);
        throw;
    }
    waitingCount_ = waitingCount_ - (old.waiting ? 1 : 0) + (r.waiting ? 1 : 0);
}

void GroupRegistry::erase(const std::string& id) {
    auto node = records_.extract(id);
    if (node.empty()) {
        return;
    }
    try {
        persist(records_);
    } catch (...) {
        records_.insert(std::move(node));
        throw;
    }
    waitingCount_ -= node.mapped().waiting ? 1 : 0;
}

namespace {
// A JSON string literal. Ids and the usual control group names are plain ASCII and are
// copied as they are; anything else goes through nlohmann (escapes, UTF-8 checks).
void appendJsonString(std::string& out, const std::string& s) {
    bool plain = true;
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            plain = false;
            break;
        }
    }
    if (plain) {
        out += '"';
        out += s;
        out += '"';
    } else {
        out += nlohmann::json(s).dump();
    }
}
} // namespace

// One record per line, written directly: building a nlohmann DOM for every record on every
// write was the largest cost of a CreateGroup at 1,000 groups (measured by test/bench).
std::string GroupRegistry::serialize(const std::map<std::string, GroupRecord>& records) {
    std::string out;
    out.reserve(40 + records.size() * 112);
    out += "{\"version\":";
    out += std::to_string(kVersion);
    out += ",\"groups\":[";
    bool first = true;
    for (const auto& [id, r] : records) {
        out += first ? "\n" : ",\n";
        first = false;
        out += "{\"id\":";
        appendJsonString(out, r.id);
        out += ",\"ctrl\":";
        appendJsonString(out, r.ctrl);
        out += ",\"pid\":";
        out += std::to_string(r.pid);
        out += ",\"createdUsec\":";
        out += std::to_string(r.createdUsec);
        out += ",\"pending\":";
        out += r.pending ? "true" : "false";
        if (!r.labels.empty()) {
            out += ",\"labels\":{";
            bool firstLabel = true;
            for (const auto& [key, value] : r.labels) {
                if (!firstLabel) {
                    out += ',';
                }
                firstLabel = false;
                appendJsonString(out, key);
                out += ':';
                appendJsonString(out, value);
            }
            out += '}';
        }
        if (!r.cgroup.empty()) {
            out += ",\"cgroup\":";
            appendJsonString(out, r.cgroup);
        }
        if (r.waiting || r.pidStartTime != 0 || r.waitSeq != 0) {
            out += ",\"waiting\":";
            out += r.waiting ? "true" : "false";
            out += ",\"pidStartTime\":";
            out += std::to_string(r.pidStartTime);
            out += ",\"waitSeq\":";
            out += std::to_string(r.waitSeq);
        }
        out += '}';
    }
    out += "\n]}\n";
    return out;
}

std::map<std::string, GroupRecord> GroupRegistry::parse(const std::string& text) {
    nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) {
        fail("groups file is not valid JSON");
    }
    if (!doc.is_object()) {
        fail("groups file: expected an object");
    }
    for (const auto& [key, value] : doc.items()) {
        if (key != "version" && key != "groups") {
            fail("groups file: unknown key " + key);
        }
    }
    auto version = doc.find("version");
    if (version == doc.end() || !version->is_number_unsigned() ||
        version->get<uint64_t>() != static_cast<uint64_t>(kVersion)) {
        fail("groups file: missing or unsupported version");
    }
    auto groups = doc.find("groups");
    if (groups == doc.end() || !groups->is_array()) {
        fail("groups file: groups must be an array");
    }
    std::map<std::string, GroupRecord> out;
    std::size_t index = 0;
    for (const auto& g : *groups) {
        std::string where = "groups file: groups[" + std::to_string(index++) + "]";
        if (!g.is_object()) {
            fail(where + ": expected an object");
        }
        for (const auto& [key, value] : g.items()) {
            if (key != "id" && key != "ctrl" && key != "pid" && key != "createdUsec" &&
                key != "pending" && key != "labels" && key != "cgroup" && key != "waiting" &&
                key != "pidStartTime" && key != "waitSeq") {
                fail(where + ": unknown key " + key);
            }
        }
        auto id = g.find("id");
        auto ctrl = g.find("ctrl");
        auto pid = g.find("pid");
        auto created = g.find("createdUsec");
        auto pending = g.find("pending");
        if (id == g.end() || !id->is_string()) {
            fail(where + ".id: expected a string");
        }
        if (ctrl == g.end() || !ctrl->is_string()) {
            fail(where + ".ctrl: expected a string");
        }
        if (pid == g.end() || !pid->is_number_unsigned() ||
            pid->get<uint64_t>() > std::numeric_limits<uint32_t>::max()) {
            fail(where + ".pid: expected an unsigned 32-bit integer");
        }
        if (created == g.end() || !created->is_number_unsigned()) {
            fail(where + ".createdUsec: expected an unsigned integer");
        }
        if (pending == g.end() || !pending->is_boolean()) {
            fail(where + ".pending: expected a boolean");
        }
        GroupRecord r;
        r.id = id->get<std::string>();
        r.ctrl = ctrl->get<std::string>();
        r.pid = static_cast<uint32_t>(pid->get<uint64_t>());
        r.createdUsec = created->get<uint64_t>();
        r.pending = pending->get<bool>();
        if (!isValidContainerId(r.id)) {
            fail(where + ".id: invalid container id");
        }
        if (!isValidCtrl(r.ctrl)) {
            fail(where + ".ctrl: invalid control group name");
        }
        // Optional: records written before labels existed have none.
        if (auto labels = g.find("labels"); labels != g.end()) {
            if (!labels->is_object()) {
                fail(where + ".labels: expected an object of strings");
            }
            for (const auto& [key, value] : labels->items()) {
                if (!value.is_string()) {
                    fail(where + ".labels: expected an object of strings");
                }
                r.labels.emplace(key, value.get<std::string>());
            }
            try {
                validateLabels(r.labels);
            } catch (const Error& e) {
                fail(where + ".labels: " + e.what());
            }
        }
        // Optional: records written before cgroups were followed follow none.
        if (auto cg = g.find("cgroup"); cg != g.end()) {
            if (!cg->is_string()) {
                fail(where + ".cgroup: expected a string");
            }
            r.cgroup = cg->get<std::string>();
            if (!r.cgroup.empty() && (r.cgroup.front() != '/' || r.cgroup.size() > 4096 ||
                                      r.cgroup.find('\0') != std::string::npos ||
                                      r.cgroup.find('\n') != std::string::npos)) {
                fail(where + ".cgroup: expected an absolute path");
            }
        }
        // Optional: records written before waiting existed are all active.
        if (auto waiting = g.find("waiting"); waiting != g.end()) {
            if (!waiting->is_boolean()) {
                fail(where + ".waiting: expected a boolean");
            }
            r.waiting = waiting->get<bool>();
        }
        for (auto [key, field] :
             {std::pair{"pidStartTime", &r.pidStartTime}, std::pair{"waitSeq", &r.waitSeq}}) {
            auto v = g.find(key);
            if (v == g.end()) {
                if (r.waiting) {
                    fail(where + "." + key + ": a waiting record needs it");
                }
                continue;
            }
            if (!v->is_number_unsigned()) {
                fail(where + "." + key + ": expected an unsigned integer");
            }
            *field = v->get<uint64_t>();
        }
        if (!out.emplace(r.id, r).second) {
            fail(where + ".id: duplicate container id " + r.id);
        }
    }
    return out;
}

void GroupRegistry::persist(const std::map<std::string, GroupRecord>& next) {
    const std::string text = serialize(next);
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
