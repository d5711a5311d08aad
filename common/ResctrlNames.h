#pragma once

#include <array>
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

// The monitoring events of mon_data that rdtmon reads by name: cache occupancy, and the two
// memory-bandwidth counts (the events an assignable counter counts).
inline constexpr const char* kLlcOccupancy = "llc_occupancy";
inline constexpr const char* kMbmTotalBytes = "mbm_total_bytes";
inline constexpr const char* kMbmLocalBytes = "mbm_local_bytes";
// Intel's telemetry (mon_PERF_PKG_YY): a package's energy spent on the group's tasks, in
// joules, printed as a decimal fraction.
inline constexpr const char* kCoreEnergy = "core_energy";
inline constexpr std::array<const char*, 2> kMbmEvents = {kMbmTotalBytes, kMbmLocalBytes};

constexpr bool isMbmEvent(std::string_view event) {
    return event == kMbmTotalBytes || event == kMbmLocalBytes;
}

} // namespace rdtmon
