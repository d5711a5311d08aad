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
    case RemoveReason::Exited:
        return "exited";
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
            generations_.restartAll(""); // a mount anew: every count starts again
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
    // A self-test lives only while the rdtmonctl that asked for it watches it, over this
    // rdtmond's bus connection and this resctrl: none is still going on after either went.
    const std::string selftestWhy =
        reconciled_ ? "resctrl went away during it" : "rdtmond restarted during it";
    reconciled_ = true;
    for (const GroupRecord& rec : registry_.all()) {
        if (isSelftestId(rec.id) && dropSelftest(r, rec, selftestWhy)) {
            continue;
        }
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

bool GroupManager::waitsIn(const std::string& ctrl) const {
    const std::vector<GroupRecord> w = registry_.waiting();
    return std::any_of(w.begin(), w.end(), [&](const GroupRecord& r) { return r.ctrl == ctrl; });
}

GroupRecord GroupManager::createGroupForPid(const std::string& id, uint32_t pid,
                                            unsigned long long startTime, const Labels& labels) {
    validateContainerId(id);
    validateLabels(labels);
    const auto spid = static_cast<pid_t>(pid);
    auto same = [spid, startTime] {
        const std::optional<ProcStat> st = readProcStat(spid);
        return st && st->startTime == startTime && st->state != 'Z' && st->state != 'X' &&
               st->state != 'x';
    };
    if (pid == 0 || pid > static_cast<uint32_t>(INT_MAX) || !same()) {
        throw Error(ErrorKind::NoSuchProcess, "no process " + std::to_string(pid) + " started at " +
                                                  std::to_string(startTime) +
                                                  " (clock ticks after boot) is running");
    }
    return create(id, pid, labels, same);
}

GroupRecord GroupManager::create(const std::string& id, uint32_t pid, const Labels& labels,
                                 const std::function<bool()>& stillAlive, Origin origin,
                                 const std::optional<std::string>& cgroup) {
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
            // The pidfd first: after the process exits its pid may name another process,
            // whose threads are not ours to move. The group stays, its record unchanged.
            const std::string exited =
                "process " + std::to_string(pid) + " has exited; its pid may name another now";
            if (stillAlive && !stillAlive()) {
                throw Error(ErrorKind::NoSuchProcess, exited);
            }
            refuseIfOwnedByAnother(r, id, existing->ctrl, spid);
            std::vector<MovedThread> moved;
            try {
                r.moveProcess(refOf(*existing), spid, &moved);
            } catch (...) {
                r.moveBack(refOf(*existing), moved);
                throw;
            }
            if (stillAlive && !stillAlive()) {
                // It exited during the move: what was moved goes back where it was.
                r.moveBack(refOf(*existing), moved);
                throw Error(ErrorKind::NoSuchProcess, exited);
            }
            if (existing->pid != pid) {
                GroupRecord updated = *existing;
                updated.pid = pid;
                registry_.put(updated);
                existing = updated;
            }
            watchEnd(*existing); // a new init (the container restarted under its id)
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
    rec.origin = origin;
    if (cgroup) {
        rec.cgroup = *cgroup;
    }
    const MonGroupRef ref = refOf(rec);

    if (r.monGroupExists(ref)) {
        throw Error(ErrorKind::AlreadyExists,
                    "group " + r.groupPath(ref) +
                        " exists and was not made by rdtmond (native runtime monitoring or "
                        "another tool); leaving it alone");
    }

    if (waitForRmid_ && registry_.waitingCount() > 0 && waitsIn(ctrl)) {
        // Others of its CTRL_MON group still wait (the pass above found no RMID for them):
        // queue behind them.
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
    std::vector<MovedThread> moved;
    try {
        if (stillAlive && !stillAlive()) {
            throw Error(ErrorKind::NoSuchProcess,
                        "process " + std::to_string(pid) + " exited before its threads moved");
        }
        r.moveProcess(ref, spid, &moved);
        if (stillAlive && !stillAlive()) {
            // Its pid may already name another process, whose threads were just moved:
            // the undo puts each back into the group it came from.
            throw Error(ErrorKind::NoSuchProcess,
                        "process " + std::to_string(pid) +
                            " exited while its threads were being moved; the group is undone");
        }
        std::string whyNot;
        if (!cgroup) {
            rec.cgroup = cgroupToFollowFor(id, spid, whyNot);
        }
        if (rec.cgroup.empty()) {
            log::info(log::forContainer(id, "its cgroup is not followed (processes that join "
                                            "the container later are not moved): " +
                                                whyNot));
        }
        rec.pending = false;
        registry_.put(rec);
    } catch (...) {
        // Before the rmdir, which would put every moved thread on the CTRL_MON group's own
        // RMID: a thread that came from another MON group goes back to it.
        r.moveBack(ref, moved);
        undoCreate(rec, true);
        throw;
    }
    std::string labelText;
    for (const auto& [key, value] : rec.labels) {
        labelText += (labelText.empty() ? " (" : ", ") + key + "=" + value;
    }
    log::info(
        log::forContainer(id, std::string(origin == Origin::Adopted ? "adopted: " : "") +
                                  "created group " + r.groupPath(ref) + " for pid " +
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

std::string GroupManager::groupPath(const GroupRecord& rec) {
    if (resctrl_) {
        return resctrl_->groupPath(refOf(rec));
    }
    return (rec.ctrl.empty() ? std::string() : rec.ctrl + "/") + "mon_groups/" + rec.id;
}

} // namespace rdtmon
