#include "Units.h"

#include <array>
#include <cstdio>
#include <ctime>

namespace rdtmon::ctl {

std::string humanBytes(std::optional<uint64_t> bytes) {
    if (!bytes) {
        return "-";
    }
    if (*bytes < 1024) {
        return std::to_string(*bytes) + " B";
    }
    static constexpr std::array<const char*, 4> kUnits = {"KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(*bytes) / 1024;
    std::size_t unit = 0;
    while (v >= 1024 && unit + 1 < kUnits.size()) {
        v /= 1024;
        ++unit;
    }
    std::array<char, 32> buf{};
    std::snprintf(buf.data(), buf.size(), "%.1f %s", v, kUnits[unit]);
    return buf.data();
}

std::string megabytesPerSecond(std::optional<double> bytesPerSecond) {
    if (!bytesPerSecond) {
        return "-";
    }
    std::array<char, 48> buf{};
    std::snprintf(buf.data(), buf.size(), "%.1f", *bytesPerSecond / 1e6);
    return buf.data();
}

std::string watts(std::optional<double> watts) {
    if (!watts) {
        return "-";
    }
    std::array<char, 48> buf{};
    std::snprintf(buf.data(), buf.size(), "%.1f", *watts);
    return buf.data();
}

std::string utcTime(uint64_t usec) {
    const std::time_t t = static_cast<std::time_t>(usec / 1'000'000);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    std::array<char, 32> buf{};
    std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf.data();
}

} // namespace rdtmon::ctl
