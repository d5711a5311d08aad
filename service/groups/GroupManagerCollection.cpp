// GroupManager's side of garbage collection: the snapshot a collection judges, and applying
// its decision to exactly the records it judged; records of groups that vanished.
#include "GroupManager.h"

#include "ContainerId.h"
#include "Errors.h"
#include "Log.h"

#include <algorithm>

namespace rdtmon {

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
    // Adoption first (one per loop turn from here on), even when a source failed: the
    // others' containers are no less running. What is not adopted is said once per reason.
    std::map<std::string, std::string> noted;
    for (const auto& [id, why] : decision.notAdoptable) {
        auto it = adoptNoted_.find(id);
        if (it == adoptNoted_.end() || it->second != why) {
            log::debug(log::forContainer(id, "not adopted: " + why));
        }
        noted[id] = why;
    }
    for (const AdoptCandidate& c : decision.adoptable) {
        if (auto it = adoptNoted_.find(c.container.id); it != adoptNoted_.end()) {
            noted.insert(*it); // a refusal of adopt() itself, kept until it changes
        }
    }
    adoptNoted_ = std::move(noted);
    if (Resctrl* rr = resctrl()) {
        updateRuntimeGroups(*rr, decision);
        std::vector<AdoptCandidate> adopt;
        for (const AdoptCandidate& c : decision.adoptable) {
            // A group of its name made by its runtime is shown, never taken over.
            if (runtimeGroups_.count(c.container.id) == 0) {
                adopt.push_back(c);
            }
        }
        queueAdoptions(adopt);
    }
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
        if (isSelftestId(id)) {
            continue; // decide() never judges one stale; no runtime lists a self-test anyway
        }
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

void GroupManager::updateRuntimeGroups(Resctrl& r, const GarbageCollector::Decision& decision) {
    std::vector<MonGroupRef> existing;
    try {
        existing = r.listMonGroups();
    } catch (const std::exception& e) {
        log::warning(std::string("cannot list the MON groups for the runtime-made ones: ") +
                     e.what());
        return;
    }
    std::map<std::string, RuntimeGroup> next;
    for (const MonGroupRef& g : existing) {
        if (registry_.find(g.name)) {
            continue; // ours (or of a container waiting, pending: its own rules apply)
        }
        auto before = runtimeGroups_.find(g.name);
        const bool wasShown = before != runtimeGroups_.end() && before->second.ctrl == g.ctrl;
        // A container no source lists any more is no longer shown; when a source failed
        // the list is incomplete, and what was shown stays.
        if (decision.listed.count(g.name) == 0 && !(wasShown && !decision.sourcesOk)) {
            continue;
        }
        RuntimeGroup rg;
        rg.id = g.name;
        rg.ctrl = g.ctrl;
        rg.createdUsec = wasShown ? before->second.createdUsec : clock_();
        if (auto d = decision.described.find(g.name); d != decision.described.end()) {
            rg.pid = d->second.pid;
            try {
                rg.labels = runtimeLabels(d->second);
            } catch (const std::exception& e) {
                log::notice(log::forContainer(g.name, std::string("the group its runtime made "
                                                                  "is shown without labels: ") +
                                                          e.what()));
            }
        } else if (wasShown) {
            rg.pid = before->second.pid;
            rg.labels = before->second.labels;
        }
        if (!wasShown) {
            log::info(log::forContainer(g.name, "shown, not owned: " + r.groupPath(g) +
                                                    " was made by its runtime"));
        }
        next.emplace(g.name, std::move(rg));
    }
    for (const auto& [id, g] : runtimeGroups_) {
        if (next.count(id) == 0) {
            log::info(log::forContainer(id, "no longer shown: the group its runtime made is "
                                            "gone, or the container is no longer listed"));
        }
    }
    runtimeGroups_ = std::move(next);
}

unsigned GroupManager::collect(const GarbageCollector& gc) {
    std::vector<GroupRecord> snapshot = collectionSnapshot();
    GarbageCollector::Decision d = gc.decide(snapshot, clock_());
    return applyCollection(snapshot, d);
}

} // namespace rdtmon
