#pragma once

// rdtmonctl's exit codes (rdtmonctl(1), EXIT STATUS).

namespace rdtmon::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;        // any other failure
inline constexpr int kExitUsage = 2;        // a bad command line
inline constexpr int kExitNotRunning = 3;   // no system bus, or rdtmond is not on it
inline constexpr int kExitUnsupported = 4;  // resctrl monitoring is not supported
inline constexpr int kExitAccessDenied = 5; // a root-only command run as another user
inline constexpr int kExitNoSuchGroup = 6;  // counters ID: rdtmond owns no such group
inline constexpr int kExitChecksFailed = 7; // selftest: a check failed, or the run was cut short

} // namespace rdtmon::ctl
