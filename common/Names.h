#pragma once

// The names of the D-Bus contract that rdtmond serves and rdtmon-hook calls: one definition,
// so the two cannot drift apart. The interface XML in dbus/ is the contract's other half.

namespace rdtmon {

inline constexpr const char* kBusName = "org.rdtmon1";
inline constexpr const char* kManagerPath = "/org/rdtmon1";
// A group's object path is this prefix plus the container id escaped with sd_bus_path_encode.
inline constexpr const char* kGroupPathPrefix = "/org/rdtmon1/group";
inline constexpr const char* kManagerInterface = "org.rdtmon1.Manager";
inline constexpr const char* kGroupInterface = "org.rdtmon1.Group";

} // namespace rdtmon
