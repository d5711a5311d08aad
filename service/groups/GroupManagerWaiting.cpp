// Waiting for an RMID (docs/architecture.md, "Waiting for an RMID"): a container that asks
// when no RMID is free is recorded as waiting, and gets its group, in arrival order, when
// one frees.
#include "GroupManager.h"

#include "Errors.h"
#include "Log.h"
#include "ProcFs.h"

#include <algorithm>
#include <set>

namespace rdtmon {
namespace {

constexpr std::chrono::milliseconds kFirstRetry{250};
constexpr std::chrono::milliseconds kLastRetry{4000};

// The start time of a live process (not a zombie), or nullopt.
std::optional<uint64_t> startTimeOf(pid_t pid) {
    std::optional<ProcStat> st = readProcStat(pid);
    if (!st || st->state == 'Z' || st->state == 'X' || st->state == 'x') {
        return std::nullopt;
    }
    return st->startTime;
}

} // namespace

std::vector<GroupRecord> GroupManager::waitingContainers() const {
    return registry_.waiting();
}

bool GroupManager::sameProcess(const GroupRecord& w) {
    std::optional<uint64_t> t = startTimeOf(static_cast<pid_t>(w.pid));
    return t && *t == w.pidStartTime;
}

GroupRecord GroupManager::startWaiting(GroupRecord rec, const std::function<bool()>& stillAlive,
                                       const std::string& why) {
    // rec may be recorded as pending (its mkdir just failed): it becomes waiting in one write.
    const std::string id = rec.id;
    auto giveUp = [&] {
        if (registry_.find(id)) {
            undoCreate(rec, false);
        }
    };
    // The start time first, the pidfd after: once the pidfd says alive, the pid still named
    // its process when the start time was read.
    std::optional<uint64_t> start = startTimeOf(static_cast<pid_t>(rec.pid));
    if (!start || (stillAlive && !stillAlive())) {
        giveUp();
        throw Error(ErrorKind::NoSuchProcess, "process " + std::to_string(rec.pid) +
                                                  " exited before it could wait for an RMID");
    }
    const std::vector<GroupRecord> queue = registry_.waiting();
    // The cgroup is judged now, while the init is still alone in it: at the grant the
    // container runs, and every task of that cgroup follows the init into the group.
    std::string whyNotFollowed;
    if (rec.cgroup.empty()) { // an adopted container's was judged already
        rec.cgroup = cgroupToFollowFor(rec.id, static_cast<pid_t>(rec.pid), whyNotFollowed);
    }
    rec.pending = false;
    rec.waiting = true;
    rec.pidStartTime = *start;
    rec.waitSeq = queue.empty() ? 1 : queue.back().waitSeq + 1;
    try {
        registry_.put(rec);
    } catch (...) {
        giveUp();
        throw;
    }
    log::info(log::forContainer(id, "waits for an RMID (" + why + "); pid " +
                                        std::to_string(rec.pid) +
                                        " gets its group when one frees; " +
                                        std::to_string(queue.size()) + " waiting before it"));
    if (events_.waiting) {
        events_.waiting(rec);
    }
    return rec;
}

GroupRecord GroupManager::stillWaiting(const GroupRecord& w, uint32_t pid,
                                       const std::function<bool()>& stillAlive) {
    if (w.pid == pid) {
        if (stillAlive && !stillAlive()) {
            throw Error(ErrorKind::NoSuchProcess, "process " + std::to_string(pid) + " exited");
        }
        return w;
    }
    // A runtime that retries with another process: that one gets the group, in w's place.
    std::optional<uint64_t> start = startTimeOf(static_cast<pid_t>(pid));
    if (!start || (stillAlive && !stillAlive())) {
        throw Error(ErrorKind::NoSuchProcess, "process " + std::to_string(pid) + " exited");
    }
    GroupRecord u = w;
    u.pid = pid;
    u.pidStartTime = *start;
    registry_.put(u);
    log::info(
        log::forContainer(w.id, "still waits for an RMID, now for pid " + std::to_string(pid)));
    return u;
}

bool GroupManager::settleHalfGrant(Resctrl& r, const GroupRecord& w) {
    try {
        r.removeMonGroup(refOf(w));
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::NoSuchGroup) {
            log::error(
                log::forContainer(w.id, std::string("cannot remove half-made group: ") + e.what()));
            return false;
        }
    }
    GroupRecord back = w;
    back.pending = false;
    back.waiting = true;
    try {
        registry_.put(back);
    } catch (const std::exception& e) {
        log::error(log::forContainer(w.id, e.what()));
        return false;
    }
    log::warning(log::forContainer(w.id, "undid a group that was being made for it when the "
                                         "grant stopped; it waits for an RMID again"));
    return true;
}

void GroupManager::dropWaiting(const GroupRecord& w, RemoveReason reason, const std::string& why) {
    if (w.pending && resctrl_) {
        // An attempt to grant it may have made its directory: that goes first.
        try {
            resctrl_->removeMonGroup(refOf(w));
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::NoSuchGroup) {
                log::error(log::forContainer(w.id, std::string("cannot remove half-made group: ") +
                                                       e.what()));
                return;
            }
        }
    }
    try {
        registry_.erase(w.id);
    } catch (const std::exception& e) {
        log::error(log::forContainer(w.id, e.what()));
        return;
    }
    grantDue_ = true; // a pass then disarms the retry timer if nobody waits any more
    log::info(log::forContainer(w.id, why));
    if (events_.removed) {
        events_.removed(w, reason);
    }
}

void GroupManager::moveWaitingContainerIn(Resctrl& r, const GroupRecord& g,
                                          std::vector<MovedThread>& moved) {
    r.moveProcess(refOf(g), static_cast<pid_t>(g.pid), &moved);
}

// A record stays waiting+pending after an attempt that found no RMID: the next attempt
// needs no record write, so retrying on limbo costs one failed mkdir, not two file writes.
GroupManager::GrantOutcome GroupManager::grantOne(Resctrl& r, const GroupRecord& waiting) {
    const auto pid = static_cast<pid_t>(waiting.pid);
    const std::string gone =
        "dropped while waiting for an RMID: its process " + std::to_string(pid) + " is gone";
    if (!sameProcess(waiting)) {
        dropWaiting(waiting, RemoveReason::Stale, gone);
        return GrantOutcome::Dropped;
    }
    GroupRecord g = waiting;
    try {
        // Where the process is now: a MON group must be made in its CTRL_MON group.
        g.ctrl = r.ctrlGroupOf(pid);
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::NoSuchProcess) {
            dropWaiting(waiting, RemoveReason::Stale, gone);
            return GrantOutcome::Dropped;
        }
        throw;
    }
    // A pending record's directory, if there is one, is ours: an earlier attempt made it.
    bool ours = waiting.pending;
    if (ours && g.ctrl != waiting.ctrl) {
        if (!settleHalfGrant(r, waiting)) {
            return GrantOutcome::Other;
        }
        ours = false;
    }
    const MonGroupRef ref = refOf(g);
    const bool exists = r.monGroupExists(ref);
    if (exists && !ours) {
        GroupRecord plain = g;
        plain.pending = false; // the directory is not ours: never removed
        dropWaiting(plain, RemoveReason::Vanished,
                    "dropped while waiting for an RMID: group " + r.groupPath(ref) +
                        " appeared and was not made by rdtmond; leaving it alone");
        return GrantOutcome::Dropped;
    }
    if (!ours) {
        // Still waiting, and pending: a crash from here on makes start-up remove the
        // directory and the container waits again.
        g.pending = true;
        registry_.put(g);
    }
    if (!exists) {
        try {
            r.createMonGroup(ref);
        } catch (const Error& e) {
            switch (e.kind()) {
            case ErrorKind::OutOfRmids:
                return GrantOutcome::NoRmid;
            case ErrorKind::Busy:
                return GrantOutcome::Limbo;
            case ErrorKind::AlreadyExists: {
                GroupRecord plain = g;
                plain.pending = false; // made by someone else just now: never removed
                dropWaiting(plain, RemoveReason::Vanished,
                            std::string("dropped while waiting for an RMID: ") + e.what());
                return GrantOutcome::Dropped;
            }
            default:
                log::error(log::forContainer(g.id, std::string("cannot make the group it waits "
                                                               "for; it waits on: ") +
                                                       e.what()));
                return GrantOutcome::Other;
            }
        }
    }
    std::vector<MovedThread> moved;
    try {
        moveWaitingContainerIn(r, g, moved);
        if (!sameProcess(waiting)) {
            // Its pid may now name another process, whose threads were just moved: they go
            // back where they were before the drop's rmdir.
            throw Error(ErrorKind::NoSuchProcess, "process exited while it was moved");
        }
        GroupRecord active = g;
        active.pending = false;
        active.waiting = false;
        active.pidStartTime = 0;
        active.waitSeq = 0;
        registry_.put(active);
        g = active;
    } catch (const std::exception& e) {
        r.moveBack(ref, moved);
        const auto* err = dynamic_cast<const Error*>(&e);
        if (err != nullptr && err->kind() == ErrorKind::NoSuchProcess) {
            dropWaiting(g, RemoveReason::Stale, gone); // g is pending: its group goes too
            return GrantOutcome::Dropped;
        }
        settleHalfGrant(r, g);
        log::error(log::forContainer(g.id, std::string("cannot move it into the group it "
                                                       "waited for; it waits on: ") +
                                               e.what()));
        return GrantOutcome::Other;
    }
    log::info(
        log::forContainer(g.id, "got an RMID after waiting: created group " + r.groupPath(ref) +
                                    " for pid " + std::to_string(pid) +
                                    (g.cgroup.empty() ? "" : "; following cgroup " + g.cgroup)));
    // Every other task the container started meanwhile is in its cgroup: the resync this
    // marks moves them (a group that follows no cgroup gets the init's threads only).
    follow(g);
    if (events_.created) {
        events_.created(g);
    }
    return GrantOutcome::Granted;
}

GroupManager::GrantPass GroupManager::grantWaiting() {
    return grantWaitingWith(registry_.waitingCount() > 0 ? resctrl() : nullptr);
}

GroupManager::GrantPass GroupManager::grantWaitingWith(Resctrl* r) {
    ++grantPasses_;
    GrantPass pass;
    if (registry_.waitingCount() > 0 && r == nullptr) {
        pass.stoppedBy = GrantPass::Stop::Other; // no resctrl: the collection notices its return
    }
    if (r != nullptr) {
        // CTRL_MON groups whose first waiter could not go: their later waiters wait behind it.
        std::set<std::string> stopped;
        for (const GroupRecord& w : registry_.waiting()) {
            if (stopped.count(w.ctrl) != 0) {
                continue;
            }
            GrantOutcome o = GrantOutcome::Other;
            try {
                o = grantOne(*r, w);
            } catch (const std::exception& e) {
                log::error(
                    log::forContainer(w.id, std::string("waits on for an RMID: ") + e.what()));
            }
            if (o == GrantOutcome::Granted) {
                ++pass.granted;
            } else if (o == GrantOutcome::Dropped) {
                ++pass.dropped;
            } else {
                // The first that cannot go stops its CLOS's part of the pass: nobody there
                // overtakes it. A limbo wins (the retry timer), then a lack of RMIDs.
                stopped.insert(w.ctrl);
                const GrantPass::Stop s = o == GrantOutcome::NoRmid  ? GrantPass::Stop::NoRmid
                                          : o == GrantOutcome::Limbo ? GrantPass::Stop::Limbo
                                                                     : GrantPass::Stop::Other;
                auto rank = [](GrantPass::Stop x) {
                    return x == GrantPass::Stop::Limbo    ? 3
                           : x == GrantPass::Stop::NoRmid ? 2
                           : x == GrantPass::Stop::Other  ? 1
                                                          : 0;
                };
                if (rank(s) > rank(pass.stoppedBy)) {
                    pass.stoppedBy = s;
                }
            }
        }
    }
    if (pass.granted > 0 || registry_.waitingCount() == 0) {
        backoff_ = kFirstRetry;
    }
    if (pass.stoppedBy == GrantPass::Stop::Limbo && registry_.waitingCount() > 0) {
        retryDelay_ = backoff_;
        backoff_ = std::min(backoff_ * 2, kLastRetry);
    } else {
        retryDelay_.reset();
    }
    if (pass.granted > 0 || pass.dropped > 0) {
        log::info("waiting for an RMID: " + std::to_string(pass.granted) + " got a group, " +
                  std::to_string(pass.dropped) + " dropped, " +
                  std::to_string(registry_.waitingCount()) + " still wait");
    }
    grantDue_ = false;
    return pass;
}

} // namespace rdtmon
