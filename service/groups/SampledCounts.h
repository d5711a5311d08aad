#pragma once

// The counts rdtmond serves for a group that takes turns at the assignable counters
// (docs/architecture.md, "Rotating the counters"). The kernel's count restarts at each turn
// and reads Unassigned between turns, so rdtmond serves a count of its own instead, which
// only grows: the bytes a turn counted over the time between its two reads give a rate, and
// the count grows at the last rate measured until the next turn ends. It starts at the
// kernel's count at the end of the first turn, so it goes on from the count that was served
// during that turn. For a steady load it
// is the load's count; for a changing one it follows a cycle late (the benchmark measures
// how far). Bus-free; driven from the loop's thread.

#include "Resctrl.h"

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>

namespace rdtmon {

class SampledCounts {
public:
    struct Value {
        uint64_t count = 0;
        uint64_t windowUsec = 0;   // of the last turn measured
        uint64_t measuredUsec = 0; // when that turn ended (CLOCK_MONOTONIC)
    };
    using Values = std::map<std::string, std::map<std::string, Value>>; // domain -> event

    // A turn of id ended at nowUsec (CLOCK_MONOTONIC): the kernel's counts at its end, and
    // the bytes counted over the windowUsec between the turn's two reads, per domain and
    // event.
    void measured(const std::string& id, const Counters& counts, const Counters& bytes,
                  uint64_t windowUsec, uint64_t nowUsec);
    // id's counts at nowUsec; empty before its first turn ended.
    Values at(const std::string& id, uint64_t nowUsec) const;
    bool has(const std::string& id) const { return groups_.count(id) != 0; }
    void forget(const std::string& id) { groups_.erase(id); }
    std::size_t size() const { return groups_.size(); }

private:
    struct Count {
        double count = 0; // at lastUsec
        double rate = 0;  // bytes per microsecond since lastUsec
        uint64_t lastUsec = 0;
        uint64_t windowUsec = 0;
    };
    std::unordered_map<std::string, std::map<std::string, std::map<std::string, Count>>> groups_;
};

} // namespace rdtmon
