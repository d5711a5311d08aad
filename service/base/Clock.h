#pragma once

#include <cstdint>
#include <ctime>

namespace rdtmon {

// CLOCK_REALTIME in microseconds: group creation times and state-file names.
inline uint64_t realtimeUsec() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

// CLOCK_MONOTONIC in microseconds: the time stamp of a bulk counter read, for rates.
inline uint64_t monotonicUsec() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

} // namespace rdtmon
