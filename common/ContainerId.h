#pragma once

#include <string_view>

namespace rdtmon {

// A container id is valid when it is 1..128 characters of [A-Za-z0-9_.-], is not "." or "..",
// and is not one of resctrl's own names (info, mon_groups, mon_data).
bool isValidContainerId(std::string_view id);

// Throws Error(InvalidArgument) naming what is wrong with the id.
void validateContainerId(std::string_view id);

} // namespace rdtmon
