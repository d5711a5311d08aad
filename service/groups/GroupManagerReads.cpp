// GroupManager's reads: one group's counters, every group's in one bulk pass, free RMIDs.
#include "GroupManager.h"

#include "Clock.h"
#include "ContainerId.h"
#include "Errors.h"
#include "Log.h"

namespace rdtmon {

GroupRecord GroupManager::ownedGroup(const std::string& id) const {
    validateContainerId(id);
    std::optional<GroupRecord> rec = find(id);
    if (!rec && registry_.find(id) && registry_.find(id)->waiting) {
        throw Error(ErrorKind::NoSuchGroup,
                    "container " + id + " waits for an RMID and has no group yet");
    }
    if (!rec) {
        throw Error(ErrorKind::NoSuchGroup, "container " + id + " has no group owned by rdtmond");
    }
    return *rec;
}

Counters GroupManager::counters(const std::string& id) {
    const std::optional<GroupRecord> rec = ownedGroup(id);
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

AllCounters readAllCounters(const Resctrl& r, CountersPass& pass,
                            const std::vector<GroupRecord>& groups,
                            const std::vector<RuntimeGroup>& shown,
                            std::vector<GroupRecord>& unread,
                            std::vector<std::string>& shownUnread) {
    const uint64_t start = monotonicUsec();
    r.beginCountersPass(pass);
    AllCounters out;
    for (const GroupRecord& rec : groups) {
        Decimals decimals;
        std::optional<Counters> c = r.readCountersBulk(pass, rec.ctrl, rec.id, &decimals);
        if (!c) {
            unread.push_back(rec);
            continue;
        }
        Labels labels = rec.labels;
        labels["origin"] = originName(rec.origin);
        out.groups.push_back(GroupCounters{
            rec.id, std::move(labels), std::move(*c), {}, {}, {}, std::move(decimals)});
    }
    for (const RuntimeGroup& g : shown) {
        Decimals decimals;
        std::optional<Counters> c = r.readCountersBulk(pass, g.ctrl, g.id, &decimals);
        if (!c) {
            shownUnread.push_back(g.id);
            continue;
        }
        Labels labels = g.labels;
        labels["origin"] = "runtime";
        out.groups.push_back(
            GroupCounters{g.id, std::move(labels), std::move(*c), {}, {}, {}, std::move(decimals)});
    }
    std::vector<std::string> ctrls{""};
    for (std::string& c : r.listCtrlGroups()) {
        ctrls.push_back(std::move(c));
    }
    for (const std::string& ctrl : ctrls) {
        Decimals decimals;
        if (std::optional<Counters> c = r.readCountersBulk(pass, ctrl, "", &decimals)) {
            out.groups.push_back(
                GroupCounters{"/" + ctrl, {}, std::move(*c), {}, {}, {}, std::move(decimals)});
        }
    }
    r.endCountersPass(pass);
    // The middle of the pass: at 1,000 groups the first and the last read are tens of ms
    // apart, and a rate over two passes errs least when each is stamped at its middle.
    const uint64_t end = monotonicUsec();
    out.monotonicUsec = start + (end - start) / 2;
    return out;
}

AllCounters GroupManager::allCounters() {
    Resctrl& r = requireResctrl();
    if (!countersPass_) {
        countersPass_ = std::make_unique<CountersPass>();
    }
    std::vector<GroupRecord> unread;
    std::vector<std::string> shownUnread;
    AllCounters out =
        readAllCounters(r, *countersPass_, groups(), runtimeGroups(), unread, shownUnread);
    settleUnread(unread, shownUnread);
    return out;
}

std::shared_ptr<Resctrl> GroupManager::sharedResctrl() {
    resctrl();
    return resctrl_;
}

std::vector<RuntimeGroup> GroupManager::runtimeGroups() const {
    std::vector<RuntimeGroup> out;
    out.reserve(runtimeGroups_.size());
    for (const auto& [id, g] : runtimeGroups_) {
        out.push_back(g);
    }
    return out;
}

void GroupManager::settleUnread(const std::vector<GroupRecord>& unread,
                                const std::vector<std::string>& shownUnread) {
    Resctrl* r = resctrl();
    for (const std::string& id : shownUnread) {
        // A runtime-made group gone (its container deleted): no longer shown.
        auto it = runtimeGroups_.find(id);
        if (it != runtimeGroups_.end() &&
            (r == nullptr || !r->monGroupExists(MonGroupRef{it->second.ctrl, id}))) {
            log::info(log::forContainer(id, "the group its runtime made is gone"));
            runtimeGroups_.erase(it);
        }
    }
    for (const GroupRecord& rec : unread) {
        // Still the same group of ours (not removed, or removed and made again, meanwhile)?
        const std::optional<GroupRecord> now = find(rec.id);
        if (r == nullptr || !now || now->ctrl != rec.ctrl || now->createdUsec != rec.createdUsec) {
            continue;
        }
        try {
            if (!r->monGroupExists(refOf(*now))) {
                forget(*now, RemoveReason::Vanished);
            }
        } catch (const std::exception& e) {
            log::warning(log::forContainer(rec.id, e.what()));
        }
    }
}

unsigned GroupManager::freeRmids() {
    Resctrl* r = resctrl();
    if (r == nullptr) {
        return 0;
    }
    const unsigned used = r->rmidsInUse();
    return r->numRmids() > used ? r->numRmids() - used : 0;
}

} // namespace rdtmon
