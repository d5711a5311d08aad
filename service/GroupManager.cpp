#include "GroupManager.h"

#include "CgroupPaths.h"
#include "CgroupWatcher.h"
#include "Clock.h"
#include "ContainerId.h"
#include "Errors.h"
#include "Labels.h"
#include "Log.h"
#include "ProcFs.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <ctime>
#include <set>

namespace rdtmon {

const char* reasonName(RemoveReason reason) {
    switch (reason) {
    case RemoveReason::Requested:
        return "requested";
    case RemoveReason::Stale:
        return "stale";
    case RemoveReason::Vanished:
        return "vanished";
    }
    return "unknown";
}

GroupManager::GroupManager(Opener opener, GroupRegistry& registry, Events events, Clock clock)
    : opener_(std::move(opener)), registry_(registry), events_(std::move(events)),
      clock_(clock ? std::move(clock) : Clock(realtimeUsec)) {
    try {
        watcher_ = std::make_unique<CgroupWatcher>();
    } catch (const std::exception& e) {
        log::warning(std::string("cgroups are followed at collections only: ") + e.what());
    }
}

GroupManager::~GroupManager() = default;

void GroupManager::start() {
    resctrl();
}

Resctrl* GroupManager::resctrl() {
    if (resctrl_ && !resctrl_->monitoringSupported()) {
        // The tree under our root fd stopped answering (unmounted, emulator gone) or lost
        // monitoring. Drop it and look again: it may be back at the same path.
        log::warning("resctrl at " + resctrl_->path() +
                     " is no longer usable; calls fail until it is back");
        resctrl_.reset();
        countersPass_.reset();
        whyNot_ = "resctrl went away";
        if (events_.availabilityChanged) {
            events_.availabilityChanged();
        }
    }
    if (!resctrl_) {
        std::string why;
        std::unique_ptr<Resctrl> fresh;
        try {
            fresh = opener_(why);
        } catch (const std::exception& e) {
            why = e.what();
        }
        if (fresh && fresh->monitoringSupported()) {
            resctrl_ = std::move(fresh);
            countersPass_.reset();
            whyNot_.clear();
            log::info("using resctrl at " + resctrl_->path());
            reconcile();
            if (events_.availabilityChanged) {
                events_.availabilityChanged();
            }
        } else {
            if (fresh) {
                why = "resctrl at " + fresh->path() + " has no L3 monitoring (info/L3_MON)";
            }
            if (why != whyNot_) {
                log::warning("resctrl not available: " + why);
            }
            whyNot_ = why;
        }
    }
    return resctrl_.get();
}

bool GroupManager::supported() {
    return resctrl() != nullptr;
}

Resctrl& GroupManager::requireResctrl() {
    Resctrl* r = resctrl();
    if (r == nullptr) {
        throw Error(ErrorKind::NotSupported,
                    "no resctrl with L3 monitoring: " +
                        (whyNot_.empty() ? std::string("not found") : whyNot_));
    }
    return *r;
}

void GroupManager::reconcile() {
    Resctrl& r = *resctrl_;
    for (const GroupRecord& rec : registry_.all()) {
        if (rec.waiting) {
            // No group yet; a grant cut short by a crash is undone and waits again.
            if (rec.pending) {
                settleHalfGrant(r, rec);
            }
            continue;
        }
        bool exists = false;
        try {
            exists = r.monGroupExists(refOf(rec));
        } catch (const std::exception& e) {
            log::error(log::forContainer(rec.id, std::string("cannot check group: ") + e.what()));
            continue;
        }
        if (rec.pending) {
            // A create that crashed before it replied: nobody was told the group exists.
            if (exists) {
                try {
                    r.removeMonGroup(refOf(rec));
                } catch (const Error& e) {
                    if (e.kind() != ErrorKind::NoSuchGroup) {
                        log::error(log::forContainer(
                            rec.id, std::string("cannot remove half-made group: ") + e.what()));
                        continue;
                    }
                }
            }
            try {
                registry_.erase(rec.id);
                log::warning(log::forContainer(rec.id, "removed a half-made group left by a "
                                                       "crash during CreateGroup"));
            } catch (const std::exception& e) {
                log::error(log::forContainer(rec.id, e.what()));
            }
        } else if (!exists) {
            forget(rec, RemoveReason::Vanished);
        } else if (!following(rec.id) && (!rec.cgroup.empty() || !coverage_.count(rec.id))) {
            follow(rec); // start-up or resctrl back: follow what the records say
        }
    }
    if (registry_.waitingCount() > 0) {
        grantDue_ = true;
    }
}

void GroupManager::forget(const GroupRecord& r, RemoveReason reason) {
    registry_.erase(r.id);
    unfollow(r.id);
    grantDue_ = true; // its RMID is free (whoever removed the directory)
    if (reason == RemoveReason::Vanished) {
        log::warning(log::forContainer(r.id, "group " + r.ctrl + "/mon_groups/" + r.id +
                                                 " vanished; dropped from the records"));
    }
    if (events_.removed) {
        events_.removed(r, reason);
    }
}

unsigned GroupManager::dropVanished() {
    Resctrl* r = resctrl();
    if (r == nullptr) {
        return 0;
    }
    std::vector<MonGroupRef> onDisk = r->listMonGroups();
    std::set<std::pair<std::string, std::string>> present;
    for (const MonGroupRef& g : onDisk) {
        present.emplace(g.ctrl, g.name);
    }
    unsigned n = 0;
    for (const GroupRecord& rec : registry_.all()) {
        if (!rec.pending && !rec.waiting && present.count({rec.ctrl, rec.id}) == 0) {
            forget(rec, RemoveReason::Vanished);
            ++n;
        }
    }
    return n;
}

void GroupManager::undoCreate(const GroupRecord& r, bool madeDir) {
    if (madeDir && resctrl_) {
        try {
            resctrl_->removeMonGroup(refOf(r));
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::NoSuchGroup) {
                // Keep the pending record: start-up or the next create will retry.
                log::error(log::forContainer(r.id, std::string("cannot remove half-made group: ") +
                                                       e.what()));
                return;
            }
        }
    }
    try {
        registry_.erase(r.id);
        unfollow(r.id);
    } catch (const std::exception& e) {
        log::error(log::forContainer(r.id, e.what()));
    }
}

GroupRecord GroupManager::createGroup(const std::string& id, uint32_t pid, const Labels& labels) {
    return create(id, pid, labels, {});
}

GroupRecord GroupManager::createGroupForPidfd(const std::string& id, int pidfd,
                                              const Labels& labels) {
    // The cheap argument checks first: a bad id or label touches nothing, not even /proc.
    validateContainerId(id);
    validateLabels(labels);
    const pid_t pid = pidOfPidfd(pidfd);
    return create(id, static_cast<uint32_t>(pid), labels, [pidfd] { return !pidfdExited(pidfd); });
}

GroupRecord GroupManager::create(const std::string& id, uint32_t pid, const Labels& labels,
                                 const std::function<bool()>& stillAlive) {
    validateContainerId(id);
    validateLabels(labels);
    if (pid == 0 || pid > static_cast<uint32_t>(INT_MAX)) {
        throw Error(ErrorKind::InvalidArgument,
                    "pid " + std::to_string(pid) + " is not a valid process id");
    }
    Resctrl& r = requireResctrl();
    const auto spid = static_cast<pid_t>(pid);
    requireContainerCandidate(spid);
    // Those who wait come first: an RMID freed without us noticing (another tool's rmdir)
    // goes to them, not to this newcomer.
    if (registry_.waitingCount() > 0) {
        grantWaitingWith(&r);
    }

    if (std::optional<GroupRecord> existing = registry_.find(id)) {
        if (existing->waiting) {
            return stillWaiting(*existing, pid, stillAlive);
        }
        if (existing->pending) {
            // Only a failed undo leaves one behind; finish the undo and start over.
            undoCreate(*existing, true);
            if (registry_.find(id)) {
                throw Error(ErrorKind::Failed,
                            "container " + id + ": an earlier half-made group cannot be removed");
            }
        } else if (r.monGroupExists(refOf(*existing))) {
            // Idempotent: move the threads again (a runtime may retry) and answer the same.
            r.moveProcess(refOf(*existing), spid);
            if (stillAlive && !stillAlive()) {
                // The group was there before this call: it stays, its record unchanged.
                throw Error(ErrorKind::NoSuchProcess,
                            "process " + std::to_string(pid) +
                                " exited while its threads were being moved");
            }
            if (existing->pid != pid) {
                GroupRecord updated = *existing;
                updated.pid = pid;
                registry_.put(updated);
                existing = updated;
            }
            log::info(log::forContainer(id, "group " + r.groupPath(refOf(*existing)) +
                                                " already exists; moved pid " +
                                                std::to_string(pid) + " again"));
            return *existing;
        } else {
            forget(*existing, RemoveReason::Vanished);
        }
    }

    const std::string ctrl = r.ctrlGroupOf(spid);
    refuseIfOwnedByAnother(r, id, ctrl, spid);
    GroupRecord rec;
    rec.id = id;
    rec.ctrl = ctrl;
    rec.pid = pid;
    rec.createdUsec = clock_();
    rec.pending = true;
    rec.labels = labels;
    const MonGroupRef ref = refOf(rec);

    if (r.monGroupExists(ref)) {
        throw Error(ErrorKind::AlreadyExists,
                    "group " + r.groupPath(ref) +
                        " exists and was not made by rdtmond (native runtime monitoring or "
                        "another tool); leaving it alone");
    }

    if (waitForRmid_ && registry_.waitingCount() > 0) {
        // Others still wait (the pass above found no RMID for them): queue behind them.
        return startWaiting(rec, stillAlive, "containers that asked earlier wait for one");
    }

    // The record comes first: if we die after mkdir, start-up finds it and cleans up.
    registry_.put(rec);
    try {
        r.createMonGroup(ref);
    } catch (const Error& e) {
        if (waitForRmid_ && (e.kind() == ErrorKind::OutOfRmids || e.kind() == ErrorKind::Busy)) {
            // RMIDs in limbo free by themselves: a pass soon arms the retry timer.
            grantDue_ = grantDue_ || e.kind() == ErrorKind::Busy;
            return startWaiting(rec, stillAlive, e.what());
        }
        undoCreate(rec, false);
        if (e.kind() == ErrorKind::AlreadyExists) {
            throw Error(ErrorKind::AlreadyExists,
                        "group " + r.groupPath(ref) +
                            " appeared while it was being created: " + e.what());
        }
        throw;
    }
    try {
        r.moveProcess(ref, spid);
        if (stillAlive && !stillAlive()) {
            // Its pid may already name another process, whose threads were just moved:
            // the rmdir of the undo puts them back in the CTRL_MON group.
            throw Error(ErrorKind::NoSuchProcess,
                        "process " + std::to_string(pid) +
                            " exited while its threads were being moved; the group is undone");
        }
        std::string whyNot;
        rec.cgroup = cgroupToFollow(spid, whyNot);
        if (rec.cgroup.empty()) {
            log::info(log::forContainer(id, "its cgroup is not followed (processes that join "
                                            "the container later are not moved): " +
                                                whyNot));
        }
        rec.pending = false;
        registry_.put(rec);
    } catch (...) {
        undoCreate(rec, true);
        throw;
    }
    std::string labelText;
    for (const auto& [key, value] : rec.labels) {
        labelText += (labelText.empty() ? " (" : ", ") + key + "=" + value;
    }
    log::info(
        log::forContainer(id, "created group " + r.groupPath(ref) + " for pid " +
                                  std::to_string(pid) + (labelText.empty() ? "" : labelText + ")") +
                                  (rec.cgroup.empty() ? "" : "; following cgroup " + rec.cgroup)));
    // After the reply path is settled: a watch that cannot be had is logged, never an error,
    // and the first resync runs from the loop after this call.
    follow(rec);
    if (events_.created) {
        events_.created(rec);
    }
    return rec;
}

void GroupManager::removeGroup(const std::string& id) {
    validateContainerId(id);
    std::optional<GroupRecord> rec = registry_.find(id);
    if (rec && rec->waiting) {
        dropWaiting(*rec, RemoveReason::Requested, "removed while waiting for an RMID");
        if (registry_.find(id)) {
            throw Error(ErrorKind::Failed,
                        "container " + id + ": a half-made group cannot be removed");
        }
        return;
    }
    if (!rec || rec->pending) {
        throw Error(ErrorKind::NoSuchGroup, "container " + id + " has no group owned by rdtmond");
    }
    Resctrl& r = requireResctrl();
    try {
        r.removeMonGroup(refOf(*rec));
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::NoSuchGroup) {
            forget(*rec, RemoveReason::Vanished);
            return;
        }
        throw;
    }
    registry_.erase(id);
    unfollow(id);
    grantDue_ = true;
    log::info(log::forContainer(id, "removed group " + r.groupPath(refOf(*rec)) + " (requested)"));
    if (events_.removed) {
        events_.removed(*rec, RemoveReason::Requested);
    }
}

std::vector<GroupRecord> GroupManager::groups() const {
    std::vector<GroupRecord> out;
    for (GroupRecord& r : registry_.all()) {
        if (!r.pending && !r.waiting) {
            out.push_back(std::move(r));
        }
    }
    return out;
}

std::optional<GroupRecord> GroupManager::find(const std::string& id) const {
    std::optional<GroupRecord> r = registry_.find(id);
    if (r && (r->pending || r->waiting)) {
        return std::nullopt;
    }
    return r;
}

Counters GroupManager::counters(const std::string& id) {
    validateContainerId(id);
    std::optional<GroupRecord> rec = find(id);
    if (!rec && registry_.find(id) && registry_.find(id)->waiting) {
        throw Error(ErrorKind::NoSuchGroup,
                    "container " + id + " waits for an RMID and has no group yet");
    }
    if (!rec) {
        throw Error(ErrorKind::NoSuchGroup, "container " + id + " has no group owned by rdtmond");
    }
    Resctrl& r = requireResctrl();
    try {
        return r.readCounters(refOf(*rec));
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::NoSuchGroup) {
            forget(*rec, RemoveReason::Vanished);
        }
        throw;
    }
}

AllCounters GroupManager::allCounters() {
    Resctrl& r = requireResctrl();
    const uint64_t start = monotonicUsec();
    if (!countersPass_) {
        countersPass_ = std::make_unique<CountersPass>();
    }
    CountersPass& pass = *countersPass_;
    r.beginCountersPass(pass);
    AllCounters out;
    for (const GroupRecord& rec : groups()) {
        std::optional<Counters> c = r.readCountersBulk(pass, rec.ctrl, rec.id);
        if (!c) {
            try {
                if (!r.monGroupExists(refOf(rec))) {
                    forget(rec, RemoveReason::Vanished);
                }
            } catch (const std::exception& e) {
                log::warning(log::forContainer(rec.id, e.what()));
            }
            continue;
        }
        out.groups.push_back(GroupCounters{rec.id, rec.labels, std::move(*c)});
    }
    std::vector<std::string> ctrls{""};
    for (std::string& c : r.listCtrlGroups()) {
        ctrls.push_back(std::move(c));
    }
    for (const std::string& ctrl : ctrls) {
        if (std::optional<Counters> c = r.readCountersBulk(pass, ctrl, "")) {
            out.groups.push_back(GroupCounters{"/" + ctrl, {}, std::move(*c)});
        }
    }
    r.endCountersPass(pass);
    // The middle of the pass: at 1,000 groups the first and the last read are tens of ms
    // apart, and a rate over two passes errs least when each is stamped at its middle.
    const uint64_t end = monotonicUsec();
    out.monotonicUsec = start + (end - start) / 2;
    return out;
}

unsigned GroupManager::freeRmids() {
    Resctrl* r = resctrl();
    if (r == nullptr) {
        return 0;
    }
    const unsigned used = r->rmidsInUse();
    return r->numRmids() > used ? r->numRmids() - used : 0;
}

std::string GroupManager::groupPath(const GroupRecord& rec) {
    if (resctrl_) {
        return resctrl_->groupPath(refOf(rec));
    }
    return (rec.ctrl.empty() ? std::string() : rec.ctrl + "/") + "mon_groups/" + rec.id;
}

std::vector<GroupRecord> GroupManager::collectionSnapshot() const {
    std::vector<GroupRecord> out = groups();
    for (GroupRecord& w : registry_.waiting()) {
        // A waiting record stays pending between attempts to grant it; to the collector it
        // is a container like any other.
        w.pending = false;
        out.push_back(std::move(w));
    }
    return out;
}

unsigned GroupManager::applyCollection(const std::vector<GroupRecord>& snapshot,
                                       const GarbageCollector::Decision& decision) {
    if (!decision.sourcesOk) {
        for (const std::string& f : decision.failures) {
            log::warning("garbage collection removed nothing: container source failed: " + f);
        }
        return 0;
    }
    Resctrl* r = resctrl();
    if (r == nullptr) {
        log::warning("garbage collection skipped: " + whyNot_);
        return 0;
    }
    unsigned removed = dropVanished();
    for (const std::string& id : decision.stale) {
        auto snap = std::find_if(snapshot.begin(), snapshot.end(),
                                 [&](const GroupRecord& s) { return s.id == id; });
        std::optional<GroupRecord> now = registry_.find(id);
        // Between the snapshot and now the group may have been removed or made anew
        // (a CreateGroup for the same id): only the very record that was judged is removed.
        GroupRecord judged = now ? *now : GroupRecord{};
        if (judged.waiting) {
            judged.pending = false; // as the snapshot shows it
        }
        if (!now || snap == snapshot.end() || !(judged == *snap)) {
            continue;
        }
        if (now->waiting) {
            dropWaiting(*now, RemoveReason::Stale,
                        "dropped while waiting for an RMID: no runtime lists the container");
            removed += registry_.find(id) ? 0 : 1;
            continue;
        }
        try {
            r->removeMonGroup(refOf(*now));
        } catch (const Error& e) {
            if (e.kind() == ErrorKind::NoSuchGroup) {
                forget(*now, RemoveReason::Vanished);
                ++removed;
            } else {
                log::error(
                    log::forContainer(id, std::string("cannot remove stale group: ") + e.what()));
            }
            continue;
        }
        try {
            registry_.erase(id);
            unfollow(id);
        } catch (const std::exception& e) {
            // The directory is gone; the record is dropped as vanished on a later pass.
            log::error(log::forContainer(id, e.what()));
            continue;
        }
        grantDue_ = true;
        log::info(log::forContainer(id, "removed stale group " + r->groupPath(refOf(*now)) +
                                            ": no runtime lists the container"));
        if (events_.removed) {
            events_.removed(*now, RemoveReason::Stale);
        }
        ++removed;
    }
    // RMIDs can free without us (another tool's rmdir): the waiting try again at every
    // collection.
    if (registry_.waitingCount() > 0) {
        grantDue_ = true;
    }
    return removed;
}

unsigned GroupManager::collect(const GarbageCollector& gc) {
    std::vector<GroupRecord> snapshot = collectionSnapshot();
    GarbageCollector::Decision d = gc.decide(snapshot, clock_());
    return applyCollection(snapshot, d);
}

} // namespace rdtmon
