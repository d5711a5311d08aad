#pragma once

// Numbers as rdtmonctl shows them to people: bytes in binary units, bandwidth in MB/s
// (10^6 bytes per second, as pqos and most memory benchmarks give it), "-" for nothing.

#include <cstdint>
#include <optional>
#include <string>

namespace rdtmon::ctl {

// 512 B, 12.0 KiB, 3.4 MiB, 1.2 GiB; "-" when absent.
std::string humanBytes(std::optional<uint64_t> bytes);
// 1234.5 (MB/s, one decimal); "-" when absent.
std::string megabytesPerSecond(std::optional<double> bytesPerSecond);
// Watts with one decimal ("12.3"); "-" when absent.
std::string watts(std::optional<double> watts);
// An ISO 8601 UTC time of CLOCK_REALTIME microseconds: 2026-12-01T18:09:32Z.
std::string utcTime(uint64_t usec);

} // namespace rdtmon::ctl
