#pragma once

#include "Errors.h"
#include "ResctrlParsers.h"
#include "UniqueFd.h"
#include "WorkerPool.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace rdtmon {

// domain ("mon_L3_00", or "mon_L3_00/mon_sub_L3_01" with SNC) -> event -> value.
using Counters = std::map<std::string, std::map<std::string, uint64_t>>;
// The same for events that read a decimal fraction (Intel's core_energy, activity, on
// mon_PERF_PKG_YY): a double holds what the kernel prints to its last digit up to 2^53
// units of it (at 6 places, 9e9 joules).
using Decimals = std::map<std::string, std::map<std::string, double>>;

// A MON group as found on disk: ctrl is "" for the root CTRL_MON group, else the
// CTRL_MON group's directory name.
struct MonGroupRef {
    std::string ctrl;
    std::string name;
    bool operator==(const MonGroupRef&) const = default;
};

// The mon_data layout of the default group: every domain (and SNC sub-domain) with the
// event files it holds.
struct CountersLayout {
    struct Domain {
        std::string key;                 // "mon_L3_00" or "mon_L3_00/mon_sub_L3_01"
        std::string dir;                 // "mon_L3_00"
        std::string sub;                 // "" or "mon_sub_L3_01"
        std::vector<std::string> events; // event file names
    };
    std::vector<Domain> domains; // a domain before its sub-domains
};

// A thread a move put into a MON group, and where it was before: the name of the MON group
// it left ("" for its CTRL_MON group's own RMID), nullopt when that could not be told (no
// per-task file).
struct MovedThread {
    pid_t tid = 0;
    std::optional<std::string> from;
};

// Assignable counters as info/L3_MON shows them (Linux 6.18+; docs/architecture.md,
// "Assignable counters"), read anew at each call: an operator may switch the mode.
struct AssignInfo {
    std::string mode;        // "" (no mbm_assign_mode: an older kernel), "default", "mbm_event"
    bool switchable = false; // the file lists another mode too
    std::map<unsigned, unsigned> counters;  // num_mbm_cntrs: domain id -> counters
    std::map<unsigned, unsigned> available; // available_mbm_cntrs (mbm_event mode only)
    std::optional<bool> onMkdir;            // mbm_assign_on_mkdir (mbm_event mode only)
    bool mbmEvent() const { return mode == "mbm_event"; }
};

// An assignment the kernel refused with ENOSPC: no counter free on that domain. Of kind
// Busy: another group holds them, and one freed later makes the same write succeed.
class OutOfCounters : public Error {
public:
    explicit OutOfCounters(const std::string& message) : Error(ErrorKind::Busy, message) {}
};

// A tasks write the kernel refused with EINVAL: the task is in another CTRL_MON group than
// the MON group's parent. Of kind Failed, so a caller that does not ask for it sees any
// failure.
class TaskInAnotherCtrlGroup : public Error {
public:
    explicit TaskInAnotherCtrlGroup(const std::string& message)
        : Error(ErrorKind::Failed, message) {}
};

// What the bulk reads share from one pass to the next (Resctrl::beginCountersPass): the
// layout, learnt again at each pass, the mon_groups directories opened during the pass,
// and the counter files kept open between passes. A counter file is read again with
// pread(fd, 0), as the kernel allows (every read at offset 0 regenerates it): one syscall
// and, on FUSE, one round trip per counter instead of open, read and release. A file of a
// group removed (or removed and made anew) reads ENODEV: it is closed and opened again
// by name. At most budget() files stay open (half the fds left under RLIMIT_NOFILE).
// beginCountersPass reads every kept file at once, with pread(2)s in parallel on a small
// pool of threads owned by the pass (kReaders in flight, counting the caller's): only
// those reads and the parsing of their numbers, everything else stays on the caller's
// thread.
class CountersPass {
public:
    static constexpr unsigned kReaders = 4;

    CountersPass();
    const CountersLayout& layout() const { return layout_; }
    std::size_t openFiles() const { return open_; }
    std::size_t budget() const { return budget_; }
    void setBudget(std::size_t n) { budget_ = n; } // for tests
    // Kept files read in parallel by the last beginCountersPass (for tests).
    std::size_t prefetchedFiles() const { return prefetched_; }

private:
    friend class Resctrl;
    // One kept file's read at the start of the pass: errno, or the number (none for a word).
    struct Read {
        int err = 0;
        std::optional<uint64_t> value;
        std::optional<double> decimal;
    };
    struct Kept {
        std::vector<UniqueFd> fds; // one per (domain, event) of the layout, in its order
        std::vector<Read> reads;   // filled by beginCountersPass when every fd is open
        bool prefetched = false;   // reads are this pass's; used once
    };
    CountersLayout layout_;
    std::map<std::string, UniqueFd> monGroupsDirs_; // by CTRL_MON name; invalid fd: none
    std::map<std::string, Kept> files_;             // by "<ctrl>\n<mon>"
    std::map<std::string, bool> seen_;              // groups read in this pass
    std::size_t open_ = 0;
    std::size_t budget_ = 0;
    std::size_t prefetched_ = 0;
    WorkerPool pool_{kReaders - 1};
};

// One MON group's files for a turn at the assignable counters (Resctrl::openTurn): its
// mbm_L3_assignments and the counted events' files on each L3 domain, opened once at the
// turn's take and closed when it ends, so that a turn costs one write to take, one to give
// back, and one pread per counted file for each of its two reads.
class TurnFiles {
public:
    bool isOpen() const { return !!assign_; }

private:
    friend class Resctrl;
    struct File {
        std::string domain; // mon_L3_00
        std::string event;
        UniqueFd fd;
    };
    std::string shown_;   // the group's path, for messages
    std::string takeAll_; // the lines that give every counted event on every domain
    std::string freeAll_; // the lines that free them
    UniqueFd assign_;     // mbm_L3_assignments, for writing
    std::vector<File> files_;
};

// Access to one resctrl filesystem (the kernel's or the emulator). Bus-free, no global
// state; every write goes through *at() calls relative to the root dirfd with
// O_NOFOLLOW, so a symlink planted inside the tree is never followed for a write.
class Resctrl {
public:
    // Mount discovery and mounting (ResctrlMount.cpp).
    // Finds the mount point of a filesystem of type "resctrl" in a mountinfo file.
    static std::optional<std::string>
    findMount(const std::string& mountinfo = "/proc/self/mountinfo");
    // mount -t resctrl resctrl PATH -o OPTIONS. Throws Error: NotSupported for ENODEV,
    // InvalidArgument for EINVAL, Failed otherwise. Already mounted at PATH is success
    // (checked first, and again on EBUSY); EBUSY with no resctrl mount visible here (it was
    // mounted in another mount namespace) or one at another path is Failed.
    static void mount(const std::string& path, const std::string& options);

    // Opens PATH as a resctrl root. Throws Error(NotSupported) when PATH has no info/ dir.
    explicit Resctrl(std::string path);

    const std::string& path() const { return path_; }
    // True when path() is a real kernel resctrl mount (statfs magic), so
    // /proc/PID/cpu_resctrl_groups describes it.
    bool isKernelMount() const { return kernel_; }
    // Where a task's groups can be read without a tasks scan: the kernel's
    // /proc/TID/cpu_resctrl_groups, or resctrl-emu's copy of it under .proc/ (which the
    // kernel's resctrl never has). nullopt: a kernel without CONFIG_PROC_CPU_RESCTRL, or an
    // emulator run as one.
    std::optional<std::string> taskGroupsFile(pid_t tid) const;

    bool monitoringSupported() const; // info/L3_MON exists
    // info/L3_MON/mon_features and num_rmids (0 if unknown), read once when opened.
    const std::vector<std::string>& monFeatures() const { return monFeatures_; }
    // info/PERF_PKG_MON/mon_features (Intel's telemetry, Linux 7.0): empty where none.
    const std::vector<std::string>& telemetryFeatures() const { return telemetryFeatures_; }
    unsigned numRmids() const { return numRmids_; }
    // L3 cache id (the XX of mon_L3_XX) -> size in bytes, read once when opened from the
    // kernel's cacheinfo (/sys/devices/system/cpu), or from resctrl-emu's copy of it under
    // .sys/; empty where neither can be read.
    const std::map<uint32_t, uint64_t>& l3CacheSizes() const { return l3CacheSizes_; }
    std::string lastCmdStatus() const; // info/last_cmd_status, trimmed

    // The CTRL_MON group holding task pid: "" for the root group. Reads taskGroupsFile(pid);
    // without one (or when it cannot be parsed) scans the CTRL_MON groups' tasks files,
    // each of which walks every thread of the host. Throws Error(NoSuchProcess).
    std::string ctrlGroupOf(pid_t pid) const;
    // The name of the MON group holding thread tid ("" for none) from taskGroupsFile(tid);
    // nullopt when that cannot tell (no such file, the task gone): the caller then reads
    // tasks files.
    std::optional<std::string> monGroupOfTask(pid_t tid) const;
    // Both groups of a task from its cpu_resctrl_groups; nullopt when the kernel has no such
    // file (hasTaskGroupsFiles() false) or the task is gone.
    std::optional<TaskGroups> groupsOfTask(pid_t tid) const;
    bool hasTaskGroupsFiles() const { return taskGroupsFile(1).has_value(); }

    // mkdir <ctrl>/mon_groups/<name>. Throws per kindFromErrno; the message includes
    // info/last_cmd_status when the kernel gave one.
    void createMonGroup(const MonGroupRef& g);
    // rmdir only (never unlink). Throws NoSuchGroup when absent.
    void removeMonGroup(const MonGroupRef& g);
    bool monGroupExists(const MonGroupRef& g) const;
    // All MON groups under every CTRL_MON group (root included).
    std::vector<MonGroupRef> listMonGroups() const;

    // Writes one tid to the group's tasks. Throws per kindFromErrno (ESRCH -> NoSuchProcess).
    void moveTask(const MonGroupRef& g, pid_t tid);
    // Moves every thread in /proc/PID/task into the group, one id per write, and repeats
    // until no new thread appears. Threads that exit mid-way are ignored; the leader
    // vanishing throws NoSuchProcess.
    // With `moved`, each thread it moved is added there as it goes (also when it throws
    // later), with the group it came from: an undo can then put back exactly those.
    void moveProcess(const MonGroupRef& g, pid_t pid, std::vector<MovedThread>* moved = nullptr);
    // Undoes what a moveProcess into g did to these threads: each goes back to the MON group
    // it came from when that still exists, else onto g's CTRL_MON group's own RMID, where an
    // rmdir of g would also put it. A thread that is gone is skipped; failures are logged,
    // never thrown (this runs on a path that is already failing).
    void moveBack(const MonGroupRef& g, const std::vector<MovedThread>& moved);
    std::vector<pid_t> tasks(const MonGroupRef& g) const;

    // Reads mon_data of every domain (and SNC sub-domain); events that read a word
    // are left out. Throws NoSuchGroup when the group is gone.
    Counters readCounters(const MonGroupRef& g) const;

    // Bulk reading (ResctrlBulk.cpp).
    // Lists the default group's mon_data (a changed layout closes every kept file), then
    // reads every kept file, in parallel, for readCountersBulk to take. Throws when mon_data
    // cannot be listed.
    void beginCountersPass(CountersPass& pass) const;
    // Closes the kept files of every group not read since beginCountersPass.
    void endCountersPass(CountersPass& pass) const;
    // The counters of one group, by the pass's layout: a CTRL_MON group's own mon_data (mon
    // empty; ctrl "" is the default group) or MON group mon of ctrl. Events that read a word
    // are left out, as in readCounters. nullopt when the group is gone (also when it goes
    // during the read). A domain or event missing while the group is there (CPU hotplug),
    // or failing to read, is left out (logged at debug): never throws for one group. With
    // decimals, the events that read a decimal fraction go there (else they are left out).
    std::optional<Counters> readCountersBulk(CountersPass& pass, const std::string& ctrl,
                                             const std::string& mon,
                                             Decimals* decimals = nullptr) const;
    // The names of the CTRL_MON groups other than the default one, sorted.
    std::vector<std::string> listCtrlGroups() const;
    // RMIDs held by the groups that exist now: the default group, every other CTRL_MON
    // group and every MON group.
    unsigned rmidsInUse() const;

    // Assignable counters (ResctrlAssign.cpp). A MON group's mbm_L3_assignments: event ->
    // domain -> holds a counter. Throws NoSuchGroup, NotSupported (no such file: counters
    // are not assignable here), InvalidArgument (EINVAL: not in mbm_event mode), Failed.
    AssignInfo assignInfo() const;
    Assignments assignments(const MonGroupRef& g) const;
    // Gives (on) or frees the group's counter of event on domain, or on every domain with
    // nullopt (up to the first that has none left: the earlier ones keep theirs). The
    // group's count of that event restarts from 0 wherever this changes something. Throws
    // OutOfCounters (ENOSPC), NoSuchGroup, InvalidArgument (an event name that is not a
    // plain word, EINVAL or ENOENT from the kernel), NotSupported, Failed; messages carry
    // info/last_cmd_status.
    void setAssignment(const MonGroupRef& g, const std::string& event,
                       std::optional<unsigned> domain, bool on);

    // A turn's files (ResctrlTurn.cpp): events on the L3 domains given. Throws NoSuchGroup,
    // NotSupported (no mbm_L3_assignments), InvalidArgument (an event that is not a word),
    // Failed.
    TurnFiles openTurn(const MonGroupRef& g, const std::vector<std::string>& events,
                       const std::vector<unsigned>& domains) const;
    // Gives the group every event's counter on every domain, or frees them all, in one
    // write. A take stops at the first counter the kernel cannot give, the earlier ones
    // kept: it throws then (OutOfCounters, ...), and the caller frees them again. Throws as
    // setAssignment.
    void assignTurn(TurnFiles& t, bool on) const;
    // The turn's counted files, read again: domain -> event -> count; a file that reads a
    // word is left out. Throws NoSuchGroup when the group is gone.
    Counters readTurn(const TurnFiles& t) const;

    // "<path>/<ctrl>/mon_groups/<name>" (no double slash for the root group).
    std::string groupPath(const MonGroupRef& g) const;

private:
    std::string path_;
    UniqueFd root_;
    bool kernel_ = false;
    enum class TaskFiles { None, Proc, Emulated };
    TaskFiles taskFiles_ = TaskFiles::None;
    static constexpr const char* kEmulatedTaskDir = ".proc";
    static constexpr const char* kEmulatedCpuDir = ".sys/devices/system/cpu";
    std::vector<std::string> monFeatures_;
    std::vector<std::string> telemetryFeatures_;
    unsigned numRmids_ = 0;
    std::map<uint32_t, uint64_t> l3CacheSizes_;
};

} // namespace rdtmon
