#pragma once

// The Prometheus text (exposition format 0.0.4) of one rdtmond reading: the one formatter
// behind `rdtmonctl metrics` and rdtmon-exporter's /metrics. Pure: no bus, no clock.
//
// Families, in this order (one HELP and TYPE each; a family without samples is left out):
//   rdtmon_up                          gauge   1 when rdtmond answered, else 0 and nothing else
//   rdtmon_supported                   gauge   1 when resctrl monitoring is usable
//   rdtmon_groups                      gauge   groups rdtmond owns (GroupCount)
//   rdtmon_rmids                       gauge   RMIDs resctrl has (NumRmids)
//   rdtmon_rmids_free                  gauge   RMIDs free (FreeRmids; left out when unknown)
//   rdtmon_llc_size_bytes              gauge   per L3 domain: the cache's size (L3CacheSizes)
//   rdtmon_containers_waiting          gauge   containers waiting for an RMID (GetAllCoverage)
//   rdtmon_mbm_assign_mode             gauge   1, with mode: the assignable-counter mode
//                                              (GetCounterAssignment; left out without one)
//   rdtmon_mbm_counters                gauge   per L3 domain: assignable counters (mbm_event)
//   rdtmon_mbm_counters_free           gauge   per L3 domain: of those, free
//   rdtmon_mbm_schedule_groups         gauge   schedule="continuous" or "turns": owned groups
//   rdtmon_mbm_turns_cycle_seconds     gauge   the cycle of the turns (0: none take turns)
//   rdtmon_containers_without_bandwidth gauge  containers with no MBM value on any domain
//   rdtmon_llc_occupancy_bytes         gauge   per container and L3 domain
//   rdtmon_mbm_total_bytes_total       counter per container and L3 domain
//   rdtmon_mbm_local_bytes_total       counter per container and L3 domain
//   rdtmon_container_tasks             gauge   per container, where="group" or "outside":
//                                              its threads in its group and outside it
//   rdtmon_clos_llc_occupancy_bytes    gauge   per CTRL_MON group (clos) and L3 domain
//   rdtmon_clos_mbm_total_bytes_total  counter per CTRL_MON group and L3 domain
//   rdtmon_clos_mbm_local_bytes_total  counter per CTRL_MON group and L3 domain
// Container samples always carry all of container_id, pod, namespace, container, origin and
// domain (or where), in that order; a label the group does not have is the empty string
// (which Prometheus treats as absent), so every sample of a family has the same label names.
// origin is how the group came to be: "hook" (asked for over the bus, as rdtmon-hook does),
// "adopted" (rdtmond found the container running without a group and made it one) or
// "runtime" (made by the container's runtime itself, runc's or crun's own monitoring: read,
// never owned, and not counted in rdtmon_groups). An rdtmond older than origin made every
// group on request: its groups say "hook". Runtime-made groups have no rdtmon_container_tasks
// (rdtmond does not follow their tasks).
// CLOS samples carry clos (`/` for the default group, `/name` for others) and domain.
// Only whole L3 domains (mon_L3_00) are written: the kernel already adds SNC sub-domains
// into them, so a sum over domain stays right. An event that read Unavailable, Error or
// Unassigned has no sample. Samples are sorted by container id (or clos), then domain.

#include "Snapshot.h"

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace rdtmon::client {

// The Content-Type of the text.
inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

struct MetricsInput {
    bool up = false;   // rdtmond answered; nothing below is read when false
    Status status;     // Manager properties
    Snapshot snapshot; // GetAllCounters (empty when resctrl is unsupported)
    // GetAllCoverage (nullopt when unsupported, or from a service older than it); a
    // container's labels and origin come from the snapshot.
    std::optional<std::vector<GroupCoverage>> coverage;
    // GetCounterAssignment (nullopt when unsupported, or from a service older than it).
    std::optional<CounterAssignment> counters;
    // The group objects of the coverage's containers that the snapshot does not have (those
    // waiting for an RMID), for their labels and origin; one missing here has no labels and
    // origin "hook".
    std::map<std::string, GroupInfo> notRead;
};

std::string formatMetrics(const MetricsInput& in);

// A label value escaped for the text format: backslash, double quote and newline.
std::string escapeLabelValue(std::string_view value);

} // namespace rdtmon::client
