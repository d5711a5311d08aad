#pragma once

#include "CgroupPoller.h"
#include "Config.h"
#include "CountGenerations.h"
#include "CounterScheduler.h"
#include "GarbageCollector.h"
#include "GroupRegistry.h"
#include "Resctrl.h"
#include "SampledCounts.h"
#include "UniqueFd.h"

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace rdtmon {

class CgroupWatcher;

// Requested: RemoveGroup; Stale: no runtime lists the container; Vanished: the directory
// went; Exited: the container's last task is gone and no poststop hook came in the grace.
enum class RemoveReason { Requested, Stale, Vanished, Exited };

// Where a record's group is: <ctrl>/mon_groups/<id>.
inline MonGroupRef refOf(const GroupRecord& r) {
    return MonGroupRef{r.ctrl, r.id};
}
// "requested", "stale", "vanished" or "exited": the reason word of the GroupRemoved signal.
const char* reasonName(RemoveReason reason);

// One group's entry in a bulk read: a container id with its labels, or "/" or "/NAME" for
// a CTRL_MON group's own counters (no labels).
struct GroupCounters {
    std::string id;
    Labels labels;
    Counters counters;
    Counters generations; // the same shape: each count's (CountGenerations), from the reader
    // A rotating group's sampled counts only: the turn each was measured over, and when it
    // ended (CLOCK_MONOTONIC µs); empty for a count read as it is.
    Counters windowUsec;
    Counters measuredUsec;
    // The events that read a decimal fraction (Intel's core_energy, activity), from the
    // bulk read only; GetAllValues serves them (their generations are in generations).
    Decimals decimals;
};
// How many of a container's tasks (the threads of its followed cgroup) are in its group and
// how many are outside it, as of the last resync. A group that follows no cgroup reports its
// group's task count and 0.
struct Coverage {
    uint32_t inGroup = 0;
    uint32_t outside = 0;
    bool operator==(const Coverage&) const = default;
};

// A MON group that a container runtime made itself (its own monitoring) for a container it
// lists: shown in the reads, never owned (no record; rdtmond never writes to it, moves no
// task into it and never removes it).
struct RuntimeGroup {
    std::string id;
    std::string ctrl;
    uint32_t pid = 0;         // the init the runtime recorded, 0 when unknown
    uint64_t createdUsec = 0; // CLOCK_REALTIME when rdtmond first saw it
    Labels labels;            // from the runtime's files
};

struct AllCounters {
    uint64_t monotonicUsec = 0; // CLOCK_MONOTONIC at the middle of the read pass
    std::vector<GroupCounters> groups;
};

// One read pass, bus-free and registry-free: the counters of `groups` (in that order), then
// those of the runtime-made groups `shown`, then the default CTRL_MON group as "/" and every
// other as "/NAME". Each container's labels get "origin" (hook, adopted, runtime). Reads
// only, so it may run on another thread than the one that mutates resctrl. The groups whose
// counters could not be read (gone, or going) are added to `unread` and `shownUnread`.
// Throws when mon_data cannot be listed.
AllCounters readAllCounters(const Resctrl& r, CountersPass& pass,
                            const std::vector<GroupRecord>& groups,
                            const std::vector<RuntimeGroup>& shown,
                            std::vector<GroupRecord>& unread,
                            std::vector<std::string>& shownUnread);

// The service's logic without a bus: creates, removes, lists and collects the groups this
// service owns, keeping resctrl and the registry consistent at every step. It is driven
// from one thread (the event loop); only GarbageCollector::decide() runs elsewhere, on a
// snapshot, and its result is applied here after re-checking each record, and the
// CountersPass's reader threads pread counter files while allCounters() waits for them.
//
// Ordering that makes a crash safe (no group without a record, no record that lies):
//   create: pending record -> mkdir -> move threads -> final record -> reply
//   remove: rmdir -> drop record -> reply
// A pending record found at start-up means a create that never replied: its directory, if
// any, is removed. A directory with no record was never ours and is never touched.
//
// Waiting for an RMID (GroupManagerWaiting.cpp): with waitForRmid on, a create whose mkdir
// meets ENOSPC or EBUSY records the container as waiting instead of failing; grantWaiting()
// gives the waiting their groups in arrival order when RMIDs free:
//   wait:  pending record -> mkdir fails (no RMID) -> waiting record -> reply
//   grant: waiting+pending record -> mkdir -> move threads -> final record -> GroupCreated
class GroupManager {
public:
    struct Events {
        std::function<void(const GroupRecord&)> created;
        // A container began to wait for an RMID; created() follows when it gets its group,
        // removed() when it is dropped while waiting.
        std::function<void(const GroupRecord&)> waiting;
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
    // group was made with). With waitForRmid on, no free RMID gives a waiting record (no
    // group yet) instead of OutOfRmids / Busy; so does any create while others wait, so
    // that a newcomer never takes an RMID before them.
    GroupRecord createGroup(const std::string& id, uint32_t pid, const Labels& labels = {});
    // CreateContainerGroup: the same for the process a pidfd refers to. The pid comes from
    // the pidfd; after the threads have moved the pidfd must still show the process alive,
    // else the create is undone and NoSuchProcess thrown: the pid may have been reused, and
    // the threads moved would then be another process's.
    GroupRecord createGroupForPidfd(const std::string& id, int pidfd, const Labels& labels);
    // AddContainerByPid: the same for the process of this pid and start time (clock ticks
    // after boot, /proc/PID/stat field 22), checked before and after the move as a pidfd is.
    // The caller must have made sure the pid is one of rdtmond's pid namespace.
    GroupRecord createGroupForPid(const std::string& id, uint32_t pid, unsigned long long startTime,
                                  const Labels& labels);
    void removeGroup(const std::string& id);
    std::vector<GroupRecord> groups() const; // owned, final records (not waiting)
    std::size_t groupCount() const { return registry_.activeCount(); } // groups().size()
    std::optional<GroupRecord> find(const std::string& id) const;
    Counters counters(const std::string& id);
    // The owned group of container id, for a read; throws InvalidArgument for a bad id and
    // NoSuchGroup when there is none (also while the container waits for an RMID).
    GroupRecord ownedGroup(const std::string& id) const;
    // GetAllCounters: every owned group (id order), then the default group as "/" and every
    // other CTRL_MON group as "/NAME" (name order). A group gone during the read is left
    // out (an owned one is also dropped from the records, as counters() does). Throws
    // NotSupported without resctrl monitoring.
    AllCounters allCounters();
    // For a read pass off the loop (CountersReader): the resctrl in use (opened if need
    // be; null without monitoring), and the loop's half after the pass: the owned groups it
    // could not read are dropped from the records when their directory is gone.
    std::shared_ptr<Resctrl> sharedResctrl();
    void settleUnread(const std::vector<GroupRecord>& unread,
                      const std::vector<std::string>& shownUnread = {});
    // The runtime-made groups found at the last collection (id order), less those a read
    // found gone since.
    std::vector<RuntimeGroup> runtimeGroups() const;
    // NumRmids minus the RMIDs the existing groups hold (every CTRL_MON group, the default
    // one included, and every MON group, ours or not), at least 0; 0 without resctrl. RMIDs
    // in limbo are invisible through resctrl and count as free.
    unsigned freeRmids();
    std::string groupPath(const GroupRecord& r);

    // Collection in two halves so the sources can be read off the event loop. The snapshot
    // holds the waiting records too: a waiting container no runtime lists is dropped.
    std::vector<GroupRecord> collectionSnapshot() const;
    unsigned applyCollection(const std::vector<GroupRecord>& snapshot,
                             const GarbageCollector::Decision& decision);
    // Both halves at once, for tests and for callers that may block.
    unsigned collect(const GarbageCollector& gc);

    // Assignable counters (GroupManagerCounters.cpp; docs/architecture.md, "Rotating the
    // counters"). In mbm_event mode the owned groups get the counters as CounterScheduler
    // plans: all of them all the time while they fit, else the pinned ones all the time and
    // the others in turns, each turn measured (SampledCounts) before its counters go to the
    // next. Never touches a group it does not own, nor a global setting. Daemon calls it
    // after a create, a removal or a collection (changed), and when countersDueUsec() comes.
    // nowUsec: CLOCK_MONOTONIC.
    void setCounterSettings(const CountersConfig& c);
    void runCounters(uint64_t nowUsec, bool changed);
    uint64_t countersDueUsec() const { return scheduler_.nextDueUsec(); }
    CounterScheduler::Stats counterStats() const { return scheduler_.stats(); }
    // A rotating group's MBM counts as served: SampledCounts' at nowUsec, with their window
    // and time, in place of the kernel's (which restart at each turn). Others unchanged.
    void applySampled(GroupCounters& g, uint64_t nowUsec) const;
    // The generations of the counts the reads find (CountGenerations.h); the counter reader
    // observes each read on the loop's thread, and an assignment restarts its counts.
    CountGenerations& generations() { return generations_; }

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
    // Runs the resyncs marked since the last call, one per group however many events came;
    // returns how many ran.
    unsigned resyncPending();
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
    // Joins that write no cgroup.procs (a runtime's exec by clone3(CLONE_INTO_CGROUP)):
    // every kJoinPollTickMs the poller reads a slice of the followed cgroups, so each is read
    // every CgroupPoller::kSlices ticks. A process new in one is checked through its
    // cpu_resctrl_groups: one already in the group (a child forked inside the container)
    // needs nothing; any other marks the group for a resync. Milliseconds until the next
    // tick, -1 when no cgroup is followed (no wake-up then).
    static constexpr int kJoinPollTickMs = 100;
    int joinPollTimeoutMs() const;
    // Runs the tick when it is due.
    void runDueJoinPoll();
    bool following(const std::string& id) const { return followed_.count(id) != 0; }
    // --- The end of a container without its poststop hook (GroupManagerEnd.cpp) ---
    // Each active group's init is held by a pidfd in an epoll set (endFd(), -1 before the
    // first group). When it exits, the container's followed cgroup (or, without one, its
    // group's tasks) is looked at: once empty, the group is removed after the grace
    // (reason Exited), unless the container asked again meanwhile. A cgroup still holding
    // tasks is looked at again every second.
    void setEndGrace(std::chrono::milliseconds grace) { endGrace_ = grace; }
    // A removal asked by a caller who could not be identified (the poststop hook sends it
    // and leaves): the group goes now, reason Requested, if its container has ended (init
    // gone and last task gone); otherwise it is kept and its end looked at. Never throws
    // for a container that still runs or has no group.
    void removeIfEnded(const std::string& id);
    int endFd() const;
    void onEndEvents();       // endFd() is readable
    int endTimeoutMs() const; // until the next due look or removal, -1 for none
    void runDueEnds();

    // --- Adopting running containers that never asked (GroupManagerAdopt.cpp) ---
    // The containers a collection found without a group join the queue (once each);
    // adoptNext() takes one per call, so that the loop serves calls between two.
    void queueAdoptions(const std::vector<AdoptCandidate>& found);
    bool adoptionsQueued() const { return !adoptQueue_.empty(); }
    // Adopts the next queued container unless it has a record by now; logs the outcome.
    // Returns the record made (active or waiting), nullopt when none was.
    std::optional<GroupRecord> adoptNext();
    // The checks and the create of one adoption: the pid still names the init the runtime
    // recorded (a pidfd held across the checks, the same start time, not a zombie, in the
    // container's recorded cgroup, which is then followed), then the group as for a hooked
    // container, with origin adopted. Throws Error: AlreadyExists when the id has a record,
    // NoSuchProcess when the pid names no such process, InvalidArgument for a self-test's id
    // (isSelftestId) or when it is not in the container's cgroup, and what CreateGroup throws.
    GroupRecord adopt(const AdoptCandidate& c);

    // --- Waiting for an RMID (GroupManagerWaiting.cpp) ---
    // On: a create that meets ENOSPC or EBUSY at mkdir returns a waiting record instead of
    // throwing OutOfRmids / Busy. Records already waiting get groups either way.
    void setWaitForRmid(bool on) { waitForRmid_ = on; }
    std::vector<GroupRecord> waitingContainers() const; // in arrival order
    struct GrantPass {
        enum class Stop { Nothing, NoRmid, Limbo, Other };
        unsigned granted = 0;
        unsigned dropped = 0; // its process gone, or a foreign group took its name
        Stop stoppedBy = Stop::Nothing;
    };
    // Gives the waiting containers groups, in arrival order. One that meets ENOSPC (wait for
    // a removal), EBUSY (retry after retryDelay()) or another failure (logged; retried at
    // the next removal or collection) stops the pass for the waiters of its CTRL_MON group
    // only: nobody overtakes it there, and where RMIDs are per CLOS (Arm MPAM) the others
    // still get theirs. stoppedBy is the most urgent stop met: Limbo, NoRmid, Other.
    GrantPass grantWaiting();
    // Set when something may have freed an RMID (a removal, a collection, start-up, the
    // retry timer): the event loop then runs grantWaiting().
    bool grantDue() const { return grantDue_; }
    void requestGrant() { grantDue_ = true; }
    // After the last pass: how long until the next try, set only while containers wait and
    // the pass met RMIDs in limbo (250 ms, doubling to 4 s, back to 250 ms after a grant).
    // nullopt: nothing to time (nothing waits, or it waits for a removal).
    std::optional<std::chrono::milliseconds> retryDelay() const { return retryDelay_; }
    // Counts passes, so that the loop re-arms its timer only after one.
    uint64_t grantPasses() const { return grantPasses_; }

private:
    // Starts following rec's cgroup (a watch, and a resync marked). Failures are logged.
    void follow(const GroupRecord& rec);
    // Stops following id: no watch, no coverage kept, its end no longer watched.
    void unfollow(const std::string& id);
    // Holds rec's init by a pidfd (again, when the pid changed).
    void watchEnd(const GroupRecord& rec);
    void unwatchEnd(const std::string& id);
    bool lastTaskGone(const GroupRecord& rec);
    void endContainer(const GroupRecord& rec, RemoveReason reason);
    void setCoverage(const std::string& id, Coverage c);
    // Both creates; stillAlive (may be empty) is asked after the threads have moved.
    // An adoption gives the origin and the cgroup to follow (judged against the runtime's
    // record, not by the init being alone in it).
    GroupRecord create(const std::string& id, uint32_t pid, const Labels& labels,
                       const std::function<bool()>& stillAlive, Origin origin = Origin::Hook,
                       const std::optional<std::string>& cgroup = std::nullopt);
    Resctrl& requireResctrl();
    // The cgroup a new group of container id follows (cgroupToFollow), never one for a
    // self-test's id; "" with the reason in whyNot.
    static std::string cgroupToFollowFor(const std::string& id, pid_t pid, std::string& whyNot);
    // At start-up and when resctrl comes back. Every self-test's record (isSelftestId) goes
    // with its group: no self-test outlives rdtmond or its resctrl.
    void reconcile();
    // Removes a self-test's group and record, reason Stale; false when the group could not
    // be removed: the record is then kept and reconciled as any other.
    bool dropSelftest(Resctrl& r, const GroupRecord& rec, const std::string& why);
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

    // Waiting (GroupManagerWaiting.cpp).
    enum class GrantOutcome { Granted, Dropped, NoRmid, Limbo, Other };
    GrantPass grantWaitingWith(Resctrl* r);
    GrantOutcome grantOne(Resctrl& r, const GroupRecord& w);
    // rec (pending or not yet recorded) becomes a waiting record; why is the mkdir failure.
    GroupRecord startWaiting(GroupRecord rec, const std::function<bool()>& stillAlive,
                             const std::string& why);
    // The same container asked again while it waits: still waiting, with the new pid.
    GroupRecord stillWaiting(const GroupRecord& w, uint32_t pid,
                             const std::function<bool()>& stillAlive);
    // Undoes a grant that did not finish (waiting+pending): rmdir, record waiting again.
    bool settleHalfGrant(Resctrl& r, const GroupRecord& w);
    void dropWaiting(const GroupRecord& w, RemoveReason reason, const std::string& why);
    // Whether w.pid still names the process that asked (same start time, not a zombie).
    static bool sameProcess(const GroupRecord& w);
    // The grant's move, before the record turns active: the init's threads (checked
    // against its start time right after). The rest of the container's cgroup follows in
    // the resync that follow() marks once the record is active. What it moved is in
    // `moved`, for the undo.
    // Whether a container of CTRL_MON group ctrl waits for an RMID.
    bool waitsIn(const std::string& ctrl) const;
    void moveWaitingContainerIn(Resctrl& r, const GroupRecord& g, std::vector<MovedThread>& moved);

    Opener opener_;
    GroupRegistry& registry_;
    Events events_;
    Clock clock_;
    std::shared_ptr<Resctrl> resctrl_; // shared with a read pass running off the loop
    std::string whyNot_;
    bool reconciled_ = false; // a reconcile ran already: the next one is resctrl's return
    // The counter files GetAllCounters keeps open between calls; dropped with resctrl_.
    std::unique_ptr<CountersPass> countersPass_;
    std::unique_ptr<CgroupWatcher> watcher_; // null when inotify could not be had
    CgroupPoller poller_;                    // joins by CLONE_INTO_CGROUP
    uint64_t nextJoinPollUsec_ = 0;          // CLOCK_MONOTONIC
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

    struct InitFd {
        uint32_t pid = 0;
        UniqueFd fd;
    };
    UniqueFd endEpoll_;
    std::map<std::string, InitFd> initFds_;      // the active groups' inits
    std::map<int, std::string> fdToId_;          // pidfd -> container id
    std::set<std::string> endGone_;              // init gone, tasks maybe left
    std::map<std::string, uint64_t> endDueUsec_; // last task gone: removal due (monotonic)
    uint64_t nextLingerUsec_ = 0;
    std::chrono::milliseconds endGrace_{10000};

    // Runtime-made groups (GroupManagerCollection.cpp): found anew at each collection.
    void updateRuntimeGroups(Resctrl& r, const GarbageCollector::Decision& decision);
    std::map<std::string, RuntimeGroup> runtimeGroups_;

    std::deque<AdoptCandidate> adoptQueue_;
    std::set<std::string> adoptQueued_; // the ids in adoptQueue_
    // What was last logged about an id not adopted, so that each collection does not say
    // it again.
    std::map<std::string, std::string> adoptNoted_;

    bool waitForRmid_ = true;
    bool grantDue_ = false;
    uint64_t grantPasses_ = 0;
    std::optional<std::chrono::milliseconds> retryDelay_;
    std::chrono::milliseconds backoff_{250};
    CountGenerations generations_;

    // Assignable counters (GroupManagerCounters.cpp).
    bool pinned(const Labels& labels) const;
    std::vector<std::string> countedEvents(const Resctrl& r) const;
    void stopScheduling();
    // Makes the scheduler's groups the owned ones (after a create, a removal, a collection).
    void syncScheduled(Resctrl& r, const std::vector<std::string>& events,
                       const std::map<unsigned, unsigned>& domains, uint64_t nowUsec);
    void measureTurn(Resctrl& r, const std::string& id, const std::vector<std::string>& events,
                     const std::map<unsigned, unsigned>& domains, uint64_t nowUsec);
    void takeCounters(Resctrl& r, const std::string& id, const std::vector<std::string>& events,
                      const std::map<unsigned, unsigned>& domains, uint64_t nowUsec);
    CountersConfig counterConfig_;
    CounterScheduler::Settings schedulerSettings_;
    CounterScheduler scheduler_;
    SampledCounts sampled_;
    std::optional<std::string> assignMode_; // as the last look found it
    // A group's turn at the counters: its files, open from the take to the end, and the
    // counts read at its start, with when (CLOCK_MONOTONIC; 0: not read).
    struct Turn {
        TurnFiles files;
        Counters start;
        uint64_t startUsec = 0;
    };
    // Reads the turn's files; usec: the middle of the reads.
    static Counters readTurn(const Resctrl& r, const Turn& t, uint64_t& usec);
    // Opens the turn's files of a group that holds its counters and reads its start.
    void startTurn(Resctrl& r, const GroupRecord& rec, const std::vector<std::string>& events,
                   const std::vector<unsigned>& domains);
    void keepTurn(const std::string& id, Turn t);
    std::map<std::string, Turn> turns_;
};

} // namespace rdtmon
