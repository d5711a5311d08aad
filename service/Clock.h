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

} // namespace rdtmon
