#include "LoadPlan.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace rdtmon::ctl::selftest {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kHugePage = 2 * kMiB;

std::string_view trim(std::string_view s) {
    const auto first = s.find_first_not_of(" \t\n");
    if (first == std::string_view::npos) {
        return {};
    }
    const auto last = s.find_last_not_of(" \t\n");
    return s.substr(first, last - first + 1);
}

std::optional<uint64_t> parseUnsigned(std::string_view s) {
    uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || s.empty()) {
        return std::nullopt;
    }
    return v;
}

std::optional<std::string> readTrimmed(const fs::path& path) {
    std::ifstream in(path);
    if (!in) {
        return std::nullopt;
    }
    std::ostringstream text;
    text << in.rdbuf();
    return std::string(trim(text.str()));
}

struct L3Cpu {
    int cpu;
    fs::path indexDir; // cpuN/cache/indexM of its level-3 cache
};

// Each online CPU's level-3 cache whose id is domainId.
std::vector<L3Cpu> l3Cpus(const std::string& sysCpuDir, unsigned domainId) {
    std::vector<L3Cpu> out;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(sysCpuDir, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.size() <= 3 || name.compare(0, 3, "cpu") != 0) {
            continue;
        }
        const auto number = parseUnsigned(std::string_view(name).substr(3));
        if (!number || *number > 1'000'000) {
            continue; // cpufreq, cpuidle, ...
        }
        // cpu0 often has no online file: it cannot be taken offline.
        if (readTrimmed(entry.path() / "online") == "0") {
            continue;
        }
        std::error_code cacheEc;
        for (const auto& index : fs::directory_iterator(entry.path() / "cache", cacheEc)) {
            if (index.path().filename().string().rfind("index", 0) != 0 ||
                readTrimmed(index.path() / "level") != "3") {
                continue;
            }
            const auto id = readTrimmed(index.path() / "id");
            if (id && parseUnsigned(*id) == domainId) {
                out.push_back({static_cast<int>(*number), index.path()});
            }
            break; // one L3 per CPU
        }
    }
    std::sort(out.begin(), out.end(), [](const L3Cpu& a, const L3Cpu& b) { return a.cpu < b.cpu; });
    return out;
}

} // namespace

std::optional<uint64_t> memAvailableBytes(std::string_view meminfoText) {
    constexpr std::string_view kKey = "MemAvailable:";
    std::size_t pos = 0;
    while (pos < meminfoText.size()) {
        auto end = meminfoText.find('\n', pos);
        if (end == std::string_view::npos) {
            end = meminfoText.size();
        }
        std::string_view line = meminfoText.substr(pos, end - pos);
        pos = end + 1;
        if (line.substr(0, kKey.size()) != kKey) {
            continue;
        }
        line = trim(line.substr(kKey.size()));
        const auto space = line.find_first_of(" \t");
        if (space == std::string_view::npos || trim(line.substr(space)) != "kB") {
            return std::nullopt;
        }
        const auto kb = parseUnsigned(line.substr(0, space));
        if (!kb || *kb > UINT64_MAX / 1024) {
            return std::nullopt;
        }
        return *kb * 1024;
    }
    return std::nullopt;
}

LoadPlan planLoad(uint64_t l3Bytes, uint64_t memAvailable) {
    LoadPlan plan;
    if (l3Bytes == 0) {
        plan.refusal = "the L3 cache's size is unknown, and the buffer must be ";
        plan.refusal += std::to_string(kCacheMultiple);
        plan.refusal += " times it";
        return plan;
    }
    if (l3Bytes > kMaxBufferBytes / kCacheMultiple) {
        plan.refusal = "a buffer ";
        plan.refusal += std::to_string(kCacheMultiple);
        plan.refusal += " times the ";
        plan.refusal += bytesText(l3Bytes);
        plan.refusal += " L3 cache would exceed the ";
        plan.refusal += bytesText(kMaxBufferBytes);
        plan.refusal += " cap";
        return plan;
    }
    const uint64_t wanted = std::max(kMinBufferBytes, l3Bytes * kCacheMultiple);
    // Whole huge pages; the cap is a multiple of them, so rounding cannot pass it.
    plan.bufferBytes = (wanted + kHugePage - 1) / kHugePage * kHugePage;
    plan.passes = static_cast<uint32_t>((kTargetBytes + plan.bufferBytes - 1) / plan.bufferBytes);
    const uint64_t needed = plan.bufferBytes + kMemoryMarginBytes;
    if (memAvailable < needed) {
        plan.refusal = "the load needs ";
        plan.refusal += bytesText(needed);
        plan.refusal += " of available memory (a ";
        plan.refusal += bytesText(plan.bufferBytes);
        plan.refusal += " buffer, ";
        plan.refusal += std::to_string(kCacheMultiple);
        plan.refusal += " times the ";
        plan.refusal += bytesText(l3Bytes);
        plan.refusal += " L3 cache or at least ";
        plan.refusal += bytesText(kMinBufferBytes);
        plan.refusal += ", and ";
        plan.refusal += bytesText(kMemoryMarginBytes);
        plan.refusal += " left to the node) but MemAvailable is ";
        plan.refusal += bytesText(memAvailable);
    }
    return plan;
}

std::vector<int> cpusOfL3Domain(const std::string& sysCpuDir, unsigned domainId) {
    std::vector<int> cpus;
    for (const L3Cpu& c : l3Cpus(sysCpuDir, domainId)) {
        cpus.push_back(c.cpu);
    }
    return cpus;
}

std::optional<uint64_t> l3BytesOfDomain(const std::string& sysCpuDir, unsigned domainId) {
    const auto cpus = l3Cpus(sysCpuDir, domainId);
    if (cpus.empty()) {
        return std::nullopt;
    }
    const auto size = readTrimmed(cpus.front().indexDir / "size");
    if (!size || size->empty()) {
        return std::nullopt;
    }
    std::string_view digits = *size;
    uint64_t unit = 1;
    switch (digits.back()) {
    case 'K':
        unit = uint64_t{1} << 10;
        break;
    case 'M':
        unit = kMiB;
        break;
    case 'G':
        unit = kGiB;
        break;
    default:
        break;
    }
    if (unit != 1) {
        digits.remove_suffix(1);
    }
    const auto n = parseUnsigned(digits);
    if (!n || *n == 0 || *n > UINT64_MAX / unit) {
        return std::nullopt;
    }
    return *n * unit;
}

std::string domainKey(unsigned domainId) {
    std::array<char, 32> buf{};
    std::snprintf(buf.data(), buf.size(), "mon_L3_%02u", domainId);
    return buf.data();
}

std::string bytesText(uint64_t bytes) {
    std::array<char, 48> buf{};
    const auto v = static_cast<double>(bytes);
    if (bytes >= kGiB) {
        std::snprintf(buf.data(), buf.size(), "%.2f GiB", v / static_cast<double>(kGiB));
    } else if (bytes >= kMiB) {
        std::snprintf(buf.data(), buf.size(), "%.1f MiB", v / static_cast<double>(kMiB));
    } else if (bytes >= 1024) {
        std::snprintf(buf.data(), buf.size(), "%.0f KiB", v / 1024);
    } else {
        std::snprintf(buf.data(), buf.size(), "%llu B", static_cast<unsigned long long>(bytes));
    }
    return buf.data();
}

} // namespace rdtmon::ctl::selftest
