#pragma once

// rdtmonctl selftest's load check, the verdict: from the counters read before, during and
// after the load, whether rdtmon's numbers add up (docs/selftest.md#the-load-check gives
// each bound's reasons). Pure arithmetic.

#include "LoadPlan.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace rdtmon::ctl::selftest {

// Domain key (mon_L3_00, mon_L3_00/mon_sub_L3_01) -> event -> value, as rdtmon's client
// returns a group's counters; an event left out was not readable.
using DomainCounts = std::map<std::string, std::map<std::string, uint64_t>>;

// Bandwidth, low side: a pass fetches at least the part of the buffer that the caches
// cannot hold (L3 plus the core's own L2 and L1, at most kPrivateCacheBytes), less
// kCounterMargin for the counters' own error.
inline constexpr uint64_t kPrivateCacheBytes = 4 * kMiB;
inline constexpr double kCounterMargin = 0.10;
// Bandwidth, high side: the stream adds about 1 % (page walks, prefetch at the ends); the
// rest is room for the counters' error, well below the 2x of a double count.
inline constexpr double kHighTolerance = 1.25;
// Another domain's delta, of the load's bytes: the group runs on no CPU there, so any real
// share is a mix-up (a wrong domain, an unpinned load).
inline constexpr double kOtherDomainFraction = 0.05;
// Occupancy must rise by at least L3/kOccupancyFloorDivisor (and kOccupancyFloorMin): a
// streamed line need not stay in the L3, so the floor is low; no other task can raise it.
inline constexpr uint64_t kOccupancyFloorDivisor = 32;
inline constexpr uint64_t kOccupancyFloorMin = 1 * kMiB;
// ... and stay below this much of the L3's size: more is a wrong scale or a double count.
inline constexpr double kOccupancyCeiling = 1.10;

struct LoadObservation {
    uint64_t bufferBytes = 0; // LoadPlan::bufferBytes
    uint32_t passesDone = 0;  // StreamResult::passesDone
    std::string domain;       // the load's L3 domain: mon_L3_01
    uint64_t l3Bytes = 0;     // that domain's L3 size; 0 when unknown
    DomainCounts before;      // after the child joined the group, before the stream
    DomainCounts during;      // while the stream ran (llc_occupancy is what is judged)
    DomainCounts after;       // after the stream, before the buffer is freed
};

struct Verdict {
    enum class Result { Pass, Fail, NotApplicable };
    std::string check; // "bandwidth", "other domains", "occupancy"
    Result result = Result::NotApplicable;
    std::string summary;               // one line, with the figures
    std::vector<std::string> evidence; // what was read and what was accepted, a line each
    // bandwidth: mbm_total_bytes delta / expected, accepted within [low, high].
    // other domains: the largest other domain's delta / the load's bytes, accepted up to
    // high. occupancy: the rise as a fraction of the L3 size, accepted from low (the
    // floor); high is the bound on the occupancy itself, of the L3 size.
    double ratio = 0;
    uint64_t expectedBytes = 0; // occupancy: the floor
    uint64_t measuredBytes = 0; // the delta (bandwidth), the largest delta (other
                                // domains), the rise (occupancy)
    double lowTolerance = 0;
    double highTolerance = 0;
};

// The lowest accepted measured/expected ratio for this buffer and cache.
double lowBandwidthTolerance(uint64_t bufferBytes, uint64_t l3Bytes);

// mbm_total_bytes of the load's domain rose by about bufferBytes * passesDone.
Verdict judgeBandwidth(const LoadObservation& obs);
// Every other top-level domain's mbm_total_bytes rose by less than kOtherDomainFraction
// of that.
Verdict judgeOtherDomains(const LoadObservation& obs);
// llc_occupancy of the load's domain rose while the load ran.
Verdict judgeOccupancy(const LoadObservation& obs);
// The three above, in that order.
std::vector<Verdict> judgeLoad(const LoadObservation& obs);
// The three checks, not applicable for one reason (a refused plan, the emulator).
std::vector<Verdict> loadNotApplicable(const std::string& reason);

// "pass", "FAIL", "n/a"
const char* resultName(Verdict::Result result);

} // namespace rdtmon::ctl::selftest
