#include "SampledCounts.h"

#include <cmath>

namespace rdtmon {

void SampledCounts::measured(const std::string& id, const Counters& counts, const Counters& bytes,
                             uint64_t windowUsec, uint64_t nowUsec) {
    if (windowUsec == 0) {
        return; // no time, no rate
    }
    auto& group = groups_[id];
    for (const auto& [domain, events] : bytes) {
        for (const auto& [event, value] : events) {
            auto [it, added] = group[domain].try_emplace(event);
            Count& c = it->second;
            if (added) {
                uint64_t start = value;
                if (const auto d = counts.find(domain); d != counts.end()) {
                    if (const auto e = d->second.find(event); e != d->second.end()) {
                        start = e->second;
                    }
                }
                c.count = static_cast<double>(start);
            } else if (nowUsec > c.lastUsec) {
                // What was served until now stays: the count never goes down.
                c.count += c.rate * static_cast<double>(nowUsec - c.lastUsec);
            }
            c.rate = static_cast<double>(value) / static_cast<double>(windowUsec);
            c.lastUsec = nowUsec;
            c.windowUsec = windowUsec;
        }
    }
}

SampledCounts::Values SampledCounts::at(const std::string& id, uint64_t nowUsec) const {
    Values out;
    const auto g = groups_.find(id);
    if (g == groups_.end()) {
        return out;
    }
    for (const auto& [domain, events] : g->second) {
        for (const auto& [event, c] : events) {
            const double since =
                nowUsec > c.lastUsec ? static_cast<double>(nowUsec - c.lastUsec) : 0.0;
            out[domain][event] = Value{static_cast<uint64_t>(std::floor(c.count + c.rate * since)),
                                       c.windowUsec, c.lastUsec};
        }
    }
    return out;
}

} // namespace rdtmon
