#pragma once

// The node as the self-test reports it: uname, /proc/cpuinfo, the resctrl mount in
// mountinfo, and what resctrl's info/ and mon_data say, beside rdtmond's own status.

#include "SelftestReport.h"
#include "Snapshot.h"

#include <optional>
#include <string>
#include <string_view>

namespace rdtmon::ctl::selftest {

NodeFacts gatherNodeFacts(const client::Status& status);

// The parts that parse text, for unit tests.
struct MountEntry {
    std::string fsType;
    std::string options; // the mount's options, then the superblock's
};
// The mountinfo line whose mount point is path (the last one: it is on top).
std::optional<MountEntry> findMount(std::string_view mountinfo, const std::string& path);
std::string cpuModelOf(std::string_view cpuinfo);
// The mode in brackets of info/L3_MON/mbm_assign_mode ("" when none is).
std::string assignModeOf(std::string_view text);

// The whole text of a file, "" when it cannot be read; trailing newline removed.
std::string readText(const std::string& path);

} // namespace rdtmon::ctl::selftest
