#pragma once

// The size of each L3 cache, by the id resctrl names its L3 domains with (mon_L3_XX: XX is
// the cache's id, with or without SNC). resctrl itself has no such file for monitoring; the
// kernel's cacheinfo in sysfs has it (Documentation/ABI/testing/sysfs-devices-system-cpu):
// cpuN/cache/indexM/{level,id,size}, size in KiB with a "K" suffix.

#include <cstdint>
#include <map>
#include <optional>
#include <string_view>

namespace rdtmon {

// L3 cache id -> size in bytes, from the sysfs directory of the CPUs
// (/sys/devices/system/cpu). A CPU whose cache files cannot be read or parsed is skipped
// (offline CPUs have no cache/ directory); nothing readable gives an empty map.
std::map<uint32_t, uint64_t> readL3CacheSizes(int cpuDirFd);

// "32768K" (cacheinfo's format) -> 33554432 bytes; also a plain byte count, "M" and "G".
// nullopt for anything else.
std::optional<uint64_t> parseCacheSize(std::string_view text);

} // namespace rdtmon
