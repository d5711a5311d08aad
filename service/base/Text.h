#pragma once

// Text helpers that the parsers of resctrl, /proc and the cgroup files share: pure functions
// over text, never throwing.

#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace rdtmon {

// Surrounding blanks (space, tab, newline, carriage return) removed.
std::string trimmed(std::string_view s);
// The fields of a line split on spaces, empty fields dropped.
std::vector<std::string_view> splitSpaces(std::string_view line);
// A mountinfo field's octal escapes (\040 for a space) undone.
std::string unescapeMountField(std::string_view s);
// One id per line (a resctrl tasks file, cgroup.threads, cgroup.procs); malformed lines
// are skipped.
std::vector<pid_t> parseTaskList(std::string_view text);

} // namespace rdtmon
