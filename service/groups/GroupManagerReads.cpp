// GroupManager's reads: one group's counters, every group's in one bulk pass, free RMIDs.
#include "GroupManager.h"

#include "Clock.h"
#include "ContainerId.h"
#include "Errors.h"
#include "Log.h"

namespace rdtmon {

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

} // namespace rdtmon
