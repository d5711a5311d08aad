#include "CounterScheduler.h"

#include <algorithm>
#include <tuple>

namespace rdtmon {

CounterScheduler::CounterScheduler() : CounterScheduler(Settings{}) {}

CounterScheduler::CounterScheduler(Settings s) : s_(s) {}

void CounterScheduler::add(const std::string& id, bool pinned, bool holding,
                           uint64_t heldSinceUsec) {
    auto [it, added] = groups_.try_emplace(id);
    if (!added) {
        return;
    }
    Group& g = it->second;
    g.pinned = pinned;
    g.seq = ++seq_;
    g.holding = holding;
    g.heldSinceUsec = heldSinceUsec;
    assignRoles();
}

void CounterScheduler::remove(const std::string& id) {
    groups_.erase(id);
    assignRoles();
}

void CounterScheduler::setSlots(unsigned slots) {
    slots_ = slots;
    assignRoles();
}

std::vector<std::string> CounterScheduler::ids() const {
    std::vector<std::string> out;
    out.reserve(groups_.size());
    for (const auto& [id, g] : groups_) {
        out.push_back(id);
    }
    return out;
}

void CounterScheduler::assignRoles() {
    if (groups_.size() <= slots_) {
        for (auto& [id, g] : groups_) {
            g.rotating = false;
            g.turnEndsUsec = 0;
        }
        return;
    }
    // Pinned groups first come, first kept, up to the bound; a slot is always left to the
    // groups that take turns.
    const unsigned bound = slots_ == 0         ? 0
                           : s_.maxPinned == 0 ? slots_ / 2
                                               : std::min(s_.maxPinned, slots_ - 1);
    std::vector<Group*> pinned;
    for (auto& [id, g] : groups_) {
        g.rotating = true;
        if (g.pinned) {
            pinned.push_back(&g);
        }
    }
    std::sort(pinned.begin(), pinned.end(), [](auto* a, auto* b) { return a->seq < b->seq; });
    for (std::size_t i = 0; i < pinned.size() && i < bound; ++i) {
        pinned[i]->rotating = false;
        pinned[i]->turnEndsUsec = 0;
    }
}

uint64_t CounterScheduler::dwell() const {
    unsigned rotating = 0;
    for (const auto& [id, g] : groups_) {
        rotating += g.rotating ? 1 : 0;
    }
    const unsigned continuous = static_cast<unsigned>(groups_.size()) - rotating;
    if (rotating == 0 || slots_ <= continuous) {
        return 0;
    }
    const unsigned turnSlots = slots_ - continuous;
    const uint64_t turns = (rotating + turnSlots - 1) / turnSlots;
    return std::clamp(s_.cycleUsec / turns, s_.minDwellUsec, s_.maxDwellUsec);
}

CounterScheduler::Plan CounterScheduler::plan(uint64_t nowUsec) {
    assignRoles();
    const uint64_t d = dwell();
    Plan p;
    unsigned inUse = 0;
    std::vector<std::pair<uint64_t, const std::string*>> ending; // (turn end, id)
    for (auto& [id, g] : groups_) {
        if (!g.holding) {
            continue;
        }
        if (g.rotating && g.turnEndsUsec == 0) {
            g.turnEndsUsec = nowUsec + d; // held since before it took turns: a turn from now
        }
        if (g.rotating && g.turnEndsUsec <= nowUsec) {
            p.measure.push_back(id);
        } else {
            ++inUse;
            if (g.rotating) {
                ending.emplace_back(g.turnEndsUsec, &id);
            }
        }
    }
    // Fewer slots than holders (another group took counters): the turns that end first end
    // now.
    std::sort(ending.begin(), ending.end());
    for (std::size_t i = 0; inUse > slots_ && i < ending.size(); ++i, --inUse) {
        p.measure.push_back(*ending[i].second);
    }
    unsigned free = slots_ > inUse ? slots_ - inUse : 0;
    std::vector<std::pair<std::tuple<bool, uint64_t, uint64_t>, const std::string*>> waiting;
    for (const auto& [id, g] : groups_) {
        const bool measuredNow =
            std::find(p.measure.begin(), p.measure.end(), id) != p.measure.end();
        if (!g.holding && !measuredNow && g.notBeforeUsec <= nowUsec) {
            // Continuous groups first, then those measured longest ago (never: 0), in order.
            waiting.push_back({{g.rotating, g.lastMeasuredUsec, g.seq}, &id});
        }
    }
    std::sort(waiting.begin(), waiting.end());
    for (std::size_t i = 0; i < waiting.size() && free > 0; ++i, --free) {
        p.take.push_back(*waiting[i].second);
    }
    return p;
}

void CounterScheduler::took(const std::string& id, uint64_t nowUsec) {
    const auto it = groups_.find(id);
    if (it == groups_.end()) {
        return;
    }
    Group& g = it->second;
    g.holding = true;
    g.refusals = 0;
    g.heldSinceUsec = nowUsec;
    g.turnEndsUsec = g.rotating ? nowUsec + dwell() : 0;
}

void CounterScheduler::refused(const std::string& id, uint64_t nowUsec) {
    if (const auto it = groups_.find(id); it != groups_.end()) {
        // 1 s, then twice as long after each refusal in a row, up to 64 s: a take that
        // keeps failing is not retried (nor logged) every second.
        Group& g = it->second;
        g.notBeforeUsec = nowUsec + (s_.retryUsec << std::min(g.refusals, 6u));
        ++g.refusals;
    }
}

void CounterScheduler::released(const std::string& id, uint64_t nowUsec) {
    const auto it = groups_.find(id);
    if (it == groups_.end()) {
        return;
    }
    Group& g = it->second;
    g.holding = false;
    g.turnEndsUsec = 0;
    g.lastMeasuredUsec = nowUsec;
}

bool CounterScheduler::rotating(const std::string& id) const {
    const auto it = groups_.find(id);
    return it != groups_.end() && it->second.rotating;
}

bool CounterScheduler::holding(const std::string& id) const {
    const auto it = groups_.find(id);
    return it != groups_.end() && it->second.holding;
}

uint64_t CounterScheduler::heldSinceUsec(const std::string& id) const {
    const auto it = groups_.find(id);
    return it == groups_.end() ? 0 : it->second.heldSinceUsec;
}

uint64_t CounterScheduler::nextDueUsec() const {
    uint64_t due = 0;
    auto sooner = [&](uint64_t t) { due = due == 0 ? t : std::min(due, t); };
    unsigned holders = 0;
    for (const auto& [id, g] : groups_) {
        holders += g.holding ? 1 : 0;
        if (g.holding && g.rotating && g.turnEndsUsec != 0) {
            sooner(g.turnEndsUsec);
        }
    }
    if (holders < slots_) {
        for (const auto& [id, g] : groups_) {
            if (!g.holding) {
                sooner(std::max<uint64_t>(g.notBeforeUsec, 1));
            }
        }
    }
    return due;
}

CounterScheduler::Stats CounterScheduler::stats() const {
    Stats st;
    for (const auto& [id, g] : groups_) {
        (g.rotating ? st.rotating : st.continuous) += 1;
    }
    st.dwellUsec = dwell();
    if (st.dwellUsec != 0) {
        const unsigned turnSlots = slots_ - st.continuous;
        st.cycleUsec = (st.rotating + turnSlots - 1) / turnSlots * st.dwellUsec;
    }
    return st;
}

} // namespace rdtmon
