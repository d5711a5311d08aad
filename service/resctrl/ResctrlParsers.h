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
// /proc/PID/resctrl's text ("res:/clos1\nmon:..."): the CTRL_MON group name, "" for the root
// group ("res:/"), nullopt when there is no res: line.
std::optional<std::string> parseProcResctrl(std::string_view text);
// Its "mon:" line: the MON group's name, "" when the task is in the CTRL_MON group itself,
// nullopt when there is no such line or it is not one directory name.
std::optional<std::string> parseProcResctrlMon(std::string_view text);

} // namespace rdtmon
