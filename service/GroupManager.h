#pragma once

#include "GarbageCollector.h"
#include "GroupRegistry.h"
#include "Resctrl.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace rdtmon {

class CgroupWatcher;

enum class RemoveReason { Requested, Stale, Vanished };

// Where a record's group is: <ctrl>/mon_groups/<id>.
inline MonGroupRef refOf(const GroupRecord& r) {
    return MonGroupRef{r.ctrl, r.id};
}
// "requested", "stale" or "vanished": the reason word of the GroupRemoved signal.
const char* reasonName(RemoveReason reason);

// One group's entry in a bulk read: a container id with its labels, or "/" or "/NAME" for
// a CTRL_MON group's own counters (no labels).
struct GroupCounters {
    std::string id;
    Labels labels;
    Counters counters;
};
// How many of a container's tasks (the threads of its followed cgroup) are in its group and
// how many are outside it, as of the last resync. A group that follows no cgroup reports its
// group's task count and 0.
struct Coverage {
    uint32_t inGroup = 0;
    uint32_t outside = 0;
    bool operator==(const Coverage&) const = default;
};

struct AllCounters {
    uint64_t monotonicUsec = 0; // CLOCK_MONOTONIC at the middle of the read pass
    std::vector<GroupCounters> groups;
};

// The service's logic without a bus: creates, removes, lists and collects the groups this
// service owns, keeping resctrl and the registry consistent at every step. It is driven
// from one thread (the event loop); only GarbageCollector::decide() runs elsewhere, on a
// snapshot, and its result is applied here after re-checking each record.
//
// Ordering that makes a crash safe (no group without a record, no record that lies):
//   create: pending record -> mkdir -> move threads -> final record -> reply
//   remove: rmdir -> drop record -> reply
// A pending record found at start-up means a create that never replied: its directory, if
// any, is removed. A directory with no record was never ours and is never touched.
class GroupManager {
public:
    struct Events {
        std::function<void(const GroupRecord&)> created;
        std::function<void(const GroupRecord&, RemoveReason)> removed;
        // resctrl appeared or went away (Supported, ResctrlPath, MonFeatures, NumRmids).
        std::function<void()> availabilityChanged;
        // A group's Coverage changed (after a resync).
        std::function<void(const std::string& id)> coverageChanged;
    };
    // Opens resctrl, or returns nullptr with a reason when there is none to use.
    using Opener = std::function<std::unique_ptr<Resctrl>(std::string& whyNot)>;
    using Clock = std::function<uint64_t()>; // CLOCK_REALTIME in microseconds

    GroupManager(Opener opener, GroupRegistry& registry, Events events, Clock clock = {});
    ~GroupManager();
    GroupManager(const GroupManager&) = delete;
    GroupManager& operator=(const GroupManager&) = delete;

    // Start-up: load nothing (the registry is loaded by the caller), open resctrl and
    // reconcile the records with it.
    void start();

    // The resctrl in use, re-opened if the previous one died (e.g. unmounted). nullptr when
    // none. Re-opening runs a reconcile.
    Resctrl* resctrl();
    bool supported(); // resctrl present with L3 monitoring

    // CreateGroup: the group of container id under the CTRL_MON group that holds pid, with
    // every thread of pid moved into it; labels (Labels.h rules) are kept with the record.
    // Idempotent for the same id (the threads are moved again; the labels stay those the
    // group was made with).
    GroupRecord createGroup(const std::string& id, uint32_t pid, const Labels& labels = {});
    // CreateContainerGroup: the same for the process a pidfd refers to. The pid comes from
    // the pidfd; after the threads have moved the pidfd must still show the process alive,
    // else the create is undone and NoSuchProcess thrown: the pid may have been reused, and
    // the threads moved would then be another process's.
    GroupRecord createGroupForPidfd(const std::string& id, int pidfd, const Labels& labels);
    void removeGroup(const std::string& id);
    std::vector<GroupRecord> groups() const; // owned, final records
    std::optional<GroupRecord> find(const std::string& id) const;
    Counters counters(const std::string& id);
    // GetAllCounters: every owned group (id order), then the default group as "/" and every
    // other CTRL_MON group as "/NAME" (name order). A group gone during the read is left
    // out (an owned one is also dropped from the records, as counters() does). Throws
    // NotSupported without resctrl monitoring.
    AllCounters allCounters();
    // NumRmids minus the RMIDs the existing groups hold (every CTRL_MON group, the default
    // one included, and every MON group, ours or not), at least 0; 0 without resctrl. RMIDs
    // in limbo are invisible through resctrl and count as free.
    unsigned freeRmids();
    std::string groupPath(const GroupRecord& r);

    // Collection in two halves so the sources can be read off the event loop.
    std::vector<GroupRecord> collectionSnapshot() const;
    unsigned applyCollection(const std::vector<GroupRecord>& snapshot,
                             const GarbageCollector::Decision& decision);
    // Both halves at once, for tests and for callers that may block.
    unsigned collect(const GarbageCollector& gc);

    // The manager's clock (CLOCK_REALTIME µs unless a test injected one): creation times and
    // a collection's "now" come from the same source.
    uint64_t now() const { return clock_(); }

    // Drops the records whose directory is gone (reason vanished). Returns how many.
    unsigned dropVanished();

    // Following the container's cgroup (GroupManagerFollow.cpp). A group made for an init
    // alone in a cgroup of its own records that cgroup; every thread that later joins it
    // and is in the group's CTRL_MON group is moved into the group by a resync. A resync
    // runs when the cgroup's cgroup.procs is written (the watcher's fd), at each collection
    // pass, and once after the create.
    //
    // The watcher's inotify fd for the event loop, -1 without one.
    int followFd() const;
    // The fd is readable: reads its events and marks the groups to resync.
    void onFollowEvents();
    // Runs the resyncs marked since the last call, one per group however many events came.
    void resyncPending();
    // Resyncs every group (the collection pass: catches CLONE_INTO_CGROUP, which writes no
    // file, and lost events).
    void resyncAll();
    // One group's resync now; returns its coverage. Never throws. quick (the collection's
    // pass): no tasks read when the cgroup's threads are those of the last resync.
    Coverage resync(const std::string& id, bool quick = false);
    // A followed group's coverage as of its last resync; for a group that follows no cgroup
    // the threads moved into it at create (after a restart: its init's threads) and 0.
    // Never reads resctrl.
    Coverage coverage(const std::string& id) const;
    // A joiner the kernel refused at first may only be on its way into the group's CTRL_MON
    // group (runc exec joins the cgroups before it writes the CLOS): a group with a new
    // refusal is resynced again after 0.1, 0.4 and 1.6 s. Milliseconds until the next such
    // retry is due, -1 when none is pending (no wake-up at idle).
    int retryTimeoutMs() const;
    // Runs the retries that are due.
    void runDueRetries();
    bool following(const std::string& id) const { return followed_.count(id) != 0; }

private:
    // Starts following rec's cgroup (a watch, and a resync marked). Failures are logged.
    void follow(const GroupRecord& rec);
    // Stops following id: no watch, no coverage kept.
    void unfollow(const std::string& id);
    void setCoverage(const std::string& id, Coverage c);
    // Both creates; stillAlive (may be empty) is asked after the threads have moved.
    GroupRecord create(const std::string& id, uint32_t pid, const Labels& labels,
                       const std::function<bool()>& stillAlive);
    Resctrl& requireResctrl();
    void reconcile();
    void forget(const GroupRecord& r, RemoveReason reason);
    void undoCreate(const GroupRecord& r, bool madeDir);
    // The owned record (other than exceptId's) whose group holds a thread of pid, if any.
    std::optional<GroupRecord> ownerOfProcess(Resctrl& r, const std::string& ctrl, pid_t pid,
                                              const std::string& exceptId);
    bool containerAlive(Resctrl& r, const GroupRecord& rec);
    // Busy when pid is in a running container's group; collects that group when its
    // container is gone.
    void refuseIfOwnedByAnother(Resctrl& r, const std::string& id, const std::string& ctrl,
                                pid_t pid);

    Opener opener_;
    GroupRegistry& registry_;
    Events events_;
    Clock clock_;
    std::unique_ptr<Resctrl> resctrl_;
    std::string whyNot_;
    // The counter files GetAllCounters keeps open between calls; dropped with resctrl_.
    std::unique_ptr<CountersPass> countersPass_;
    std::unique_ptr<CgroupWatcher> watcher_; // null when inotify could not be had
    std::set<std::string> followed_;         // ids whose cgroup is followed
    std::set<std::string> resyncDue_;
    std::map<std::string, Coverage> coverage_;
    // (container, pid) refused once, and those logged as outside (refused again).
    std::map<std::string, std::set<pid_t>> refusedOnce_;
    std::map<std::string, std::set<pid_t>> warnedOutside_;
    struct Retry {
        int attempt = 0;
        uint64_t dueUsec = 0; // CLOCK_MONOTONIC
    };
    std::map<std::string, Retry> retries_;
    std::map<std::string, std::vector<pid_t>> lastThreads_; // cgroup threads at last resync
};

} // namespace rdtmon
