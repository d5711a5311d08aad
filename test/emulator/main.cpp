// resctrl-emu: a FUSE3 emulator of the Linux resctrl filesystem for tests.
// See README.md next to this file for what it emulates and the control protocol.
#define FUSE_USE_VERSION 35

#include "UniqueFd.h"

#include <fuse.h>

#include <dirent.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace rdtmon::emu {
namespace {

// ---------------------------------------------------------------- options

struct Options {
    std::string mountpoint;
    unsigned numRmids = 32;
    unsigned l3Domains = 2;
    unsigned closids = 4;
    bool foreground = false;
    unsigned limboMs = 0;
    unsigned snc = 0;
    std::string controlPath;
};

const char* kUsage =
    "Usage: resctrl-emu MOUNTPOINT [--num-rmids N] [--l3-domains N] [--closids N]\n"
    "                   [--foreground] [--limbo-ms N] [--snc N] [--control SOCKETPATH]\n"
    "\n"
    "Mounts a FUSE emulation of /sys/fs/resctrl (fstype fuse.resctrl) on MOUNTPOINT and\n"
    "serves it until unmounted or SIGTERM/SIGINT. Test-only.\n"
    "  --num-rmids N    RMIDs shared by CTRL_MON and MON groups, RMID 0 is root's (32)\n"
    "  --l3-domains N   mon_data/mon_L3_XX directories (2)\n"
    "  --closids N      CTRL_MON groups including the root (4)\n"
    "  --limbo-ms N     how long a freed RMID stays busy (0)\n"
    "  --snc N          mon_sub_L3_YY dirs per L3 domain (0 = no SNC)\n"
    "  --foreground     do not daemonize\n"
    "  --control PATH   unix stream socket for test commands, one line in, one line out:\n"
    "                   ping | limbo-ms N | fail-next-mkdir ERRNO |\n"
    "                   fail-tasks-write-after N ERRNO | counter GROUP EVENT WORD|clear |\n"
    "                   rmids\n";

// ---------------------------------------------------------------- small helpers

std::optional<std::string> readSmallFile(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        return std::nullopt;
    }
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return std::nullopt;
        }
        if (n == 0) {
            break;
        }
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

std::vector<std::string> listDir(const std::string& path) {
    std::vector<std::string> out;
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) {
        return out;
    }
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] != '.') {
            out.emplace_back(e->d_name);
        }
    }
    ::closedir(d);
    return out;
}

std::optional<long> parseNumber(const std::string& s, int base = 10) {
    if (s.empty()) {
        return std::nullopt;
    }
    errno = 0;
    char* end = nullptr;
    long v = std::strtol(s.c_str(), &end, base);
    if (errno != 0 || end == s.c_str() || *end != '\0') {
        return std::nullopt;
    }
    return v;
}

std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t\r\n\v\f");
    if (b == std::string::npos) {
        return {};
    }
    size_t e = s.find_last_not_of(" \t\r\n\v\f");
    return s.substr(b, e - b + 1);
}

std::vector<std::string> splitWords(const std::string& s) {
    std::istringstream in(s);
    std::vector<std::string> out;
    std::string w;
    while (in >> w) {
        out.push_back(w);
    }
    return out;
}

const std::map<std::string, int>& errnoNames() {
    static const std::map<std::string, int> names = {
        {"EPERM", EPERM},       {"ENOENT", ENOENT},
        {"ESRCH", ESRCH},       {"EINTR", EINTR},
        {"EIO", EIO},           {"ENXIO", ENXIO},
        {"E2BIG", E2BIG},       {"EAGAIN", EAGAIN},
        {"ENOMEM", ENOMEM},     {"EACCES", EACCES},
        {"EFAULT", EFAULT},     {"EBUSY", EBUSY},
        {"EEXIST", EEXIST},     {"ENODEV", ENODEV},
        {"ENOTDIR", ENOTDIR},   {"EISDIR", EISDIR},
        {"EINVAL", EINVAL},     {"ENOSPC", ENOSPC},
        {"EROFS", EROFS},       {"ENOTEMPTY", ENOTEMPTY},
        {"ENOTCONN", ENOTCONN}, {"ETIMEDOUT", ETIMEDOUT},
    };
    return names;
}

std::optional<int> parseErrno(const std::string& s) {
    auto it = errnoNames().find(s);
    if (it != errnoNames().end()) {
        return it->second;
    }
    auto n = parseNumber(s);
    if (n && *n > 0 && *n < 4096) {
        return static_cast<int>(*n);
    }
    return std::nullopt;
}

using Clock = std::chrono::steady_clock;

uint64_t boottimeTicks() {
    static const long hz = ::sysconf(_SC_CLK_TCK);
    timespec ts{};
    ::clock_gettime(CLOCK_BOOTTIME, &ts);
    uint64_t ns =
        static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
    return ns / (1000000000ULL / static_cast<uint64_t>(hz));
}

// ---------------------------------------------------------------- /proc access

struct ThreadInfo {
    pid_t tid = 0;
    pid_t tgid = 0;
    pid_t ppid = 0;
    uint64_t start = 0; // clock ticks since boot, /proc/.../stat field 22
};

// Reads /proc/<tgid>/task/<tid>/stat (or /proc/<tid>/stat when tgid is 0). Zombies and
// dead tasks are not live threads.
std::optional<ThreadInfo> readThread(pid_t tgid, pid_t tid) {
    std::string path =
        tgid > 0 ? "/proc/" + std::to_string(tgid) + "/task/" + std::to_string(tid) + "/stat"
                 : "/proc/" + std::to_string(tid) + "/stat";
    auto content = readSmallFile(path);
    if (!content) {
        return std::nullopt;
    }
    size_t close = content->rfind(')');
    if (close == std::string::npos) {
        return std::nullopt;
    }
    std::vector<std::string> f = splitWords(content->substr(close + 1));
    if (f.size() < 20 || f[0] == "Z" || f[0] == "X" || f[0] == "x") {
        return std::nullopt;
    }
    ThreadInfo t;
    t.tid = tid;
    t.ppid = static_cast<pid_t>(std::strtol(f[1].c_str(), nullptr, 10));
    t.start = std::strtoull(f[19].c_str(), nullptr, 10);
    if (tgid > 0) {
        t.tgid = tgid;
    } else {
        auto status = readSmallFile("/proc/" + std::to_string(tid) + "/status");
        if (!status) {
            return std::nullopt;
        }
        size_t p = status->find("\nTgid:");
        if (p == std::string::npos) {
            return std::nullopt;
        }
        t.tgid = static_cast<pid_t>(std::strtol(status->c_str() + p + 6, nullptr, 10));
    }
    return t;
}

// "Name:\tv1\tv2..." line of /proc/<tid>/status as numbers.
std::vector<long> statusLine(const std::string& status, const std::string& key) {
    std::vector<long> out;
    size_t p = status.find("\n" + key + ":");
    if (p == std::string::npos) {
        return out;
    }
    size_t e = status.find('\n', p + 1);
    std::istringstream in(status.substr(p + key.size() + 2, e - p - key.size() - 2));
    long v;
    while (in >> v) {
        out.push_back(v);
    }
    return out;
}

std::optional<ino_t> pidNsInode(pid_t pid) {
    struct stat st {};
    std::string path = pid > 0 ? "/proc/" + std::to_string(pid) + "/ns/pid" : "/proc/self/ns/pid";
    if (::stat(path.c_str(), &st) != 0) {
        return std::nullopt;
    }
    return st.st_ino;
}

// The pid namespace of a caller, relative to the emulator's: its inode and its level
// (number of NSpid entries as seen by us minus one). Level 0 = the emulator's own.
struct CallerNs {
    bool foreign = false;
    ino_t inode = 0;
    size_t level = 0;
};

// Is the pid namespace of thread `tid` equal to, or a descendant of, the namespace
// `target` at `level` levels below ours? Returns the id of tid in that namespace.
std::optional<pid_t> idInNamespace(pid_t tid, const CallerNs& ns) {
    auto status = readSmallFile("/proc/" + std::to_string(tid) + "/status");
    if (!status) {
        return std::nullopt;
    }
    std::vector<long> nspid = statusLine(*status, "NSpid");
    if (nspid.size() < ns.level + 1) {
        return std::nullopt;
    }
    UniqueFd fd(::open(("/proc/" + std::to_string(tid) + "/ns/pid").c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        return std::nullopt;
    }
    for (size_t up = nspid.size() - 1 - ns.level; up > 0; --up) {
        UniqueFd parent(::ioctl(fd.get(), NS_GET_PARENT));
        if (!parent) {
            return std::nullopt;
        }
        fd = std::move(parent);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || st.st_ino != ns.inode) {
        return std::nullopt;
    }
    return static_cast<pid_t>(nspid[ns.level]);
}

// ---------------------------------------------------------------- the model

enum Event { LlcOccupancy = 0, MbmTotal = 1, MbmLocal = 2, kEvents = 3 };
const char* const kEventNames[kEvents] = {"llc_occupancy", "mbm_total_bytes", "mbm_local_bytes"};

std::optional<int> eventFromName(const std::string& s) {
    for (int i = 0; i < kEvents; ++i) {
        if (s == kEventNames[i]) {
            return i;
        }
    }
    return std::nullopt;
}

using GroupId = uint64_t;
constexpr GroupId kRoot = 1;

struct Assign {
    GroupId ctrl = kRoot;
    GroupId mon = 0; // 0 = the CTRL_MON group's own RMID
    bool operator==(const Assign&) const = default;
};

struct Group {
    GroupId id = 0;
    std::string name;
    bool ctrl = true;
    GroupId parent = 0; // the CTRL_MON parent of a MON group
    unsigned rmid = 0;
    unsigned closid = 0;
    std::map<std::string, GroupId> monChildren; // CTRL_MON only
    std::string cpus;
    std::string schemata;
    std::string mode = "shareable";
    // Counter model: task-microseconds of activity since mkdir, updated lazily.
    double activityUs = 0;
    Clock::time_point lastUpdate = Clock::now();
    std::string override[kEvents];
};

struct TaskKey {
    pid_t tid;
    uint64_t start;
    bool operator==(const TaskKey&) const = default;
};
struct TaskKeyHash {
    size_t operator()(const TaskKey& k) const noexcept {
        return std::hash<uint64_t>()((static_cast<uint64_t>(k.tid) << 32) ^ k.start);
    }
};

// One write of a task id into a group.
struct Record {
    uint64_t tick;                     // boottime clock ticks of the write
    Assign assign;                     // where it went
    std::unordered_set<pid_t> existed; // threads/children of the process seen before the write
};

struct Scan {
    Clock::time_point when;
    std::vector<ThreadInfo> threads;
    std::unordered_map<pid_t, size_t> byTid;
};

struct Membership {
    std::unordered_map<GroupId, std::vector<pid_t>> ctrlMembers; // every thread of the CLOS
    std::unordered_map<GroupId, std::vector<pid_t>> monMembers;
    std::unordered_map<GroupId, size_t> ownCount; // threads on the group's own RMID
};

class State {
public:
    explicit State(const Options& o) : opts_(o), limboMs_(o.limboMs) {
        Group root;
        root.id = kRoot;
        root.rmid = 0;
        root.closid = 0;
        root.cpus = rootCpus();
        root.schemata = defaultSchemata();
        groups_[kRoot] = root;
        for (unsigned r = 1; r < opts_.numRmids; ++r) {
            freeRmids_.push_back(r);
        }
        selfNs_ = pidNsInode(0).value_or(0);
    }

    std::mutex mu;

    // ------------------------------------------------------------ lookup

    enum class Kind {
        GroupDir,
        InfoDir,
        InfoSubDir,
        InfoFile,
        MonGroupsDir,
        MonDataDir,
        DomainDir,
        SubDir,
        GroupFile,
        CounterFile
    };
    struct Node {
        Node(Kind k, GroupId g = 0, std::string n = {}, int d = -1, int s = -1, int e = -1)
            : kind(k), group(g), name(std::move(n)), domain(d), sub(s), event(e) {}
        Kind kind;
        GroupId group = 0;
        std::string name; // file name (GroupFile / InfoFile: "L3_MON/num_rmids")
        int domain = -1;
        int sub = -1; // -1: the domain's own (summed) files
        int event = -1;
    };

    static std::vector<std::string> split(const char* path) {
        std::vector<std::string> out;
        std::string cur;
        for (const char* p = path; *p; ++p) {
            if (*p == '/') {
                if (!cur.empty()) {
                    out.push_back(cur);
                }
                cur.clear();
            } else {
                cur += *p;
            }
        }
        if (!cur.empty()) {
            out.push_back(cur);
        }
        return out;
    }

    std::map<std::string, std::string> infoFiles() const {
        std::map<std::string, std::string> f;
        f["last_cmd_status"] = lastCmd_.empty() ? "ok\n" : lastCmd_;
        f["L3_MON/num_rmids"] = std::to_string(opts_.numRmids) + "\n";
        f["L3_MON/mon_features"] = "llc_occupancy\nmbm_total_bytes\nmbm_local_bytes\n";
        f["L3_MON/max_threshold_occupancy"] = "1048576\n";
        f["L3/num_closids"] = std::to_string(opts_.closids) + "\n";
        f["L3/cbm_mask"] = "fffff\n";
        f["L3/min_cbm_bits"] = "1\n";
        f["L3/shareable_bits"] = "0\n";
        return f;
    }

    static const std::vector<std::string>& ctrlFiles() {
        static const std::vector<std::string> f = {"tasks",    "cpus", "cpus_list",
                                                   "schemata", "mode", "size"};
        return f;
    }
    static const std::vector<std::string>& monFiles() {
        static const std::vector<std::string> f = {"tasks", "cpus", "cpus_list"};
        return f;
    }
    static bool writable(const std::string& file) { return file != "size"; }

    std::string domainName(unsigned d) const {
        char b[32];
        std::snprintf(b, sizeof b, "mon_L3_%02u", d);
        return b;
    }
    std::string subName(unsigned d, unsigned s) const {
        char b[32];
        std::snprintf(b, sizeof b, "mon_sub_L3_%02u", d * opts_.snc + s);
        return b;
    }

    std::optional<Node> resolve(const char* path) const {
        std::vector<std::string> c = split(path);
        size_t n = c.size();
        if (n > 0 && c[0] == "info") {
            if (n == 1) {
                return Node{Kind::InfoDir};
            }
            auto files = infoFiles();
            if (n == 2 && files.count(c[1])) {
                return Node{Kind::InfoFile, 0, c[1]};
            }
            if (n == 2 && (c[1] == "L3_MON" || c[1] == "L3")) {
                return Node{Kind::InfoSubDir, 0, c[1]};
            }
            if (n == 3 && files.count(c[1] + "/" + c[2])) {
                return Node{Kind::InfoFile, 0, c[1] + "/" + c[2]};
            }
            return std::nullopt;
        }
        GroupId g = kRoot;
        size_t i = 0;
        for (;;) {
            const Group& grp = groups_.at(g);
            if (i == n) {
                return Node{Kind::GroupDir, g};
            }
            const std::string& name = c[i];
            const auto& files = grp.ctrl ? ctrlFiles() : monFiles();
            if (std::find(files.begin(), files.end(), name) != files.end()) {
                if (i + 1 == n) {
                    return Node{Kind::GroupFile, g, name};
                }
                return std::nullopt;
            }
            if (name == "mon_data") {
                return resolveMonData(g, c, i + 1);
            }
            if (name == "mon_groups" && grp.ctrl) {
                if (i + 1 == n) {
                    return Node{Kind::MonGroupsDir, g};
                }
                auto it = grp.monChildren.find(c[i + 1]);
                if (it == grp.monChildren.end()) {
                    return std::nullopt;
                }
                g = it->second;
                i += 2;
                continue;
            }
            if (g == kRoot) {
                auto it = ctrlByName_.find(name);
                if (it != ctrlByName_.end()) {
                    g = it->second;
                    ++i;
                    continue;
                }
            }
            return std::nullopt;
        }
    }

    std::optional<Node> resolveMonData(GroupId g, const std::vector<std::string>& c,
                                       size_t i) const {
        size_t n = c.size();
        if (i == n) {
            return Node{Kind::MonDataDir, g};
        }
        for (unsigned d = 0; d < opts_.l3Domains; ++d) {
            if (c[i] != domainName(d)) {
                continue;
            }
            if (i + 1 == n) {
                return Node{Kind::DomainDir, g, {}, static_cast<int>(d)};
            }
            if (auto e = eventFromName(c[i + 1])) {
                if (i + 2 == n) {
                    return Node{Kind::CounterFile, g, c[i + 1], static_cast<int>(d), -1, *e};
                }
                return std::nullopt;
            }
            for (unsigned s = 0; s < opts_.snc; ++s) {
                if (c[i + 1] != subName(d, s)) {
                    continue;
                }
                if (i + 2 == n) {
                    return Node{Kind::SubDir, g, {}, static_cast<int>(d), static_cast<int>(s)};
                }
                auto e = eventFromName(c[i + 2]);
                if (e && i + 3 == n) {
                    return Node{Kind::CounterFile,   g, c[i + 2], static_cast<int>(d),
                                static_cast<int>(s), *e};
                }
            }
            return std::nullopt;
        }
        return std::nullopt;
    }

    std::vector<std::string> list(const Node& node) const {
        std::vector<std::string> out;
        switch (node.kind) {
        case Kind::GroupDir: {
            const Group& g = groups_.at(node.group);
            out = g.ctrl ? ctrlFiles() : monFiles();
            out.push_back("mon_data");
            if (g.ctrl) {
                out.push_back("mon_groups");
            }
            if (node.group == kRoot) {
                out.push_back("info");
                for (auto& [name, id] : ctrlByName_) {
                    out.push_back(name);
                }
            }
            break;
        }
        case Kind::InfoDir:
            out = {"last_cmd_status", "L3_MON", "L3"};
            break;
        case Kind::InfoSubDir:
            for (auto& [k, v] : infoFiles()) {
                if (k.rfind(node.name + "/", 0) == 0) {
                    out.push_back(k.substr(node.name.size() + 1));
                }
            }
            break;
        case Kind::MonGroupsDir:
            for (auto& [name, id] : groups_.at(node.group).monChildren) {
                out.push_back(name);
            }
            break;
        case Kind::MonDataDir:
            for (unsigned d = 0; d < opts_.l3Domains; ++d) {
                out.push_back(domainName(d));
            }
            break;
        case Kind::DomainDir:
            for (auto e : kEventNames) {
                out.push_back(e);
            }
            for (unsigned s = 0; s < opts_.snc; ++s) {
                out.push_back(subName(static_cast<unsigned>(node.domain), s));
            }
            break;
        case Kind::SubDir:
            for (auto e : kEventNames) {
                out.push_back(e);
            }
            break;
        default:
            break;
        }
        return out;
    }

    static bool isDir(Kind k) {
        return k != Kind::InfoFile && k != Kind::GroupFile && k != Kind::CounterFile;
    }
    static bool isWritableFile(const Node& n) {
        return n.kind == Kind::GroupFile && writable(n.name);
    }
    bool groupExists(GroupId g) const { return groups_.count(g) != 0; }

    // ------------------------------------------------------------ RMIDs

    void expireLimbo() {
        auto now = Clock::now();
        for (auto it = limbo_.begin(); it != limbo_.end();) {
            if (now - it->second >= std::chrono::milliseconds(limboMs_)) {
                freeRmids_.push_back(it->first);
                it = limbo_.erase(it);
            } else {
                ++it;
            }
        }
    }
    int allocRmid(unsigned& out) {
        expireLimbo();
        if (!freeRmids_.empty()) {
            out = freeRmids_.front();
            freeRmids_.pop_front();
            return 0;
        }
        return limbo_.empty() ? -ENOSPC : -EBUSY;
    }
    void freeRmid(unsigned r) {
        if (limboMs_ == 0) {
            freeRmids_.push_back(r);
        } else {
            limbo_.emplace_back(r, Clock::now());
        }
    }
    std::string rmidsReport() {
        expireLimbo();
        return "free " + std::to_string(freeRmids_.size()) + " limbo " +
               std::to_string(limbo_.size()) + " total " + std::to_string(opts_.numRmids);
    }
    void setLimboMs(unsigned ms) { limboMs_ = ms; }

    // ------------------------------------------------------------ mkdir / rmdir

    int mkdir(const char* path) {
        if (resolve(path)) {
            return -EEXIST;
        }
        std::string p(path);
        size_t slash = p.rfind('/');
        std::string parentPath = slash == 0 ? "/" : p.substr(0, slash);
        std::string name = p.substr(slash + 1);
        lastCmd_.clear();
        if (name.find('\n') != std::string::npos) {
            return -EINVAL;
        }
        auto parent = resolve(parentPath.c_str());
        bool asCtrl = parent && parent->kind == Kind::GroupDir && parent->group == kRoot;
        bool asMon = parent && parent->kind == Kind::MonGroupsDir;
        if (!asCtrl && !asMon) {
            return -EPERM;
        }
        if (failNextMkdir_ != 0) {
            int e = failNextMkdir_;
            failNextMkdir_ = 0;
            lastCmd_ = std::string("Injected failure: ") + std::strerror(e) + "\n";
            return -e;
        }
        Group g;
        g.id = nextId_++;
        g.name = name;
        g.ctrl = asCtrl;
        if (asCtrl) {
            std::set<unsigned> used;
            for (auto& [id, grp] : groups_) {
                if (grp.ctrl) {
                    used.insert(grp.closid);
                }
            }
            unsigned closid = 0;
            while (used.count(closid)) {
                ++closid;
            }
            if (closid >= opts_.closids) {
                lastCmd_ = "Out of CLOSIDs\n";
                return -ENOSPC;
            }
            g.closid = closid;
            g.schemata = defaultSchemata();
        } else {
            g.parent = parent->group;
            g.closid = groups_.at(g.parent).closid;
        }
        int r = allocRmid(g.rmid);
        if (r < 0) {
            lastCmd_ = "Out of RMIDs\n";
            return r;
        }
        g.cpus = "0\n";
        g.lastUpdate = Clock::now();
        if (asCtrl) {
            ctrlByName_[name] = g.id;
        } else {
            groups_.at(g.parent).monChildren[name] = g.id;
        }
        groups_[g.id] = std::move(g);
        invalidate();
        return 0;
    }

    int rmdir(const char* path) {
        auto node = resolve(path);
        if (!node) {
            return -ENOENT;
        }
        if (!isDir(node->kind)) {
            return -ENOTDIR;
        }
        if (node->kind != Kind::GroupDir || node->group == kRoot) {
            return -EPERM;
        }
        Group& g = groups_.at(node->group);
        if (g.ctrl) {
            std::vector<GroupId> kids;
            for (auto& [n, id] : g.monChildren) {
                kids.push_back(id);
            }
            for (GroupId k : kids) {
                removeMon(k);
            }
            rewrite([&](Assign& a) {
                if (a.ctrl == g.id) {
                    a = Assign{};
                }
            });
            freeRmid(g.rmid);
            ctrlByName_.erase(g.name);
            groups_.erase(node->group);
        } else {
            removeMon(g.id);
        }
        invalidate();
        return 0;
    }

    void removeMon(GroupId id) {
        Group& g = groups_.at(id);
        rewrite([&](Assign& a) {
            if (a.mon == id) {
                a.mon = 0;
            }
        });
        freeRmid(g.rmid);
        groups_.at(g.parent).monChildren.erase(g.name);
        groups_.erase(id);
    }

    void rewrite(const std::function<void(Assign&)>& f) {
        for (auto& [k, recs] : history_) {
            for (auto& r : recs) {
                f(r.assign);
            }
        }
        for (auto& [k, a] : inherited_) {
            f(a);
        }
    }

    // ------------------------------------------------------------ threads and groups

    void invalidate() {
        scan_.reset();
        membership_.reset();
    }

    const ThreadInfo* lookup(pid_t tid) {
        if (scan_) {
            auto it = scan_->byTid.find(tid);
            if (it != scan_->byTid.end()) {
                return &scan_->threads[it->second];
            }
        }
        auto it = extra_.find(tid);
        if (it != extra_.end()) {
            return &it->second;
        }
        auto t = readThread(0, tid);
        if (!t) {
            return nullptr;
        }
        return &extra_.emplace(tid, *t).first->second;
    }

    // The group of thread x at the moment `child` was created (child null: now).
    Assign groupAt(const ThreadInfo& x, const ThreadInfo* child, int depth) {
        auto h = history_.find(TaskKey{x.tid, x.start});
        if (h != history_.end() && !h->second.empty()) {
            if (child == nullptr) {
                return h->second.back().assign;
            }
            for (auto it = h->second.rbegin(); it != h->second.rend(); ++it) {
                // Tie-break: a write in the same clock tick as the child's start counts
                // as before it unless the child was already seen when the write happened.
                if (it->tick < child->start ||
                    (it->tick == child->start && it->existed.count(child->tid) == 0)) {
                    return it->assign;
                }
            }
        }
        return inheritedOf(x, depth);
    }

    // The group a thread got at clone/fork: its creator's group at its start time.
    Assign inheritedOf(const ThreadInfo& x, int depth) {
        TaskKey key{x.tid, x.start};
        auto m = inherited_.find(key);
        if (m != inherited_.end()) {
            return m->second;
        }
        Assign a;
        pid_t creatorTid = x.tid != x.tgid ? x.tgid : x.ppid;
        if (creatorTid > 0 && depth < 256) {
            const ThreadInfo* creator = lookup(creatorTid);
            if (creator != nullptr && creator->start <= x.start) {
                a = groupAt(*creator, &x, depth + 1);
            }
        }
        inherited_[key] = a;
        return a;
    }

    // True if a new scan was made, false if the cached one (younger than 5 ms) is reused.
    bool ensureScan() {
        auto now = Clock::now();
        if (scan_ && now - scan_->when < std::chrono::milliseconds(5)) {
            return false;
        }
        auto s = std::make_unique<Scan>();
        s->when = now;
        for (const std::string& p : listDir("/proc")) {
            auto pid = parseNumber(p);
            if (!pid) {
                continue;
            }
            pid_t ppid = -1;
            std::vector<std::string> tids = listDir("/proc/" + p + "/task");
            for (const std::string& ts : tids) {
                auto tid = parseNumber(ts);
                if (!tid) {
                    continue;
                }
                auto t = readThread(static_cast<pid_t>(*pid), static_cast<pid_t>(*tid));
                if (!t) {
                    continue;
                }
                if (ppid < 0 || *tid == *pid) {
                    ppid = t->ppid;
                }
                s->byTid[t->tid] = s->threads.size();
                s->threads.push_back(*t);
            }
        }
        // Forget records of threads that are gone (the tid may be recycled).
        std::unordered_set<TaskKey, TaskKeyHash> alive;
        for (auto& t : s->threads) {
            alive.insert(TaskKey{t.tid, t.start});
        }
        std::erase_if(history_, [&](auto& kv) { return alive.count(kv.first) == 0; });
        std::erase_if(inherited_, [&](auto& kv) { return alive.count(kv.first) == 0; });
        extra_.clear();
        scan_ = std::move(s);
        membership_.reset();
        return true;
    }

    const Membership& membership() {
        freshScan_ = ensureScan();
        if (membership_) {
            return *membership_;
        }
        auto m = std::make_unique<Membership>();
        for (const ThreadInfo& t : scan_->threads) {
            Assign a = groupAt(t, nullptr, 0);
            if (!groups_.count(a.ctrl)) {
                a = Assign{};
            }
            if (a.mon != 0 && !groups_.count(a.mon)) {
                a.mon = 0;
            }
            m->ctrlMembers[a.ctrl].push_back(t.tid);
            if (a.mon != 0) {
                m->monMembers[a.mon].push_back(t.tid);
                m->ownCount[a.mon]++;
            } else {
                m->ownCount[a.ctrl]++;
            }
        }
        for (auto& [g, v] : m->ctrlMembers) {
            std::sort(v.begin(), v.end());
        }
        for (auto& [g, v] : m->monMembers) {
            std::sort(v.begin(), v.end());
        }
        membership_ = std::move(m);
        return *membership_;
    }

    CallerNs callerNs(pid_t callerPid) {
        CallerNs ns;
        if (callerPid <= 0) {
            return ns;
        }
        auto ino = pidNsInode(callerPid);
        if (!ino || *ino == selfNs_) {
            return ns;
        }
        auto status = readSmallFile("/proc/" + std::to_string(callerPid) + "/status");
        if (!status) {
            return ns;
        }
        auto nspid = statusLine(*status, "NSpid");
        if (nspid.size() < 2) {
            return ns;
        }
        ns.foreign = true;
        ns.inode = *ino;
        ns.level = nspid.size() - 1;
        return ns;
    }

    std::string tasksContent(GroupId g, pid_t callerPid) {
        const Membership& m = membership();
        const Group& grp = groups_.at(g);
        const auto& members = grp.ctrl ? m.ctrlMembers : m.monMembers;
        auto it = members.find(g);
        std::string out;
        if (it == members.end()) {
            return out;
        }
        // A reused scan may list threads reaped since: check those still exist.
        bool recheck = !freshScan_;
        CallerNs ns = callerNs(callerPid);
        std::vector<pid_t> ids;
        for (pid_t tid : it->second) {
            if (recheck &&
                ::access(("/proc/" + std::to_string(tid) + "/stat").c_str(), F_OK) != 0) {
                continue;
            }
            if (!ns.foreign) {
                ids.push_back(tid);
            } else if (auto id = idInNamespace(tid, ns)) {
                ids.push_back(*id);
            }
        }
        std::sort(ids.begin(), ids.end());
        for (pid_t id : ids) {
            out += std::to_string(id) + "\n";
        }
        return out;
    }

    // Maps an id written by a caller in a foreign pid namespace to our tid.
    std::optional<pid_t> translate(pid_t id, const CallerNs& ns) {
        for (const std::string& p : listDir("/proc")) {
            if (!parseNumber(p)) {
                continue;
            }
            for (const std::string& t : listDir("/proc/" + p + "/task")) {
                auto tid = parseNumber(t);
                if (!tid) {
                    continue;
                }
                auto status = readSmallFile("/proc/" + p + "/task/" + t + "/status");
                if (!status) {
                    continue;
                }
                auto nspid = statusLine(*status, "NSpid");
                if (nspid.size() > ns.level && nspid[ns.level] == id) {
                    if (auto check = idInNamespace(static_cast<pid_t>(*tid), ns);
                        check && *check == id) {
                        return static_cast<pid_t>(*tid);
                    }
                }
            }
        }
        return std::nullopt;
    }

    int moveTask(GroupId gid, pid_t id, pid_t callerPid, uid_t callerUid, const CallerNs& ns) {
        pid_t tid = id;
        if (id == 0) {
            tid = callerPid;
        } else if (ns.foreign) {
            auto t = translate(id, ns);
            if (!t) {
                lastCmd_ += "No task " + std::to_string(id) + "\n";
                return -ESRCH;
            }
            tid = *t;
        }
        auto info = readThread(0, tid);
        if (!info) {
            lastCmd_ += "No task " + std::to_string(id) + "\n";
            return -ESRCH;
        }
        if (callerUid != 0) {
            auto status = readSmallFile("/proc/" + std::to_string(tid) + "/status");
            auto uids = status ? statusLine(*status, "Uid") : std::vector<long>{};
            if (uids.size() < 3 || (uids[0] != callerUid && uids[2] != callerUid)) {
                lastCmd_ += "No permission to move task " + std::to_string(id) + "\n";
                return -EPERM;
            }
        }
        extra_.erase(tid);
        extra_.emplace(tid, *info);
        const Group& g = groups_.at(gid);
        Assign cur = groupAt(*info, nullptr, 0);
        if (!groups_.count(cur.ctrl)) {
            cur = Assign{};
        }
        Assign next = g.ctrl ? Assign{g.id, 0} : Assign{g.parent, g.id};
        if (!g.ctrl && cur.ctrl != g.parent) {
            lastCmd_ += "Can't move task to different control group\n";
            return -EINVAL;
        }
        if (failTasksAfter_ >= 0) {
            if (failTasksAfter_ == 0) {
                failTasksAfter_ = -1;
                lastCmd_ += "Injected failure for task " + std::to_string(id) + "\n";
                return -failTasksErrno_;
            }
            --failTasksAfter_;
        }
        // Snapshot the threads and children that exist before the move (tie-break).
        Record rec;
        std::string tg = std::to_string(info->tgid);
        for (const std::string& t : listDir("/proc/" + tg + "/task")) {
            if (auto n = parseNumber(t)) {
                rec.existed.insert(static_cast<pid_t>(*n));
                if (auto kids = readSmallFile("/proc/" + tg + "/task/" + t + "/children")) {
                    for (const std::string& k : splitWords(*kids)) {
                        if (auto kn = parseNumber(k)) {
                            rec.existed.insert(static_cast<pid_t>(*kn));
                        }
                    }
                }
            }
        }
        rec.tick = boottimeTicks();
        rec.assign = next;
        history_[TaskKey{info->tid, info->start}].push_back(std::move(rec));
        invalidate();
        return 0;
    }

    // Kernel semantics of a write to tasks: ids separated by commas, stop at first error.
    int writeTasks(GroupId gid, const std::string& data, pid_t callerPid, uid_t callerUid) {
        lastCmd_.clear();
        CallerNs ns = callerNs(callerPid);
        std::string buf = trim(data);
        size_t pos = 0;
        while (pos < buf.size() && buf[pos] != '\n') {
            size_t comma = buf.find(',', pos);
            std::string tok =
                trim(buf.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
            pos = comma == std::string::npos ? buf.size() : comma + 1;
            auto v = parseNumber(tok, 0);
            if (!v || *v > INT32_MAX) {
                lastCmd_ += "Task list parsing error pid " + tok + "\n";
                return -EINVAL;
            }
            if (*v < 0) {
                lastCmd_ += "Invalid pid " + tok + "\n";
                return -EINVAL;
            }
            int r = moveTask(gid, static_cast<pid_t>(*v), callerPid, callerUid, ns);
            if (r < 0) {
                lastCmd_ += "Error while processing task " + tok + "\n";
                return r;
            }
        }
        return 0;
    }

    int writeFile(const Node& n, const std::string& data, pid_t callerPid, uid_t callerUid) {
        if (!groupExists(n.group)) {
            return -ENODEV;
        }
        if (data.size() > 4096) {
            return -E2BIG;
        }
        if (n.name == "tasks") {
            return writeTasks(n.group, data, callerPid, callerUid);
        }
        lastCmd_.clear();
        Group& g = groups_.at(n.group);
        if (n.name == "cpus" || n.name == "cpus_list") {
            g.cpus = trim(data) + "\n";
        } else if (n.name == "schemata") {
            g.schemata = data;
        } else if (n.name == "mode") {
            std::string m = trim(data);
            if (m != "shareable" && m != "exclusive" && m != "pseudo-locksetup") {
                lastCmd_ = "Unknown or unsupported mode\n";
                return -EINVAL;
            }
            g.mode = m;
        }
        return 0;
    }

    // ------------------------------------------------------------ counters

    void updateActivity(Group& g, const Membership& m) {
        auto now = Clock::now();
        auto it = m.ownCount.find(g.id);
        size_t n = it == m.ownCount.end() ? 0 : it->second;
        double us = std::chrono::duration<double, std::micro>(now - g.lastUpdate).count();
        g.activityUs += us * static_cast<double>(n);
        g.lastUpdate = now;
    }

    uint64_t ownValue(Group& g, const Membership& m, int event, int unit) {
        updateActivity(g, m);
        auto it = m.ownCount.find(g.id);
        size_t n = it == m.ownCount.end() ? 0 : it->second;
        uint64_t f = static_cast<uint64_t>(unit + 1);
        switch (event) {
        case LlcOccupancy:
            return static_cast<uint64_t>(n) * 65536 * f;
        case MbmTotal:
            return static_cast<uint64_t>(g.activityUs) * 1000 * f; // ~1 GB/s per task
        default:
            return static_cast<uint64_t>(g.activityUs) * 600 * f;
        }
    }

    std::string counterContent(const Node& n) {
        Group& g = groups_.at(n.group);
        if (!g.override[n.event].empty()) {
            return g.override[n.event] + "\n";
        }
        const Membership& m = membership();
        std::vector<int> units;
        if (opts_.snc == 0) {
            units.push_back(n.domain);
        } else if (n.sub >= 0) {
            units.push_back(n.domain * static_cast<int>(opts_.snc) + n.sub);
        } else {
            for (unsigned s = 0; s < opts_.snc; ++s) {
                units.push_back(n.domain * static_cast<int>(opts_.snc) + static_cast<int>(s));
            }
        }
        uint64_t sum = 0;
        std::vector<GroupId> gs{g.id};
        if (g.ctrl) {
            for (auto& [name, id] : g.monChildren) {
                gs.push_back(id);
            }
        }
        for (GroupId id : gs) {
            for (int u : units) {
                sum += ownValue(groups_.at(id), m, n.event, u);
            }
        }
        return std::to_string(sum) + "\n";
    }

    std::string content(const Node& n, pid_t callerPid) {
        switch (n.kind) {
        case Kind::InfoFile:
            return infoFiles().at(n.name);
        case Kind::CounterFile:
            return counterContent(n);
        case Kind::GroupFile: {
            const Group& g = groups_.at(n.group);
            if (n.name == "tasks") {
                return tasksContent(n.group, callerPid);
            }
            if (n.name == "cpus") {
                return g.cpus;
            }
            if (n.name == "cpus_list") {
                return n.group == kRoot ? rootCpuList() : "\n";
            }
            if (n.name == "schemata") {
                return g.schemata;
            }
            if (n.name == "mode") {
                return g.mode + "\n";
            }
            if (n.name == "size") {
                std::string s = "    L3:";
                for (unsigned d = 0; d < opts_.l3Domains; ++d) {
                    s += (d ? ";" : "") + std::to_string(d) + "=" + std::to_string(1048576 * 20);
                }
                return s + "\n";
            }
            return {};
        }
        default:
            return {};
        }
    }

    // ------------------------------------------------------------ control

    std::string control(const std::string& line) {
        std::vector<std::string> w = splitWords(line);
        if (w.empty()) {
            return "error empty command";
        }
        const std::string& cmd = w[0];
        if (cmd == "ping" && w.size() == 1) {
            return "ok pong";
        }
        if (cmd == "limbo-ms" && w.size() == 2) {
            auto n = parseNumber(w[1]);
            if (!n || *n < 0) {
                return "error limbo-ms needs a number of milliseconds";
            }
            limboMs_ = static_cast<unsigned>(*n);
            return "ok";
        }
        if (cmd == "fail-next-mkdir" && w.size() == 2) {
            auto e = parseErrno(w[1]);
            if (!e) {
                return "error unknown errno " + w[1];
            }
            failNextMkdir_ = *e;
            return "ok";
        }
        if (cmd == "fail-tasks-write-after" && w.size() == 3) {
            auto n = parseNumber(w[1]);
            auto e = parseErrno(w[2]);
            if (!n || *n < 0 || !e) {
                return "error usage: fail-tasks-write-after N ERRNO";
            }
            failTasksAfter_ = *n;
            failTasksErrno_ = *e;
            return "ok";
        }
        if (cmd == "counter" && w.size() == 4) {
            auto node = resolve(w[1] == "/" ? "/" : ("/" + w[1]).c_str());
            if (!node || node->kind != Kind::GroupDir) {
                return "error no such group " + w[1];
            }
            std::vector<int> events;
            if (w[2] == "all") {
                events = {0, 1, 2};
            } else if (auto e = eventFromName(w[2])) {
                events = {*e};
            } else {
                return "error unknown event " + w[2];
            }
            std::string word = w[3];
            if (word == "clear") {
                word.clear();
            } else if (word != "Unavailable" && word != "Error" && word != "Unassigned") {
                return "error word must be Unavailable, Error, Unassigned or clear";
            }
            for (int e : events) {
                groups_.at(node->group).override[e] = word;
            }
            return "ok";
        }
        if (cmd == "rmids" && w.size() == 1) {
            return "ok " + rmidsReport();
        }
        return "error unknown command: " + line;
    }

    const Options& options() const { return opts_; }

private:
    std::string rootCpus() const {
        unsigned n = static_cast<unsigned>(std::max(1L, ::sysconf(_SC_NPROCESSORS_CONF)));
        std::string s;
        // hex mask of n CPUs
        unsigned full = n / 4;
        unsigned rest = n % 4;
        if (rest) {
            s += "0123456789abcdef"[(1u << rest) - 1];
        }
        s.append(full, 'f');
        return s + "\n";
    }
    std::string rootCpuList() const {
        long n = std::max(1L, ::sysconf(_SC_NPROCESSORS_CONF));
        return n == 1 ? "0\n" : "0-" + std::to_string(n - 1) + "\n";
    }
    std::string defaultSchemata() const {
        std::string s = "L3:";
        for (unsigned d = 0; d < opts_.l3Domains; ++d) {
            if (d != 0) {
                s += ';';
            }
            s += std::to_string(d);
            s += "=fffff";
        }
        return s + "\n";
    }

    Options opts_;
    unsigned limboMs_;
    std::map<GroupId, Group> groups_;
    std::map<std::string, GroupId> ctrlByName_;
    GroupId nextId_ = kRoot + 1;
    std::deque<unsigned> freeRmids_;
    std::vector<std::pair<unsigned, Clock::time_point>> limbo_;
    std::string lastCmd_;
    int failNextMkdir_ = 0;
    long failTasksAfter_ = -1;
    int failTasksErrno_ = 0;
    ino_t selfNs_ = 0;

    std::unordered_map<TaskKey, std::vector<Record>, TaskKeyHash> history_;
    std::unordered_map<TaskKey, Assign, TaskKeyHash> inherited_;
    std::unordered_map<pid_t, ThreadInfo> extra_; // threads read outside the last scan
    std::unique_ptr<Scan> scan_;
    bool freshScan_ = false;
    std::unique_ptr<Membership> membership_;
};

// ---------------------------------------------------------------- FUSE glue

State* gState = nullptr;
time_t gMountTime = 0;

struct OpenFile {
    State::Node node;
    std::string data;
    bool have = false;
};
std::unordered_map<uint64_t, OpenFile> gOpen; // guarded by gState->mu
uint64_t gNextFh = 1;

void* opInit(fuse_conn_info*, fuse_config* cfg) {
    cfg->entry_timeout = 0;
    cfg->attr_timeout = 0;
    cfg->negative_timeout = 0;
    cfg->direct_io = 1;
    cfg->kernel_cache = 0;
    cfg->use_ino = 0;
    return nullptr;
}

void fillStat(const State::Node& n, struct stat* st) {
    std::memset(st, 0, sizeof *st);
    st->st_uid = 0;
    st->st_gid = 0;
    st->st_atime = st->st_mtime = st->st_ctime = gMountTime;
    if (State::isDir(n.kind)) {
        st->st_mode = S_IFDIR | 0755;
        st->st_nlink = 2;
    } else {
        st->st_mode = S_IFREG | (State::isWritableFile(n) ? 0644 : 0444);
        st->st_nlink = 1;
        st->st_size = 0;
    }
}

int opGetattr(const char* path, struct stat* st, fuse_file_info*) {
    std::lock_guard lk(gState->mu);
    auto n = gState->resolve(path);
    if (!n) {
        return -ENOENT;
    }
    fillStat(*n, st);
    return 0;
}

int opReaddir(const char* path, void* buf, fuse_fill_dir_t filler, off_t, fuse_file_info*,
              fuse_readdir_flags) {
    std::vector<std::string> names;
    std::vector<mode_t> modes;
    {
        std::lock_guard lk(gState->mu);
        auto n = gState->resolve(path);
        if (!n) {
            return -ENOENT;
        }
        if (!State::isDir(n->kind)) {
            return -ENOTDIR;
        }
        names = gState->list(*n);
        // The kernel's resctrl (kernfs) fills d_type; without it every reader has to stat
        // each entry, one FUSE round trip apiece (1,000 per collection at 1,000 groups).
        const std::string base = std::string(path) == "/" ? std::string() : std::string(path);
        for (const auto& name : names) {
            auto c = gState->resolve((base + "/" + name).c_str());
            modes.push_back(c && State::isDir(c->kind) ? S_IFDIR : S_IFREG);
        }
    }
    filler(buf, ".", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
    filler(buf, "..", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
    for (std::size_t i = 0; i < names.size(); ++i) {
        struct stat st {};
        st.st_mode = modes[i];
        filler(buf, names[i].c_str(), &st, 0, static_cast<fuse_fill_dir_flags>(0));
    }
    return 0;
}

int opOpen(const char* path, fuse_file_info* fi) {
    std::lock_guard lk(gState->mu);
    auto n = gState->resolve(path);
    if (!n) {
        return -ENOENT;
    }
    if (State::isDir(n->kind)) {
        return -EISDIR;
    }
    if ((fi->flags & O_ACCMODE) != O_RDONLY && !State::isWritableFile(*n)) {
        return -EACCES;
    }
    fi->direct_io = 1;
    fi->nonseekable = 0;
    uint64_t fh = gNextFh++;
    gOpen.emplace(fh, OpenFile{*n, {}, false});
    fi->fh = fh;
    return 0;
}

int opRead(const char*, char* buf, size_t size, off_t off, fuse_file_info* fi) {
    std::lock_guard lk(gState->mu);
    auto it = gOpen.find(fi->fh);
    if (it == gOpen.end()) {
        return -EBADF;
    }
    OpenFile& of = it->second;
    if (of.node.group != 0 && !gState->groupExists(of.node.group)) {
        return -ENODEV;
    }
    if (off == 0 || !of.have) {
        of.data = gState->content(of.node, fuse_get_context()->pid);
        of.have = true;
    }
    if (static_cast<size_t>(off) >= of.data.size()) {
        return 0;
    }
    size_t n = std::min(size, of.data.size() - static_cast<size_t>(off));
    std::memcpy(buf, of.data.data() + off, n);
    return static_cast<int>(n);
}

int opWrite(const char*, const char* buf, size_t size, off_t, fuse_file_info* fi) {
    std::lock_guard lk(gState->mu);
    auto it = gOpen.find(fi->fh);
    if (it == gOpen.end()) {
        return -EBADF;
    }
    const fuse_context* ctx = fuse_get_context();
    int r = gState->writeFile(it->second.node, std::string(buf, size), ctx->pid, ctx->uid);
    return r < 0 ? r : static_cast<int>(size);
}

int opRelease(const char*, fuse_file_info* fi) {
    std::lock_guard lk(gState->mu);
    gOpen.erase(fi->fh);
    return 0;
}

int opTruncate(const char* path, off_t, fuse_file_info*) {
    std::lock_guard lk(gState->mu);
    auto n = gState->resolve(path);
    if (!n) {
        return -ENOENT;
    }
    return State::isWritableFile(*n) ? 0 : -EACCES;
}

int opMkdir(const char* path, mode_t) {
    std::lock_guard lk(gState->mu);
    return gState->mkdir(path);
}

int opRmdir(const char* path) {
    std::lock_guard lk(gState->mu);
    return gState->rmdir(path);
}

int opUnlink(const char*) {
    return -EPERM;
}
int opCreate(const char*, mode_t, fuse_file_info*) {
    return -EACCES;
}
int opMknod(const char*, mode_t, dev_t) {
    return -EACCES;
}
int opRename(const char*, const char*, unsigned int) {
    return -EPERM;
}
int opSymlink(const char*, const char*) {
    return -EPERM;
}
int opLink(const char*, const char*) {
    return -EPERM;
}
int opChmod(const char*, mode_t, fuse_file_info*) {
    return -EPERM;
}
int opChown(const char*, uid_t, gid_t, fuse_file_info*) {
    return -EPERM;
}
int opUtimens(const char*, const timespec*, fuse_file_info*) {
    return 0;
}

// ---------------------------------------------------------------- control socket

class ControlServer {
public:
    ControlServer(State& s, const std::string& path) : state_(s), path_(path) {
        ::unlink(path.c_str());
        listen_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        if (!listen_ || path.size() >= sizeof addr.sun_path) {
            throw std::runtime_error("cannot create control socket " + path);
        }
        std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
        if (::bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            ::listen(listen_.get(), 16) != 0) {
            throw std::runtime_error("cannot bind control socket " + path + ": " +
                                     std::strerror(errno));
        }
        wake_.reset(::eventfd(0, EFD_CLOEXEC));
    }
    ~ControlServer() {
        stop();
        ::unlink(path_.c_str());
    }
    void start() {
        thread_ = std::thread([this] { run(); });
    }
    void stop() {
        if (thread_.joinable()) {
            uint64_t one = 1;
            [[maybe_unused]] ssize_t r = ::write(wake_.get(), &one, sizeof one);
            thread_.join();
        }
    }

private:
    struct Conn {
        UniqueFd fd;
        std::string in;
    };

    void run() {
        std::vector<Conn> conns;
        for (;;) {
            std::vector<pollfd> pfds{{wake_.get(), POLLIN, 0}, {listen_.get(), POLLIN, 0}};
            for (auto& c : conns) {
                pfds.push_back({c.fd.get(), POLLIN, 0});
            }
            if (::poll(pfds.data(), pfds.size(), -1) < 0) {
                if (errno == EINTR) {
                    continue;
                }
                return;
            }
            if (pfds[0].revents) {
                return;
            }
            // Only the connections that were polled have a pfds entry; one accepted below
            // is polled on the next round (ASan: heap-buffer-overflow reading pfds[i + 2]).
            const size_t polled = conns.size();
            if (pfds[1].revents & POLLIN) {
                UniqueFd c(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
                if (c) {
                    conns.push_back(Conn{std::move(c), {}});
                }
            }
            for (size_t i = 0; i < polled; ++i) {
                if (pfds[i + 2].revents == 0) {
                    continue;
                }
                char buf[1024];
                ssize_t n = ::read(conns[i].fd.get(), buf, sizeof buf);
                if (n <= 0) {
                    conns[i].fd.reset();
                    continue;
                }
                conns[i].in.append(buf, static_cast<size_t>(n));
                size_t nl;
                while ((nl = conns[i].in.find('\n')) != std::string::npos) {
                    std::string line = conns[i].in.substr(0, nl);
                    conns[i].in.erase(0, nl + 1);
                    std::string reply;
                    {
                        std::lock_guard lk(state_.mu);
                        reply = state_.control(trim(line));
                    }
                    reply += "\n";
                    [[maybe_unused]] ssize_t w =
                        ::send(conns[i].fd.get(), reply.data(), reply.size(), MSG_NOSIGNAL);
                }
                if (conns[i].in.size() > 65536) {
                    conns[i].fd.reset();
                }
            }
            std::erase_if(conns, [](const Conn& c) { return !c.fd; });
        }
    }

    State& state_;
    std::string path_;
    UniqueFd listen_;
    UniqueFd wake_;
    std::thread thread_;
};

// ---------------------------------------------------------------- main

bool parseArgs(int argc, char** argv, Options& o, std::string& err) {
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto num = [&](unsigned& out) {
            if (i + 1 >= argc) {
                err = a + " needs a value";
                return false;
            }
            auto v = parseNumber(argv[++i]);
            if (!v || *v < 0 || *v > 1000000) {
                err = a + ": not a number: " + argv[i];
                return false;
            }
            out = static_cast<unsigned>(*v);
            return true;
        };
        if (a == "--num-rmids") {
            if (!num(o.numRmids)) {
                return false;
            }
        } else if (a == "--l3-domains") {
            if (!num(o.l3Domains)) {
                return false;
            }
        } else if (a == "--closids") {
            if (!num(o.closids)) {
                return false;
            }
        } else if (a == "--limbo-ms") {
            if (!num(o.limboMs)) {
                return false;
            }
        } else if (a == "--snc") {
            if (!num(o.snc)) {
                return false;
            }
        } else if (a == "--foreground" || a == "-f") {
            o.foreground = true;
        } else if (a == "--control") {
            if (i + 1 >= argc) {
                err = "--control needs a socket path";
                return false;
            }
            o.controlPath = argv[++i];
        } else if (!a.empty() && a[0] == '-') {
            err = "unknown option " + a;
            return false;
        } else if (o.mountpoint.empty()) {
            o.mountpoint = a;
        } else {
            err = "more than one mount point given";
            return false;
        }
    }
    if (o.mountpoint.empty()) {
        err = "no mount point given";
        return false;
    }
    if (o.numRmids < 1 || o.closids < 1 || o.l3Domains < 1) {
        err = "--num-rmids, --closids and --l3-domains must be at least 1";
        return false;
    }
    return true;
}

int run(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
            std::fputs(kUsage, stdout);
            return 0;
        }
    }
    Options opts;
    std::string err;
    if (!parseArgs(argc, argv, opts, err)) {
        std::fprintf(stderr, "resctrl-emu: %s\n%s", err.c_str(), kUsage);
        return 2;
    }
    char* real = ::realpath(opts.mountpoint.c_str(), nullptr);
    if (real == nullptr) {
        std::fprintf(stderr, "resctrl-emu: mount point %s: %s\n", opts.mountpoint.c_str(),
                     std::strerror(errno));
        return 1;
    }
    opts.mountpoint = real;
    std::free(real);
    if (!opts.controlPath.empty() && opts.controlPath[0] != '/') {
        char cwd[4096];
        if (::getcwd(cwd, sizeof cwd) != nullptr) {
            opts.controlPath = std::string(cwd) + "/" + opts.controlPath;
        }
    }

    State state(opts);
    gState = &state;
    gMountTime = ::time(nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    std::unique_ptr<ControlServer> control;
    try {
        if (!opts.controlPath.empty()) {
            control = std::make_unique<ControlServer>(state, opts.controlPath);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "resctrl-emu: %s\n", e.what());
        return 1;
    }

    fuse_operations ops{};
    ops.init = opInit;
    ops.getattr = opGetattr;
    ops.readdir = opReaddir;
    ops.open = opOpen;
    ops.read = opRead;
    ops.write = opWrite;
    ops.release = opRelease;
    ops.truncate = opTruncate;
    ops.mkdir = opMkdir;
    ops.rmdir = opRmdir;
    ops.unlink = opUnlink;
    ops.create = opCreate;
    ops.mknod = opMknod;
    ops.rename = opRename;
    ops.symlink = opSymlink;
    ops.link = opLink;
    ops.chmod = opChmod;
    ops.chown = opChown;
    ops.utimens = opUtimens;

    std::vector<std::string> args = {
        "resctrl-emu", "-o", "fsname=resctrl,subtype=resctrl,allow_other,default_permissions"};
    std::vector<char*> cargs;
    for (auto& a : args) {
        cargs.push_back(a.data());
    }
    fuse_args fargs = FUSE_ARGS_INIT(static_cast<int>(cargs.size()), cargs.data());
    // fuse_new() may copy the args into memory of its own: free it on every return
    // (LeakSanitizer in the ASan build).
    struct ArgsGuard {
        fuse_args* args;
        ~ArgsGuard() { fuse_opt_free_args(args); }
    } argsGuard{&fargs};
    fuse* f = fuse_new(&fargs, &ops, sizeof ops, nullptr);
    if (f == nullptr) {
        std::fprintf(stderr, "resctrl-emu: fuse_new failed\n");
        return 1;
    }
    if (fuse_mount(f, opts.mountpoint.c_str()) != 0) {
        std::fprintf(stderr, "resctrl-emu: cannot mount on %s (is /dev/fuse available?)\n",
                     opts.mountpoint.c_str());
        fuse_destroy(f);
        return 1;
    }
    fuse_session* se = fuse_get_session(f);
    if (fuse_daemonize(opts.foreground ? 1 : 0) != 0 || fuse_set_signal_handlers(se) != 0) {
        fuse_unmount(f);
        fuse_destroy(f);
        return 1;
    }
    if (control) {
        control->start();
    }
    int rc = fuse_loop(f);
    if (control) {
        control->stop();
    }
    fuse_remove_signal_handlers(se);
    fuse_unmount(f);
    fuse_destroy(f);
    control.reset();
    return rc < 0 ? 1 : 0;
}

} // namespace
} // namespace rdtmon::emu

int main(int argc, char** argv) {
    return rdtmon::emu::run(argc, argv);
}
