#pragma once

#include <string_view>

// The names resctrl itself uses inside its tree. A container id or a CTRL_MON group name equal
// to one of them would alias resctrl's own files, so such names are refused everywhere.
namespace rdtmon {

inline constexpr std::string_view kResctrlInfo = "info";
inline constexpr std::string_view kResctrlMonGroups = "mon_groups";
inline constexpr std::string_view kResctrlMonData = "mon_data";

constexpr bool isReservedResctrlName(std::string_view name) {
    return name == kResctrlInfo || name == kResctrlMonGroups || name == kResctrlMonData;
}

} // namespace rdtmon
