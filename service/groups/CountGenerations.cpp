#include "CountGenerations.h"

#include <algorithm>

namespace rdtmon {

uint64_t CountGenerations::next(uint64_t nowUsec) {
    last_ = std::max(nowUsec, last_ + 1);
    return last_;
}

CountGenerations::Generations CountGenerations::observe(const std::string& key,
                                                        uint64_t incarnation,
                                                        const Counters& counts, uint64_t nowUsec,
                                                        const Decimals& decimals) {
    // A decimal value is compared in millionths (the places the kernel prints): a count
    // that restarts falls back to about 0, far more than that below the last.
    Counters merged;
    if (!decimals.empty()) {
        merged = counts;
        for (const auto& [domain, events] : decimals) {
            for (const auto& [event, v] : events) {
                merged[domain][event] =
                    static_cast<uint64_t>(std::clamp(v * 1e6, 0.0, 1.8e19)); // below 2^64
            }
        }
    }
    const Counters& values = decimals.empty() ? counts : merged;
    Group& g = groups_[key];
    if (g.incarnation != incarnation) {
        g.counts.clear();
        g.incarnation = incarnation;
    }
    g.seen = true;
    // Whatever this read lacks is not counted now: if it comes back, its count is new.
    for (auto d = g.counts.begin(); d != g.counts.end();) {
        const auto vd = values.find(d->first);
        for (auto e = d->second.begin(); e != d->second.end();) {
            if (vd == values.end() || vd->second.count(e->first) == 0) {
                e = d->second.erase(e);
            } else {
                ++e;
            }
        }
        d = d->second.empty() ? g.counts.erase(d) : std::next(d);
    }
    Generations out;
    for (const auto& [domain, events] : values) {
        for (const auto& [event, value] : events) {
            auto [it, added] = g.counts[domain].try_emplace(event);
            Count& c = it->second;
            if (added || c.generation == 0 || value < c.last) {
                c.generation = next(nowUsec);
            }
            c.last = value;
            out[domain][event] = c.generation;
        }
    }
    return out;
}

void CountGenerations::restart(const std::string& key, const std::string& event) {
    const auto g = groups_.find(key);
    if (g == groups_.end()) {
        return; // never read: its first read gives it a generation anyway
    }
    for (auto& [domain, events] : g->second.counts) {
        if (const auto e = events.find(event); e != events.end()) {
            e->second.generation = 0; // a new one at the next read
        }
    }
}

void CountGenerations::restartAll(const std::string& event) {
    for (auto& [key, g] : groups_) {
        for (auto& [domain, events] : g.counts) {
            for (auto& [name, c] : events) {
                if (event.empty() || name == event) {
                    c.generation = 0;
                }
            }
        }
    }
}

void CountGenerations::sweep() {
    for (auto it = groups_.begin(); it != groups_.end();) {
        if (!it->second.seen) {
            it = groups_.erase(it);
        } else {
            it->second.seen = false;
            ++it;
        }
    }
}

} // namespace rdtmon
