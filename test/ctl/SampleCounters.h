// Sample readings for the pure ctl and client tests: one container's three L3 events in a
// number of domains, each domain reading the same values, and a snapshot at a time.
#pragma once

#include "Snapshot.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace rdtmon::test {

inline client::Counters l3Counters(uint64_t llc, uint64_t total, uint64_t local, int domains = 1) {
    client::Counters out;
    for (int d = 0; d < domains; ++d) {
        const std::string name = (d < 10 ? "mon_L3_0" : "mon_L3_") + std::to_string(d);
        out[name] = {
            {"llc_occupancy", llc}, {"mbm_total_bytes", total}, {"mbm_local_bytes", local}};
    }
    return out;
}

inline client::Snapshot snapshotAt(uint64_t monotonicUsec,
                                   std::vector<client::GroupCounters> groups) {
    return client::Snapshot{monotonicUsec, std::move(groups)};
}

} // namespace rdtmon::test
