#pragma once
// resctrl-emu: the in-memory resctrl tree. Groups with their CLOSIDs and RMIDs, which
// thread is in which group, the files' contents, the counters, and the failures a test
// asked for through the control socket. FuseOps.cpp maps FUSE calls onto it.

#include "HostProc.h"
#include "Options.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <sys/types.h>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace rdtmon::emu {

using Clock = std::chrono::steady_clock;

enum Event { LlcOccupancy = 0, MbmTotal = 1, MbmLocal = 2, kEvents = 3 };
inline constexpr const char* kEventNames[kEvents] = {"llc_occupancy", "mbm_total_bytes",
                                                     "mbm_local_bytes"};

std::optional<int> eventFromName(const std::string& s);

// Intel's telemetry events (ModelTelemetry.cpp), in info/PERF_PKG_MON/mon_features order:
// the first two are decimal (fixed point, printed as the kernel prints them), the rest
// integer counts.
inline constexpr int kPkgEvents = 9;
inline constexpr const char* kPkgEventNames[kPkgEvents] = {
    "core_energy",     "activity", "stalls_llc_hit",      "c1_res",      "unhalted_core_cycles",
    "stalls_llc_miss", "c6_res",   "unhalted_ref_cycles", "uops_retired"};

// The hidden directory that holds the per-task files (Kind::ProcDir).
inline constexpr const char* kProcDirName = ".proc";
// The hidden directory that holds the kernel's cacheinfo (Kind::SysDir): as under /sys,
// devices/system/cpu/cpuN/cache/indexM/{level,id,size,type}.
inline constexpr const char* kSysDirName = ".sys";

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
    // Counter model, per unit (an L3 domain, or with SNC a sub-domain; index domain * snc +
    // sub): MBM bytes since mkdir, brought up to date at each read. Undriven, a unit grows
    // with the group's own task count; driven, at the rates a test set (drive command).
    struct Unit {
        double bytes[2] = {0, 0}; // mbm_total_bytes, mbm_local_bytes
        bool driven = false;
        double bps[2] = {0, 0};
        double llc = 0;
    };
    std::vector<Unit> units;
    // Assignable counters (ModelAssign.cpp): per L3 domain, whether the group's RMID holds
    // a counter for mbm_total_bytes [0] and mbm_local_bytes [1].
    std::vector<std::array<bool, 2>> cntr;
    // Telemetry (ModelTelemetry.cpp): joules used since mkdir, at the watts a test set
    // (energy command), spread evenly over the packages.
    double joules = 0;
    double watts = 0;
    Clock::time_point energyUpdate = Clock::now();
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
    uint64_t startTick = 0; // boottime ticks when it began: a thread started since may miss
    std::vector<ThreadInfo> threads;
    std::unordered_map<pid_t, size_t> byTid;
};

struct Membership {
    std::unordered_map<GroupId, std::vector<pid_t>> ctrlMembers; // every thread of the CLOS
    std::unordered_map<GroupId, std::vector<pid_t>> monMembers;
    std::unordered_map<GroupId, size_t> ownCount; // threads on the group's own RMID
    size_t threads = 0;                           // every thread of the host
};

// Paths are relative to the mount and start with '/'. Every call needs `mu` held; mkdir,
// rmdir and file operations return 0 or -errno as the kernel's resctrl would.
// Model.cpp: the tree, RMIDs, file contents and counters. ModelTasks.cpp: which thread is
// in which group (tasks files, inheritance, the /proc scan).
class Model {
public:
    // How long a /proc scan serves tasks reads, and counter reads. Counters need no
    // thread-exact freshness (a task count 1 s old changes a rate by a few threads' worth),
    // and a read of every group's counters would otherwise scan /proc every 5 ms.
    static constexpr std::chrono::milliseconds kScanReuse{5};
    static constexpr std::chrono::milliseconds kCounterScanReuse{1000};

    explicit Model(const Options& o);

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
        CounterFile,
        // .proc, .proc/<pid>, .proc/<pid>/cpu_resctrl_groups: the kernel's per-task file,
        // served here because the daemon under test cannot read it from /proc for a FUSE
        // resctrl. Never listed in the root, as no such entry is in the kernel's.
        ProcDir,
        ProcTaskDir,
        ProcTaskFile,
        // mon_data/mon_PERF_PKG_XX and its files (domain: the package, event: the index in
        // kPkgEventNames).
        PkgDir,
        PkgFile,
        // .sys and below (name: the path below .sys): never listed in the root either.
        SysDir,
        SysFile
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

    std::optional<Node> resolve(const char* path) const;
    std::vector<std::string> list(const Node& node) const;

    static bool isDir(Kind k) {
        return k != Kind::InfoFile && k != Kind::GroupFile && k != Kind::CounterFile &&
               k != Kind::ProcTaskFile && k != Kind::PkgFile && k != Kind::SysFile;
    }
    bool isWritableFile(const Node& n) const {
        return (n.kind == Kind::GroupFile && writable(n.name)) ||
               (n.kind == Kind::InfoFile && infoWritable(n.name));
    }
    bool groupExists(GroupId g) const { return groups_.count(g) != 0; }

    // ------------------------------------------------------------ filesystem operations

    int mkdir(const char* path);
    int rmdir(const char* path);
    // A file's text as a read at offset 0 sees it (tasks ids in callerPid's pid namespace),
    // or -errno where the kernel's read fails (the assignment files outside mbm_event mode).
    int read(const Node& n, pid_t callerPid, std::string& out);
    std::string content(const Node& n, pid_t callerPid);
    // cpu_resctrl_groups of task id (in callerPid's pid namespace), in the kernel's format
    // (fs/resctrl/rdtgroup.c, proc_resctrl_show): "res:/" or "res:NAME", then "mon:" and the
    // MON group's name or nothing. -ESRCH when there is no such task.
    int taskGroups(const std::string& id, pid_t callerPid, std::string& out);
    int writeFile(const Node& n, const std::string& data, pid_t callerPid, uid_t callerUid);

    // ------------------------------------------------------------ test control

    std::string rmidsReport();
    void setLimboMs(unsigned ms) { limboMs_ = ms; }
    void failNextMkdir(int err) { failNextMkdir_ = err; }
    void failTasksWriteAfter(long n, int err) {
        failTasksAfter_ = n;
        failTasksErrno_ = err;
    }
    // The write(2) to a tasks file after the next n waits until releaseTasksWrite() (at most
    // kMaxTasksWriteHold); one-shot. mu is released while it waits, so other file
    // operations go on (on other FUSE threads): a test can act while a caller is inside a
    // move.
    static constexpr std::chrono::seconds kMaxTasksWriteHold{10};
    void holdTasksWriteAfter(long n) { holdTasksAfter_ = n; }
    bool tasksWriteHeld() const { return tasksWriteHeld_; }
    void releaseTasksWrite() {
        holdTasksAfter_ = -1;
        tasksWriteHeld_ = false;
        holdCv_.notify_all();
    }
    // Called for every write(2) to a tasks file, with mu held through lk.
    void maybeHoldTasksWrite(std::unique_lock<std::mutex>& lk);
    // The next read of a counter file waits until releaseCounterRead() (at most
    // kMaxTasksWriteHold), mu released meanwhile: a test can act while a reader is inside
    // a read pass. One-shot.
    void holdCounterRead() { holdCounterRead_ = true; }
    bool counterReadHeld() const { return counterReadHeld_; }
    void releaseCounterRead() {
        holdCounterRead_ = false;
        counterReadHeld_ = false;
        holdCv_.notify_all();
    }
    void maybeHoldCounterRead(std::unique_lock<std::mutex>& lk);
    // Before a counter read: a /proc scan at most kCounterScanReuse old, made with mu
    // released (lk is unlocked and locked again).
    void refreshCounterScan(std::unique_lock<std::mutex>& lk);
    // The next /proc scan a counter read makes waits as it starts, until releaseScan() (at
    // most kMaxTasksWriteHold): a test can check that mkdir and tasks writes go on while a
    // counter read scans. One-shot. Needs no mu.
    void holdNextScan() { holdNextScan_ = true; }
    bool scanHeld() const { return scanHeld_; }
    void releaseScan() {
        {
            std::lock_guard lk(scanHoldMu_);
            holdNextScan_ = false;
            scanHeld_ = false;
        }
        scanHoldCv_.notify_all();
    }
    // word: what reads of the event return instead of a number, "" for the number.
    void overrideCounter(GroupId g, int event, const std::string& word) {
        groups_.at(g).override[event] = word;
    }
    // From now on the group's own RMID counts totalBps / localBps of MBM and holds llcBytes
    // of cache, on L3 domain `domain` (split evenly over its SNC sub-domains), or with
    // nullopt split evenly over every domain, so the group's sum has these rates. Returns
    // false for a domain that does not exist.
    bool drive(GroupId g, std::optional<unsigned> domain, double totalBps, double localBps,
               double llcBytes);
    // Back to the task-driven model on every domain; the counters go on from where they are.
    void driveOff(GroupId g);
    // The group's own RMID counts event (an MBM one) from 0 again: the value goes down.
    void resetCounter(GroupId g, int event);
    // From now on the group's own RMID uses watts (core_energy), spread evenly over the
    // packages (ModelTelemetry.cpp).
    void setWatts(GroupId g, double watts);

private:
    // lookup (Model.cpp)
    static std::vector<std::string> split(const char* path);
    std::map<std::string, std::string> infoFiles() const;
    // The entries of directory dir ("" for the top) of a tree given as its files' paths
    // (infoFiles, sysFiles): each file or directory right below it, once, sorted.
    static std::vector<std::string> namesBelow(const std::map<std::string, std::string>& files,
                                               const std::string& dir);
    // The files below .sys, by path below it: one CPU per L3 domain (cpuD in domain D),
    // each with an L1 data cache (index0) and its L3 (index3).
    std::map<std::string, std::string> sysFiles() const;
    const std::vector<std::string>& groupFiles(bool ctrl) const;
    static bool writable(const std::string& file) { return file != "size"; }
    std::string domainName(unsigned d) const;
    std::string subName(unsigned d, unsigned s) const;
    std::optional<Node> resolveMonData(GroupId g, const std::vector<std::string>& c,
                                       size_t i) const;

    // RMIDs and groups (Model.cpp)
    // The RMIDs a group of CLOS closid takes from: one pool for all (x86), or one per CLOS
    // (--rmids-per-clos, as Arm MPAM's PMGs are per PARTID).
    struct RmidPool {
        std::deque<unsigned> free;
        std::vector<std::pair<unsigned, Clock::time_point>> limbo;
    };
    RmidPool& poolOf(unsigned closid);
    void expireLimbo();
    int allocRmid(unsigned closid, unsigned& out);
    void freeRmid(unsigned closid, unsigned r);
    void removeMon(GroupId id);

    // assignable counters (ModelAssign.cpp; README, "Assignable counters")
    bool cntrAssignable() const {
        return opts_.mbmAssign == "mbm_event" || opts_.mbmAssign == "default" ||
               opts_.mbmAssign == "fixed";
    }
    bool infoWritable(const std::string& name) const;
    void assignInfoFiles(std::map<std::string, std::string>& f) const;
    int readAssign(const Node& n, std::string& out);
    int writeInfo(const std::string& name, const std::string& data);
    int writeAssignments(Group& g, const std::string& data);
    int assignLine(Group& g, const std::string& line);
    // Assigns (on) or frees the counter of event ev (0 total, 1 local) on L3 domain d; the
    // group's count of that event on d restarts from 0 when it changes. -ENOSPC when no
    // counter is free there.
    int setCntr(Group& g, int ev, unsigned d, bool on);
    void assignOnMkdir(Group& g);
    void freeCntrs(Group& g);
    void switchAssignMode(bool enable);
    // Whether g's own RMID counts event on L3 domain d: always, but in mbm_event mode an
    // MBM event only where g holds a counter for it (a read of none gives "Unassigned").
    bool countsOn(const Group& g, int event, unsigned d) const;
    void updateAll();                              // every group's counts brought up to now
    void resetUnits(Group& g, int ev, unsigned d); // g's count of ev on L3 domain d is 0

    // threads and groups (ModelTasks.cpp)
    void rewrite(const std::function<void(Assign&)>& f);
    void invalidate();
    const ThreadInfo* lookup(pid_t tid);
    Assign groupAt(const ThreadInfo& x, const ThreadInfo* child, int depth);
    Assign inheritedOf(const ThreadInfo& x, int depth);
    static std::unique_ptr<Scan> scanProc();
    static std::size_t addHostThreads(Scan& s);
    std::unique_ptr<Scan> backgroundScan(bool niced);
    void installScan(std::unique_ptr<Scan> s);
    bool ensureScan(Clock::duration maxAge);
    void topUpScan();
    // The membership from a scan at most maxAge old (kScanReuse for tasks files).
    const Membership& membership(Clock::duration maxAge = kScanReuse);
    CallerNs callerNs(pid_t callerPid);
    std::string tasksContent(GroupId g, pid_t callerPid);
    std::optional<pid_t> translate(pid_t id, const CallerNs& ns);
    int moveTask(GroupId gid, pid_t id, pid_t callerPid, uid_t callerUid, const CallerNs& ns);
    int writeTasks(GroupId gid, const std::string& data, pid_t callerPid, uid_t callerUid);

    // counters and fixed contents (Model.cpp)
    unsigned unitCount() const { return opts_.l3Domains * std::max(1u, opts_.snc); }
    // With a domain bandwidth (Options::domainMbps), the undriven tasks' part of each unit's
    // bandwidth and cache, and one undriven task's bandwidth in bytes per microsecond
    // (infinity without a limit).
    static constexpr double kIdlePart = 0.1;
    double idlePerTask(const Membership& m) const;
    void updateActivity(Group& g, const Membership& m, Clock::time_point now);
    uint64_t ownValue(Group& g, const Membership& m, int event, int unit, Clock::time_point now);
    std::string counterContent(const Node& n);
    // telemetry (ModelTelemetry.cpp)
    std::string pkgName(unsigned p) const;
    void updateEnergy(Group& g, Clock::time_point now);
    std::string pkgContent(const Node& n);
    std::string rootCpus() const;
    std::string rootCpuList() const;
    std::string defaultSchemata() const;

    Options opts_;
    unsigned limboMs_;
    std::map<GroupId, Group> groups_;
    std::map<std::string, GroupId> ctrlByName_;
    GroupId nextId_ = kRoot + 1;
    std::map<unsigned, RmidPool> pools_;
    bool assignEnabled_ = false; // mbm_event mode in force
    bool assignOnMkdir_ = true;
    std::vector<unsigned> cntrsFree_; // per L3 domain
    std::string eventFilter_[2];
    std::string lastCmd_;
    int failNextMkdir_ = 0;
    long failTasksAfter_ = -1;
    int failTasksErrno_ = 0;
    long holdTasksAfter_ = -1;
    bool tasksWriteHeld_ = false;
    bool holdCounterRead_ = false;
    bool counterReadHeld_ = false;
    std::condition_variable holdCv_;
    ino_t selfNs_ = 0;

    std::unordered_map<TaskKey, std::vector<Record>, TaskKeyHash> history_;
    std::unordered_map<TaskKey, Assign, TaskKeyHash> inherited_;
    std::unordered_map<pid_t, ThreadInfo> extra_; // threads read outside the last scan
    std::unique_ptr<Scan> scan_;
    bool scanning_ = false; // the first scan for counter reads is being made, without mu
    std::atomic<bool> holdNextScan_{false};
    std::atomic<bool> scanHeld_{false};
    std::mutex scanHoldMu_;
    std::condition_variable scanHoldCv_;
    Clock::time_point lastChange_; // of the tree or of a task's group
    bool freshScan_ = false;
    std::unique_ptr<Membership> membership_;
    // A refresh of the scan for counter reads, made aside (refreshCounterScan). Last: its
    // destructor waits for the scan, which uses the members above.
    std::future<std::unique_ptr<Scan>> nextScan_;
};

} // namespace rdtmon::emu
