#pragma once

// What rdtmond reports, as plain values: the client library's D-Bus half fills these, and
// the pure halves (rates, the Prometheus text) read them, so tests build them by hand.

#include "ResctrlNames.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace rdtmon::client {

// The counter events resctrl names in mon_data (and rdtmond passes on).
inline constexpr const char* kLlcOccupancy = rdtmon::kLlcOccupancy;
inline constexpr const char* kMbmTotal = rdtmon::kMbmTotalBytes;
inline constexpr const char* kMbmLocal = rdtmon::kMbmLocalBytes;

using Labels = std::map<std::string, std::string>;
// domain (mon_L3_00, with SNC also mon_L3_00/mon_sub_L3_01) -> {event -> value}; an event
// that read Unavailable, Error or Unassigned is absent.
using Counters = std::map<std::string, std::map<std::string, uint64_t>>;
// The same for values the kernel prints as decimal fractions (Intel's telemetry:
// core_energy in joules, activity), which only GetAllValues serves.
using Decimals = std::map<std::string, std::map<std::string, double>>;

// How a container's group came to be (the Group's Origin, GetAllCounters' "origin" label):
// asked for over the bus as rdtmon-hook does, made by rdtmond for a container it found
// running without one, or made by the container's runtime itself (runc's or crun's own
// monitoring): shown, never owned. An rdtmond older than Origin made every group it has
// because it was asked to, so a group it reports without an origin is a hook's.
inline constexpr const char* kOriginHook = "hook";
inline constexpr const char* kOriginAdopted = "adopted";
inline constexpr const char* kOriginRuntime = "runtime";

// One entry of GetAllCounters: a container's group, or a CTRL_MON group (CLOS) itself
// under its resctrl-relative path (`/`, `/clos1`), which no container id can be.
struct GroupCounters {
    std::string id;
    Labels labels; // the container's own labels; the service's "origin" key is in origin
    Counters counters;
    std::string origin = kOriginHook; // of a container's group; not used for a CLOS
    // The same shape as counters: each count's generation (GetAllValues); two values are
    // subtracted only when theirs are equal. Empty from a service older than GetAllValues.
    Counters generations;
    // A group that takes turns at the assignable counters: for each count rdtmond measured
    // over a turn, the turn's length and when it ended (CLOCK_MONOTONIC µs). Empty for
    // counts read as the kernel counts them.
    Counters windowUsec;
    Counters measuredUsec;
    Decimals decimals; // their generations are in generations too
    bool isClos() const { return !id.empty() && id.front() == '/'; }
};

// One bulk read: every group's counters at one CLOCK_MONOTONIC time.
struct Snapshot {
    uint64_t monotonicUsec = 0;
    std::vector<GroupCounters> groups;
};

// A group object's state: `active` (its group exists), or `waiting` for a free RMID.
inline constexpr const char* kStateActive = "active";
inline constexpr const char* kStateWaiting = "waiting";

// One group: a row of ListGroups (active groups only, no labels), one group object of the
// ObjectManager with all its properties (waiting containers included), or a row of
// ListRuntimeGroups (origin "runtime": no object, no coverage). Properties a service older
// than this client lacks keep these defaults.
struct GroupInfo {
    std::string id;
    std::string resctrlPath;
    uint32_t pid = 0;
    uint64_t createdUsec = 0; // CLOCK_REALTIME µs
    std::string objectPath;
    Labels labels;
    std::string state = kStateActive;
    std::string cgroup; // the container cgroup rdtmond follows; empty when none
    // Threads of the container in its group and outside it, as of rdtmond's last count.
    std::optional<uint32_t> tasksInGroup;
    std::optional<uint32_t> tasksOutside;
    std::string origin = kOriginHook; // kOriginHook, kOriginAdopted or kOriginRuntime
};

// One entry of GetAllCoverage: how much of a container its group covers.
struct GroupCoverage {
    std::string id;
    std::string state = kStateActive;
    std::string cgroup;
    uint32_t tasksInGroup = 0;
    uint32_t tasksOutside = 0;
};

// Assignable memory-bandwidth counters (GetCounterAssignment): the selected mode ("mbm_event",
// "default", or "" on a kernel without them) and, in mbm_event mode, each L3 domain's
// counters and how many are free.
struct CounterDomain {
    uint32_t domain = 0; // the L3 domain id (mon_L3_XX)
    uint32_t counters = 0;
    uint32_t free = 0;
};
struct CounterAssignment {
    std::string mode;
    std::vector<CounterDomain> domains;
    // In mbm_event mode (CountersContinuous, CountersRotating, CounterCycleUsec; absent
    // from a service older than them): the owned groups that hold counters all the time,
    // those that take turns, and the cycle in which each of those is measured once.
    std::optional<uint32_t> continuous;
    std::optional<uint32_t> rotating;
    std::optional<uint64_t> cycleUsec;
};

// The mon_data name of an L3 domain id, as counters name their domains: mon_L3_00.
std::string l3DomainName(uint32_t domain);

// The containers of a reading (CLOS groups aside) with no memory-bandwidth value on any
// domain: on a node in mbm_event mode those whose group holds no counter (Unassigned).
// 0 when the node has no MBM event (monFeatures).
uint32_t containersWithoutBandwidth(const Snapshot& snapshot,
                                    const std::vector<std::string>& monFeatures);

// The Manager's properties.
struct Status {
    std::string version;
    bool supported = false;
    std::string resctrlPath;
    std::vector<std::string> monFeatures;
    std::vector<std::string> telemetryFeatures; // empty from a service older than them
    uint32_t numRmids = 0;
    std::optional<uint32_t> freeRmids; // absent from a service older than FreeRmids
    // L3 domain id -> cache size in bytes (L3CacheSizes); empty where rdtmond cannot read
    // it, or from a service older than it.
    std::map<uint32_t, uint64_t> l3CacheSizes;
    uint32_t groupCount = 0;
};

// Whether a domain name is an L3 domain (mon_L3_00) or one of its SNC sub-domains
// (mon_L3_00/mon_sub_L3_01): where the cache and bandwidth events are. Intel's telemetry
// packages (mon_PERF_PKG_00) are not.
inline bool isL3Domain(const std::string& domain) {
    return domain.rfind("mon_L3_", 0) == 0;
}

// Whether a domain name is a whole L3 domain (mon_L3_00), not an SNC sub-domain
// (mon_L3_00/mon_sub_L3_01), whose numbers the kernel already adds into its parent's.
inline bool isTopLevelDomain(const std::string& domain) {
    return isL3Domain(domain) && domain.find('/') == std::string::npos;
}

} // namespace rdtmon::client
