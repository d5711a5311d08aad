#pragma once

#include <string_view>

namespace rdtmon {

// A container id is valid when it is 1..128 characters of [A-Za-z0-9_.-], is not "." or "..",
// and is not one of resctrl's own names (info, mon_groups, mon_data).
bool isValidContainerId(std::string_view id);

// Throws Error(InvalidArgument) naming what is wrong with the id.
void validateContainerId(std::string_view id);

// Reserved for `rdtmonctl selftest`, which asks over the normal AddContainer for groups for
// child processes of its own; a runtime's container must not use it. No runtime lists
// such a container, so rdtmond never collects one as stale nor adopts one; it follows no
// cgroup for it (the children share rdtmonctl's cgroup, e.g. the operator's login
// session); and it removes them all at its start-up and when resctrl comes back, since no
// self-test survives either (docs/architecture.md, "Self-test groups").
inline constexpr std::string_view kSelftestIdPrefix = "rdtmon-selftest-";

// A valid container id that starts with kSelftestIdPrefix.
bool isSelftestId(std::string_view id);

} // namespace rdtmon
