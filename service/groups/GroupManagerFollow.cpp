// Following the container's cgroup: a thread that joins it (runc/podman exec, nsenter plus a
// cgroup join) is moved into the container's group by a resync.
#include "GroupManager.h"

#include "CgroupPaths.h"
#include "CgroupWatcher.h"
#include "Clock.h"
#include "Errors.h"
#include "Log.h"
#include "ProcFs.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <set>

namespace rdtmon {
namespace {
// A pass that moved something is repeated, so that children forked and threads started
// meanwhile follow; a bounded number of times, so a fork bomb cannot hold the loop.
constexpr int kMaxResyncPasses = 5;
constexpr uint64_t kFirstRetryUsec = 100'000;
constexpr int kMaxRetries = 3; // after 0.1, 0.4 and 1.6 s
} // namespace

int GroupManager::followFd() const {
    return watcher_ ? watcher_->fd() : -1;
}

void GroupManager::follow(const GroupRecord& rec) {
    watchEnd(rec);
    if (rec.cgroup.empty()) {
        // Its coverage is what was moved into it: the init's threads. Never a tasks read:
        // the property is read with every InterfacesAdded, and a tasks read walks every
        // thread of the host.
        std::optional<std::vector<pid_t>> tids = threadsOf(static_cast<pid_t>(rec.pid));
        coverage_[rec.id] = Coverage{tids ? static_cast<uint32_t>(tids->size()) : 0u, 0};
        return;
    }
    followed_.insert(rec.id);
    resyncDue_.insert(rec.id);
    int err = 0;
    if (poller_.add(rec.id, rec.cgroup, err) && poller_.size() == 1) {
        nextJoinPollUsec_ = monotonicUsec() + kJoinPollTickMs * 1000ULL;
    }
    if (!watcher_) {
        return;
    }
    if (!watcher_->watch(rec.id, rec.cgroup, err)) {
        if (err == ENOENT) {
            // Gone while rdtmond was down (or since the create): nothing left to follow.
            followed_.erase(rec.id);
            resyncDue_.erase(rec.id);
            log::info(
                log::forContainer(rec.id, "its cgroup " + rec.cgroup + " is gone; not followed"));
            return;
        }
        log::warning(log::forContainer(rec.id, "cannot watch " + rec.cgroup + "/cgroup.procs (" +
                                                   errnoText(err) +
                                                   "); it is resynced at collections only"));
    }
}

void GroupManager::unfollow(const std::string& id) {
    if (watcher_) {
        watcher_->unwatch(id);
    }
    poller_.remove(id);
    followed_.erase(id);
    resyncDue_.erase(id);
    coverage_.erase(id);
    refusedOnce_.erase(id);
    warnedOutside_.erase(id);
    retries_.erase(id);
    lastThreads_.erase(id);
    unwatchEnd(id);
}

int GroupManager::retryTimeoutMs() const {
    if (retries_.empty()) {
        return -1;
    }
    uint64_t due = UINT64_MAX;
    for (const auto& [id, r] : retries_) {
        due = std::min(due, r.dueUsec);
    }
    const uint64_t now = monotonicUsec();
    return due <= now ? 0 : static_cast<int>((due - now + 999) / 1000);
}

void GroupManager::runDueRetries() {
    const uint64_t now = monotonicUsec();
    std::vector<std::string> due;
    for (const auto& [id, r] : retries_) {
        if (r.dueUsec <= now) {
            due.push_back(id);
        }
    }
    for (const std::string& id : due) {
        const int attempt = retries_[id].attempt;
        retries_.erase(id);
        resync(id); // may schedule a fresh chain for a newly refused process
        if (attempt + 1 < kMaxRetries && retries_.count(id) == 0 && followed_.count(id) != 0) {
            retries_[id] =
                Retry{attempt + 1, monotonicUsec() + (kFirstRetryUsec << (2 * (attempt + 1)))};
        }
    }
}

int GroupManager::joinPollTimeoutMs() const {
    if (poller_.size() == 0) {
        return -1;
    }
    const uint64_t now = monotonicUsec();
    return nextJoinPollUsec_ <= now ? 0 : static_cast<int>((nextJoinPollUsec_ - now + 999) / 1000);
}

void GroupManager::runDueJoinPoll() {
    const uint64_t now = monotonicUsec();
    if (poller_.size() == 0 || now < nextJoinPollUsec_) {
        return;
    }
    nextJoinPollUsec_ = now + kJoinPollTickMs * 1000ULL;
    CgroupPoller::TickResult t = poller_.tick();
    for (const std::string& id : t.gone) {
        if (followed_.count(id) != 0) {
            log::info(log::forContainer(id, "its cgroup went away; no longer followed"));
            unfollow(id);
        }
    }
    if (t.joined.empty()) {
        return; // the usual tick: resctrl is not even looked at (no wake-up of FUSE or kernfs)
    }
    Resctrl* r = resctrl();
    for (const CgroupPoller::Joined& j : t.joined) {
        if (followed_.count(j.id) == 0 || resyncDue_.count(j.id) != 0) {
            continue;
        }
        for (pid_t p : j.pids) {
            // A child forked inside the container is in the group already (it inherited
            // it); anything else, or a kernel that cannot tell, gets the group resynced.
            std::optional<std::string> mon = r != nullptr ? r->monGroupOfTask(p) : std::nullopt;
            if (!mon || *mon != j.id) {
                resyncDue_.insert(j.id);
                break;
            }
        }
    }
}

void GroupManager::onFollowEvents() {
    if (!watcher_) {
        return;
    }
    CgroupWatcher::Events ev = watcher_->read();
    if (ev.overflow) {
        log::warning("cgroup watch events were lost; resyncing every followed group");
        resyncDue_.insert(followed_.begin(), followed_.end());
    }
    for (const std::string& id : ev.changed) {
        if (followed_.count(id) != 0) {
            resyncDue_.insert(id);
        }
    }
    for (const std::string& id : ev.gone) {
        if (followed_.erase(id) != 0) {
            watcher_->unwatch(id);
            resyncDue_.erase(id);
            log::info(log::forContainer(id, "its cgroup went away; no longer followed"));
        }
    }
}

unsigned GroupManager::resyncPending() {
    unsigned n = 0;
    while (!resyncDue_.empty()) {
        const std::string id = *resyncDue_.begin();
        resyncDue_.erase(resyncDue_.begin());
        resync(id);
        ++n;
    }
    return n;
}

void GroupManager::resyncAll() {
    resyncDue_.clear();
    const std::set<std::string> ids = followed_;
    for (const std::string& id : ids) {
        resync(id, /*quick=*/true);
    }
}

Coverage GroupManager::coverage(const std::string& id) const {
    auto it = coverage_.find(id);
    return it == coverage_.end() ? Coverage{} : it->second;
}

void GroupManager::setCoverage(const std::string& id, Coverage c) {
    auto [it, inserted] = coverage_.try_emplace(id, c);
    if (!inserted && it->second == c) {
        return;
    }
    it->second = c;
    if (events_.coverageChanged) {
        events_.coverageChanged(id);
    }
}

Coverage GroupManager::resync(const std::string& id, bool quick) {
    std::optional<GroupRecord> rec = find(id);
    Resctrl* r = rec ? resctrl() : nullptr;
    if (!rec || r == nullptr || followed_.count(id) == 0) {
        return coverage(id);
    }
    const MonGroupRef ref = refOf(*rec);
    try {
        std::set<pid_t> refused; // threads the kernel would not take (another CTRL_MON group)
        bool newRefusal = false;
        Coverage cov;
        for (int pass = 0; pass < kMaxResyncPasses; ++pass) {
            int err = 0;
            std::optional<std::vector<pid_t>> procs = cgroupProcs(rec->cgroup, err);
            if (!procs) {
                if (err == ENOENT || err == ENODEV) {
                    log::info(log::forContainer(id, "its cgroup " + rec->cgroup +
                                                        " went away; no longer followed"));
                    unfollow(id);
                    setCoverage(id, Coverage{});
                    return Coverage{};
                }
                throwErrno(err, "cannot read " + rec->cgroup + "/cgroup.procs");
            }
            // The cgroup's threads, by process.
            std::vector<std::pair<pid_t, std::vector<pid_t>>> members;
            std::vector<pid_t> all;
            for (pid_t p : *procs) {
                if (std::optional<std::vector<pid_t>> tids = threadsOf(p)) {
                    all.insert(all.end(), tids->begin(), tids->end());
                    members.emplace_back(p, std::move(*tids));
                }
            }
            std::sort(all.begin(), all.end());
            // A collection's pass skips the group's tasks file (a read that costs one walk
            // of every thread of the host) when the cgroup holds the very threads it held at
            // the last resync and all of them were in the group.
            if (quick && pass == 0 && coverage(id).outside == 0 && lastThreads_[id] == all) {
                return coverage(id);
            }
            lastThreads_[id] = all;
            // Which of them are in the group: each thread's cpu_resctrl_groups where the kernel
            // has it (a read per thread of the container), else the group's tasks file (a
            // walk of every thread of the host, each time: at 1,000 containers that made each
            // create's first resync cost more than the rest of the create).
            std::set<pid_t> inGroup;
            if (r->hasTaskGroupsFiles()) {
                for (pid_t t : all) {
                    std::optional<TaskGroups> g = r->groupsOfTask(t);
                    if (g && g->ctrl == rec->ctrl && g->mon == id) {
                        inGroup.insert(t);
                    }
                }
            } else {
                const std::vector<pid_t> inGroupList = r->tasks(ref);
                inGroup.insert(inGroupList.begin(), inGroupList.end());
            }
            cov = Coverage{};
            unsigned moved = 0;
            for (const auto& [p, tids] : members) {
                for (pid_t t : tids) {
                    if (inGroup.count(t) != 0) {
                        ++cov.inGroup;
                        continue;
                    }
                    if (refused.count(t) != 0) {
                        ++cov.outside;
                        continue;
                    }
                    try {
                        r->moveTask(ref, t);
                        ++cov.inGroup;
                        ++moved;
                    } catch (const TaskInAnotherCtrlGroup& e) {
                        // Never forced: that would change its cache allocation. Counted
                        // outside, said once per process.
                        refused.insert(t);
                        ++cov.outside;
                        if (refusedOnce_[id].insert(p).second) {
                            newRefusal = true; // maybe on its way: retried before it is said
                        } else if (warnedOutside_[id].insert(p).second) {
                            log::notice(log::forContainer(
                                id, "process " + std::to_string(p) + " in cgroup " + rec->cgroup +
                                        " is left outside the group: " + e.what()));
                        }
                    } catch (const Error& e) {
                        if (e.kind() == ErrorKind::NoSuchProcess) {
                            continue; // exited meanwhile
                        }
                        if (e.kind() == ErrorKind::NoSuchGroup) {
                            throw;
                        }
                        // Any other refusal (EPERM, EIO, ...) is not the container's doing:
                        // an error of its own, never counted as outside. The coverage stays
                        // as it was, and the next event or collection tries again.
                        lastThreads_.erase(id);
                        log::error(log::forContainer(id, "resync stopped: process " +
                                                             std::to_string(p) + " in cgroup " +
                                                             rec->cgroup + ": " + e.what()));
                        return coverage(id);
                    }
                }
            }
            if (moved == 0) {
                break;
            }
        }
        if (newRefusal) {
            retries_[id] = Retry{0, monotonicUsec() + kFirstRetryUsec};
        }
        setCoverage(id, cov);
        return cov;
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::NoSuchGroup) {
            // The group vanished: the collection drops its record.
            return coverage(id);
        }
        log::warning(log::forContainer(id, std::string("resync failed: ") + e.what()));
    } catch (const std::exception& e) {
        log::warning(log::forContainer(id, std::string("resync failed: ") + e.what()));
    }
    return coverage(id);
}

} // namespace rdtmon
