// Following the container's cgroup: a thread that joins it (runc/podman exec, nsenter plus a
// cgroup join) is moved into the container's group by a resync.
#include "GroupManager.h"

#include "CgroupPaths.h"
#include "CgroupWatcher.h"
#include "Errors.h"
#include "Log.h"
#include "ProcFs.h"

#include <cerrno>
#include <set>

namespace rdtmon {
namespace {
// A pass that moved something is repeated, so that children forked and threads started
// meanwhile follow; a bounded number of times, so a fork bomb cannot hold the loop.
constexpr int kMaxResyncPasses = 5;
} // namespace

int GroupManager::followFd() const {
    return watcher_ ? watcher_->fd() : -1;
}

void GroupManager::follow(const GroupRecord& rec, bool justCreated) {
    if (rec.cgroup.empty()) {
        if (justCreated) {
            // Its coverage is what was just moved: no tasks read needed.
            std::optional<std::vector<pid_t>> tids = threadsOf(static_cast<pid_t>(rec.pid));
            setCoverage(rec.id, Coverage{tids ? static_cast<uint32_t>(tids->size()) : 0u, 0});
        } else {
            resyncDue_.insert(rec.id); // its coverage, once
        }
        return;
    }
    followed_.insert(rec.id);
    resyncDue_.insert(rec.id);
    if (!watcher_) {
        return;
    }
    int err = 0;
    if (!watcher_->watch(rec.id, rec.cgroup, err)) {
        log::warning(log::forContainer(rec.id, "cannot watch " + rec.cgroup + "/cgroup.procs (" +
                                                   errnoText(err) +
                                                   "); it is resynced at collections only"));
    }
}

void GroupManager::unfollow(const std::string& id) {
    if (watcher_) {
        watcher_->unwatch(id);
    }
    followed_.erase(id);
    resyncDue_.erase(id);
    coverage_.erase(id);
    warnedOutside_.erase(id);
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

void GroupManager::resyncPending() {
    while (!resyncDue_.empty()) {
        const std::string id = *resyncDue_.begin();
        resyncDue_.erase(resyncDue_.begin());
        resync(id);
    }
}

void GroupManager::resyncAll() {
    resyncDue_.clear();
    for (const GroupRecord& rec : groups()) {
        resync(rec.id);
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

Coverage GroupManager::resync(const std::string& id) {
    std::optional<GroupRecord> rec = find(id);
    Resctrl* r = rec ? resctrl() : nullptr;
    if (!rec || r == nullptr) {
        return coverage(id);
    }
    const MonGroupRef ref = refOf(*rec);
    try {
        if (followed_.count(id) == 0) {
            const auto n = static_cast<uint32_t>(r->tasks(ref).size());
            setCoverage(id, Coverage{n, 0});
            return coverage(id);
        }
        std::set<pid_t> refused; // threads the kernel would not take (another CTRL_MON group)
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
            const std::vector<pid_t> inGroupList = r->tasks(ref);
            const std::set<pid_t> inGroup(inGroupList.begin(), inGroupList.end());
            cov = Coverage{};
            unsigned moved = 0;
            for (pid_t p : *procs) {
                std::optional<std::vector<pid_t>> tids = threadsOf(p);
                if (!tids) {
                    continue; // exited since the cgroup was read
                }
                for (pid_t t : *tids) {
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
                    } catch (const Error& e) {
                        if (e.kind() == ErrorKind::NoSuchProcess) {
                            continue; // exited meanwhile
                        }
                        if (e.kind() == ErrorKind::NoSuchGroup) {
                            throw;
                        }
                        // EINVAL: in another CTRL_MON group. Never forced: that would change
                        // its cache allocation. Counted outside, said once per process.
                        refused.insert(t);
                        ++cov.outside;
                        if (warnedOutside_[id].insert(p).second) {
                            log::notice(log::forContainer(
                                id, "process " + std::to_string(p) + " in cgroup " + rec->cgroup +
                                        " is left outside the group: " + e.what()));
                        }
                    }
                }
            }
            if (moved == 0) {
                break;
            }
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
