#pragma once

// What the Resctrl files share: every path component checked before use, and the opens of
// a group's directory that name what is missing (NoSuchGroup) and refuse symlinks.

#include "FileIo.h"
#include "Resctrl.h"
#include "UniqueFd.h"

#include <string>
#include <string_view>

namespace rdtmon {

// No '/', NUL or newline (the kernel refuses it with EINVAL), not "." or "..", not empty.
// Throws Error(InvalidArgument) naming what is wrong.
void validateComponent(std::string_view name, std::string_view what);
// Both names of a MON group are valid components and not resctrl's own names.
void validateRef(const MonGroupRef& g);
// "<root>/<rel>" for messages.
std::string joinPath(const std::string& root, const std::string& rel);
// Appends " (kernel: <status>)" when info/last_cmd_status says something other than ok.
std::string withStatus(std::string msg, const std::string& status);

// Opens one directory component below dirfd. A missing one is NoSuchGroup with the message
// `missing`; a symlink or a non-directory is refused; any other errno maps per kindFromErrno
// with "cannot open <what>".
UniqueFd openDirOrThrow(int dirfd, const std::string& name, const std::string& shownPath,
                        const std::string& missing, const std::string& what);
// Opens <root>/<ctrl>/mon_groups, throwing NoSuchGroup when the CTRL_MON group is absent.
UniqueFd openMonGroupsDir(int root, const std::string& rootPath, const std::string& ctrl);
// Opens the MON group's directory, throwing NoSuchGroup when absent.
UniqueFd openGroupDir(int root, const std::string& rootPath, const MonGroupRef& g,
                      const std::string& groupPath);

// info/L3_MON/<file> below the root: its text, or the errno of the first open or read
// that failed.
ReadResult readInfoL3Mon(int root, const std::string& file);
// The same below info/<dir> (PERF_PKG_MON: Intel's telemetry).
ReadResult readInfo(int root, const std::string& dir, const std::string& file);

} // namespace rdtmon
