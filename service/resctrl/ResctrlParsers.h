#pragma once

// The parsers of what resctrl and /proc hand rdtmond: pure functions over text, never
// throwing, driven directly by the unit tests and the fuzzers.

#include "Text.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace rdtmon {

// A counter file's text: a decimal value, or nullopt for Unavailable / Error / Unassigned /
// anything that is not a number.
std::optional<uint64_t> parseCounterValue(std::string_view text);
// A counter file's text that is a decimal fraction, as the kernel prints its fixed-point
// events (Intel's core_energy and activity: "12.345678"): digits, a point, digits. nullopt
// for anything else, an integer included (parseCounterValue's).
std::optional<double> parseDecimalValue(std::string_view text);
// A task's groups, from /proc/PID/cpu_resctrl_groups.
struct TaskGroups {
    std::string ctrl; // its CTRL_MON group, "" for the default one
    std::string mon;  // its MON group under ctrl, "" for none (the CTRL_MON group's own RMID)
    bool operator==(const TaskGroups&) const = default;
};
// /proc/PID/cpu_resctrl_groups as the kernel prints it (fs/resctrl/rdtgroup.c,
// proc_resctrl_show): "res:/" for the default CTRL_MON group or "res:NAME" for another,
// then "mon:NAME" or "mon:" for none. nullopt for anything else: "res:" with nothing after
// it (resctrl not mounted), a missing line, a name that is not one directory.
std::optional<TaskGroups> parseCpuResctrlGroups(std::string_view text);

// Assignable counters (Linux 6.18+; docs/architecture.md, "Assignable counters").
// info/L3_MON/mbm_assign_mode: one mode name per line, the one in force in brackets
// ("[mbm_event]\ndefault\n"). nullopt unless exactly one is bracketed and every name is a
// plain word.
struct AssignModes {
    std::string active;              // "mbm_event" or "default" (or a later kernel's word)
    std::vector<std::string> listed; // every name, in the file's order, active included
    bool operator==(const AssignModes&) const = default;
};
std::optional<AssignModes> parseAssignModes(std::string_view text);
// num_mbm_cntrs and available_mbm_cntrs: "0=32;1=32" as domain id -> count. nullopt for
// anything else (a repeated domain included).
std::optional<std::map<unsigned, unsigned>> parseDomainCounts(std::string_view text);
// A group's mbm_L3_assignments: "mbm_total_bytes:0=e;1=_" per line, as event -> domain id
// -> whether the group holds a counter there ('e'). nullopt for anything else.
using Assignments = std::map<std::string, std::map<unsigned, bool>>;
std::optional<Assignments> parseAssignments(std::string_view text);

} // namespace rdtmon
