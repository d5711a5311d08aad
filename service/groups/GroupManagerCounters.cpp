// Assignable counters (docs/architecture.md, "Assignable counters"): free counters given to
// owned groups that lack them.
#include "GroupManager.h"

#include "Log.h"
#include "Resctrl.h"

#include <algorithm>

namespace rdtmon {

unsigned GroupManager::assignFreeCounters() {
    Resctrl* r = resctrl();
    if (r == nullptr) {
        return 0;
    }
    AssignInfo info;
    try {
        info = r->assignInfo();
    } catch (const std::exception& e) {
        log::warning(std::string("cannot read the assignable counters: ") + e.what());
        return 0;
    }
    std::map<unsigned, unsigned> free = info.available;
    auto anyFree = [&] {
        return std::any_of(free.begin(), free.end(), [](const auto& kv) { return kv.second > 0; });
    };
    if (!info.mbmEvent() || !anyFree()) {
        return 0;
    }
    std::vector<std::string> events;
    for (const std::string& f : r->monFeatures()) {
        if (f == "mbm_total_bytes" || f == "mbm_local_bytes") {
            events.push_back(f);
        }
    }
    // The groups that have waited longest first.
    std::vector<GroupRecord> recs = groups();
    std::stable_sort(recs.begin(), recs.end(), [](const GroupRecord& a, const GroupRecord& b) {
        return a.createdUsec < b.createdUsec;
    });
    unsigned assigned = 0;
    for (const GroupRecord& rec : recs) {
        if (!anyFree()) {
            break;
        }
        Assignments held;
        try {
            held = r->assignments(refOf(rec));
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::NoSuchGroup) {
                log::warning(log::forContainer(rec.id, e.what()));
                return assigned; // the mode changed or resctrl went: the next change retries
            }
            continue; // removed meanwhile: its record goes with the next read
        }
        std::string got;
        for (const std::string& ev : events) {
            std::vector<unsigned> missing;
            for (const auto& [d, n] : info.counters) {
                auto e = held.find(ev);
                if (e == held.end() || !e->second.count(d) || !e->second.at(d)) {
                    missing.push_back(d);
                }
            }
            // A figure needs every domain: a group is given an event where all it lacks is free.
            if (missing.empty() || std::any_of(missing.begin(), missing.end(),
                                               [&](unsigned d) { return free[d] == 0; })) {
                continue;
            }
            for (unsigned d : missing) {
                try {
                    r->setAssignment(refOf(rec), ev, d, true);
                } catch (const OutOfCounters&) {
                    free[d] = 0; // taken by someone else meanwhile
                    break;
                } catch (const Error& e) {
                    log::warning(log::forContainer(rec.id, e.what()));
                    break;
                }
                --free[d];
                ++assigned;
                generations_.restart(CountGenerations::ownedKey(rec.id), ev);
                got += (got.empty() ? "" : ", ") + ev + " on domain " + std::to_string(d);
            }
        }
        if (!got.empty()) {
            log::info(log::forContainer(rec.id, "assigned free counters: " + got));
        }
    }
    return assigned;
}

} // namespace rdtmon
