#pragma once

// rdtmonctl selftest's load check, the part before the load: how big a buffer and how many
// passes over it (docs/selftest.md#the-load-check), whether the node has the memory, and
// which CPUs share one L3 cache. Standard library only: no bus, no resctrl.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rdtmon::ctl::selftest {

inline constexpr uint64_t kMiB = uint64_t{1} << 20;
inline constexpr uint64_t kGiB = uint64_t{1} << 30;

// A pass must miss the cache: even a replacement policy that keeps a whole cache of the
// stream resident serves at most a quarter of a pass from it.
inline constexpr uint64_t kCacheMultiple = 4;
// Floor for small caches, so that the bytes moved dwarf the process's other traffic.
inline constexpr uint64_t kMinBufferBytes = 256 * kMiB;
// Refuse rather than take more of a production node's memory.
inline constexpr uint64_t kMaxBufferBytes = 2 * kGiB;
// What the passes add up to at least: MBM's rounding is then negligible.
inline constexpr uint64_t kTargetBytes = 2 * kGiB;
// Left to the node beyond the buffer: MemAvailable is an estimate.
inline constexpr uint64_t kMemoryMarginBytes = 512 * kMiB;
// A limit for streamRead: the plan takes about a second at a few GB/s, this is a slow node.
inline constexpr double kMaxLoadSeconds = 10.0;

// MemAvailable from /proc/meminfo's text, in bytes; nullopt when the line is missing or
// not "<number> kB".
std::optional<uint64_t> memAvailableBytes(std::string_view meminfoText);

struct LoadPlan {
    uint64_t bufferBytes = 0; // a multiple of 2 MiB (whole huge pages)
    uint32_t passes = 0;      // at most: streamRead may stop early
    std::string refusal;      // non-empty: the load cannot run here, says why with figures
};

// The buffer and passes for a domain whose L3 holds l3Bytes, on a node with memAvailable
// bytes available (memAvailableBytes()).
LoadPlan planLoad(uint64_t l3Bytes, uint64_t memAvailable);

// The online CPUs whose level-3 cache has this id (sysCpuDir is normally
// /sys/devices/system/cpu), ascending; empty when none (or the directory is unreadable).
std::vector<int> cpusOfL3Domain(const std::string& sysCpuDir, unsigned domainId);

// The size of the L3 cache with this id, from the first online CPU that has it (its
// cache/indexM/size, "32768K"); nullopt when no CPU has it or the size is unreadable.
std::optional<uint64_t> l3BytesOfDomain(const std::string& sysCpuDir, unsigned domainId);

// resctrl's directory name, and rdtmon's domain key, for an L3 cache id: mon_L3_01.
std::string domainKey(unsigned domainId);

// 256.0 MiB, 2.00 GiB, 640 KiB (figures in verdicts and refusals).
std::string bytesText(uint64_t bytes);

} // namespace rdtmon::ctl::selftest
