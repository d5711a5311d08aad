// Assignable counters (docs/architecture.md, "Rotating the counters"): the counters of
// an mbm_event node given to the owned groups as CounterScheduler plans, each turn measured
// into SampledCounts before its counters go to the next.
#include "GroupManager.h"

#include "Clock.h"
#include "Log.h"
#include "Resctrl.h"
#include "ResctrlNames.h"

#include <algorithm>
#include <set>

namespace rdtmon {

namespace {

bool holdsAll(const Assignments& held, const std::vector<std::string>& events,
              const std::map<unsigned, unsigned>& domains) {
    for (const std::string& ev : events) {
        const auto e = held.find(ev);
        for (const auto& [d, n] : domains) {
            if (e == held.end() || !e->second.count(d) || !e->second.at(d)) {
                return false;
            }
        }
    }
    return true;
}

std::vector<unsigned> domainIds(const std::map<unsigned, unsigned>& domains) {
    std::vector<unsigned> out;
    for (const auto& [d, n] : domains) {
        out.push_back(d);
    }
    return out;
}

} // namespace

void GroupManager::setCounterSettings(const CountersConfig& c) {
    counterConfig_ = c;
    CounterScheduler::Settings s;
    s.cycleUsec = static_cast<uint64_t>(c.cycle.count()) * 1'000'000u;
    s.maxPinned = c.maxPinned;
    scheduler_ = CounterScheduler(s);
    schedulerSettings_ = s;
}

bool GroupManager::pinned(const Labels& labels) const {
    // The hook's label from the annotation org.rdtmon.counters=pinned, or the configuration.
    if (const auto it = labels.find(std::string(kLabelCounters));
        it != labels.end() && it->second == kCountersPinned) {
        return true;
    }
    return std::any_of(counterConfig_.pin.begin(), counterConfig_.pin.end(), [&](const auto& set) {
        return std::all_of(set.begin(), set.end(), [&](const auto& kv) {
            const auto it = labels.find(kv.first);
            return it != labels.end() && it->second == kv.second;
        });
    });
}

std::vector<std::string> GroupManager::countedEvents(const Resctrl& r) const {
    std::vector<std::string> out;
    for (const std::string& f : r.monFeatures()) {
        const auto& want = counterConfig_.events;
        if (isMbmEvent(f) &&
            (want.empty() || std::find(want.begin(), want.end(), f) != want.end())) {
            out.push_back(f);
        }
    }
    return out;
}

void GroupManager::stopScheduling() {
    // Out of mbm_event mode (or without resctrl) every count is the kernel's again; a
    // switch restarted them all, and the served ones of the rotating groups end here.
    for (const std::string& id : scheduler_.ids()) {
        if (sampled_.has(id)) {
            for (const char* ev : kMbmEvents) {
                generations_.restart(CountGenerations::ownedKey(id), ev);
            }
        }
    }
    scheduler_ = CounterScheduler(schedulerSettings_);
    sampled_ = SampledCounts();
    turns_.clear();
}

void GroupManager::runCounters(uint64_t nowUsec, bool changed) {
    const uint64_t due = scheduler_.nextDueUsec();
    if (!changed && (due == 0 || due > nowUsec)) {
        return;
    }
    Resctrl* r = resctrl();
    AssignInfo info;
    try {
        if (r != nullptr) {
            info = r->assignInfo();
        }
    } catch (const std::exception& e) {
        // Not a mode switch: the next change or turn looks again.
        log::warning(std::string("cannot read the assignable counters: ") + e.what());
        return;
    }
    const std::vector<std::string> events =
        r != nullptr ? countedEvents(*r) : std::vector<std::string>{};
    if (r != nullptr && info.mode != assignMode_) {
        // A switch frees every counter and restarts every count, of every group (the
        // kernel's rdtgroup_mbm_cntr_reset): none is to be subtracted across it.
        if (assignMode_) {
            log::notice("assignable counters: mode " +
                        (info.mode.empty() ? std::string("none") : info.mode) + " (was " +
                        (assignMode_->empty() ? std::string("none") : *assignMode_) + ")");
            for (const char* ev : kMbmEvents) {
                generations_.restartAll(ev);
            }
        }
        assignMode_ = info.mode;
    }
    if (r == nullptr || !info.mbmEvent() || events.empty() || info.counters.empty()) {
        if (!scheduler_.ids().empty()) {
            stopScheduling();
        }
        return;
    }
    if (changed || scheduler_.ids().empty()) {
        syncScheduled(*r, events, info.counters, nowUsec);
    }
    unsigned holders = 0;
    for (const std::string& id : scheduler_.ids()) {
        holders += scheduler_.holding(id) ? 1 : 0;
    }
    // What the owned groups may hold: the free counters and those they hold, on the domain
    // with the fewest.
    unsigned slots = ~0u;
    for (const auto& [d, n] : info.counters) {
        const auto a = info.available.find(d);
        const unsigned mine = (a == info.available.end() ? 0 : a->second) +
                              holders * static_cast<unsigned>(events.size());
        slots = std::min(slots, mine / static_cast<unsigned>(events.size()));
    }
    scheduler_.setSlots(slots);

    const CounterScheduler::Plan plan = scheduler_.plan(nowUsec);
    for (const std::string& id : plan.measure) {
        measureTurn(*r, id, events, info.counters, nowUsec);
    }
    for (const std::string& id : plan.take) {
        takeCounters(*r, id, events, info.counters, nowUsec);
    }
    // A group that no longer takes turns is read as the kernel counts it again.
    for (const std::string& id : scheduler_.ids()) {
        if (!scheduler_.rotating(id) && sampled_.has(id)) {
            sampled_.forget(id);
            for (const std::string& ev : events) {
                generations_.restart(CountGenerations::ownedKey(id), ev);
            }
        }
    }
}

void GroupManager::syncScheduled(Resctrl& r, const std::vector<std::string>& events,
                                 const std::map<unsigned, unsigned>& domains, uint64_t nowUsec) {
    std::set<std::string> active;
    for (const GroupRecord& rec : groups()) {
        active.insert(rec.id);
        if (scheduler_.has(rec.id)) {
            continue;
        }
        bool holds = false;
        try {
            holds = holdsAll(r.assignments(refOf(rec)), events, domains);
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::NoSuchGroup) {
                log::warning(log::forContainer(rec.id, e.what()));
            }
            continue;
        }
        scheduler_.add(rec.id, pinned(rec.labels), holds, nowUsec);
        if (holds) {
            // Counting since its mkdir: a baseline from now.
            startTurn(r, rec, events, domainIds(domains));
        }
    }
    for (const std::string& id : scheduler_.ids()) {
        if (!active.count(id)) {
            scheduler_.remove(id);
            sampled_.forget(id);
            turns_.erase(id);
        }
    }
}

void GroupManager::measureTurn(Resctrl& r, const std::string& id,
                               const std::vector<std::string>& events,
                               const std::map<unsigned, unsigned>& domains, uint64_t nowUsec) {
    const std::optional<GroupRecord> rec = find(id);
    if (!rec) {
        scheduler_.remove(id);
        turns_.erase(id);
        return;
    }
    try {
        auto turn = turns_.find(id);
        if (turn == turns_.end()) {
            turn = turns_.emplace(id, Turn{}).first; // no start read: only give them back
        }
        if (!turn->second.files.isOpen()) {
            // Closed while it held counters all the time, or not opened at the take.
            turn->second.files = r.openTurn(refOf(*rec), events, domainIds(domains));
        }
        Turn& t = turn->second;
        if (t.startUsec != 0) {
            // What the turn counted between its two reads, over the time between them (on
            // the clock the counts run by: the plan's may be a test's).
            uint64_t endUsec = 0;
            const Counters end = readTurn(r, t, endUsec);
            Counters bytes;
            for (const auto& [domain, values] : end) {
                const auto d = t.start.find(domain);
                if (d == t.start.end()) {
                    continue;
                }
                for (const auto& [ev, v] : values) {
                    const auto b = d->second.find(ev);
                    if (b != d->second.end() && v >= b->second) {
                        bytes[domain][ev] = v - b->second;
                    }
                }
            }
            if (endUsec > t.startUsec) {
                sampled_.measured(id, end, bytes, endUsec - t.startUsec, endUsec);
            }
        }
        r.assignTurn(t.files, false);
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::NoSuchGroup) {
            log::warning(log::forContainer(id, std::string("counters: ") + e.what()));
        }
    }
    scheduler_.released(id, nowUsec);
    turns_.erase(id);
}

Counters GroupManager::readTurn(const Resctrl& r, const Turn& t, uint64_t& usec) {
    // Both reads of a turn go through the same files in the same order, each time stamped
    // at its middle, so the time the reads take cancels out of the rate.
    const uint64_t before = monotonicUsec();
    Counters c = r.readTurn(t.files);
    usec = before + (monotonicUsec() - before) / 2;
    return c;
}

void GroupManager::startTurn(Resctrl& r, const GroupRecord& rec,
                             const std::vector<std::string>& events,
                             const std::vector<unsigned>& domains) {
    try {
        Turn t;
        t.files = r.openTurn(refOf(rec), events, domains);
        t.start = readTurn(r, t, t.startUsec);
        keepTurn(rec.id, std::move(t));
    } catch (const Error& e) {
        turns_.erase(rec.id);
        if (e.kind() != ErrorKind::NoSuchGroup) {
            log::warning(log::forContainer(rec.id, std::string("counters: ") + e.what()));
        }
    }
}

void GroupManager::keepTurn(const std::string& id, Turn t) {
    if (!scheduler_.rotating(id)) {
        // Holding all the time, it is read as the kernel counts it: its files are opened
        // again only if it ever has to take turns.
        t.files = TurnFiles();
    }
    turns_.insert_or_assign(id, std::move(t));
}

void GroupManager::takeCounters(Resctrl& r, const std::string& id,
                                const std::vector<std::string>& events,
                                const std::map<unsigned, unsigned>& domains, uint64_t nowUsec) {
    const std::optional<GroupRecord> rec = find(id);
    if (!rec) {
        scheduler_.remove(id);
        turns_.erase(id);
        return;
    }
    Turn t;
    try {
        t.files = r.openTurn(refOf(*rec), events, domainIds(domains));
        r.assignTurn(t.files, true);
    } catch (const Error& e) {
        // Taken by a group rdtmond does not own meanwhile, or the group went: give back
        // what this one got, so that no counter sits on a group that cannot count.
        if (t.files.isOpen()) {
            try {
                r.assignTurn(t.files, false);
            } catch (const Error&) {
            }
        }
        if (e.kind() != ErrorKind::NoSuchGroup && e.kind() != ErrorKind::Busy) {
            log::warning(log::forContainer(id, std::string("counters: ") + e.what()));
        }
        scheduler_.refused(id, nowUsec);
        return;
    }
    scheduler_.took(id, nowUsec);
    try {
        t.start = readTurn(r, t, t.startUsec);
    } catch (const Error& e) {
        t.startUsec = 0; // no rate from this turn; its counters are given back at its end
        if (e.kind() != ErrorKind::NoSuchGroup) {
            log::warning(log::forContainer(id, std::string("counters: ") + e.what()));
        }
    }
    keepTurn(id, std::move(t));
    // Its kernel counts start now; a rotating group that has a sampled count keeps serving
    // that one, which goes on.
    if (!scheduler_.rotating(id) || !sampled_.has(id)) {
        for (const std::string& ev : events) {
            generations_.restart(CountGenerations::ownedKey(id), ev);
        }
    }
}

void GroupManager::applySampled(GroupCounters& g, uint64_t nowUsec) const {
    if (!sampled_.has(g.id)) {
        return;
    }
    for (const auto& [domain, events] : sampled_.at(g.id, nowUsec)) {
        for (const auto& [event, v] : events) {
            g.counters[domain][event] = v.count;
            g.windowUsec[domain][event] = v.windowUsec;
            g.measuredUsec[domain][event] = v.measuredUsec;
        }
    }
}

} // namespace rdtmon
