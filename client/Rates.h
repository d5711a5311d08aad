#pragma once

// Rates from two bulk snapshots, without a bus: LLC occupancy as read last, MBM bytes/s
// over the monotonic interval between the reads. A rate that cannot be trusted is absent
// (nullopt), never a huge number: a counter that went down (reset, overflow handling by
// the kernel), one whose generation changed (its count restarted), a group made anew
// between the reads (another CreatedUsec, or not there the first time), or an event
// missing (Unavailable, Error, Unassigned) in either read.

#include "Snapshot.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace rdtmon::client {

struct Figures {
    std::optional<uint64_t> llcBytes;
    std::optional<double> mbmTotalBytesPerSec;
    std::optional<double> mbmLocalBytesPerSec;
};

// Every figure known and 0: what sums start from.
inline const Figures kZeroFigures{uint64_t{0}, 0.0, 0.0};
// Adds b into a, figure by figure; a figure absent in b makes it absent in a (a partial
// sum would read as a real number).
void accumulate(Figures& a, const Figures& b);

struct GroupRates {
    std::string id; // a container id, or a CLOS path (`/`, `/clos1`)
    Labels labels;
    std::string origin; // a container's (GroupCounters::origin); empty for a CLOS
    std::map<std::string, Figures> domains; // every domain of the later read
    // Summed over the whole L3 domains (SNC sub-domains are already in them); a figure is
    // absent when any domain lacks it, because a partial sum would read as a real number.
    Figures total;
    // A group that takes turns at the assignable counters: its MBM figures go on at the rate
    // its last turn measured; the longest such turn, and the age of the oldest.
    std::optional<double> sampledWindowSeconds;
    std::optional<double> sampledAgeSeconds;
    // Power over the interval, from Intel's telemetry (core_energy on every mon_PERF_PKG_YY
    // package, summed): absent where the node has no such event, and under the same rules
    // as a rate (a package missing, a count that went down or restarted).
    std::optional<double> watts;
};

struct RateReport {
    double intervalSeconds = 0;
    std::vector<GroupRates> containers; // sorted by id
    std::vector<GroupRates> closes;     // the CTRL_MON groups themselves, sorted by path
};

// Container id -> CreatedUsec (from ListGroups, and ListRuntimeGroups for the groups
// runtimes made, taken with the snapshot). CLOS entries are not in it: a CLOS counts as the
// same group while its path is in both reads.
using CreatedTimes = std::map<std::string, uint64_t>;

RateReport computeRates(const Snapshot& prev, const CreatedTimes& prevCreated, const Snapshot& cur,
                        const CreatedTimes& curCreated);

// Container id -> its CLOS path (`/`, `/clos1`): owned and runtime-made groups alike, all of
// which the CLOS's own numbers include.
using ClosOf = std::map<std::string, std::string>;

// The CLOS path of a container's group from its ListGroups resctrl path
// (`<resctrl>/mon_groups/<id>` is `/`, `<resctrl>/c1/mon_groups/<id>` is `/c1`) and the
// Manager's ResctrlPath; nullopt when the path has another shape.
std::optional<std::string> closOfGroup(const std::string& groupPath, const std::string& id,
                                       const std::string& resctrlPath);

// Per CLOS, what is not in any of its containers' groups: the CLOS's figures minus those of
// its containers (closOf), per domain and in total, never below zero; absent where the CLOS
// or any of its containers has no figure, and for MBM while any of them takes turns at the
// assignable counters (the CLOS's reading then counts only the groups holding them). Sorted by CLOS
// path; id is the CLOS path, labels are empty.
std::vector<GroupRates> outsideContainers(const RateReport& report, const ClosOf& closOf);

} // namespace rdtmon::client
