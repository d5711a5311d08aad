#pragma once

// The parsers of what resctrl and /proc hand rdtmond: pure functions over text, never
// throwing, driven directly by the unit tests and the fuzzers.

#include "Text.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace rdtmon {

// A counter file's text: a decimal value, or nullopt for Unavailable / Error / Unassigned /
// anything that is not a number.
std::optional<uint64_t> parseCounterValue(std::string_view text);
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

} // namespace rdtmon
