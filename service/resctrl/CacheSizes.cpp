#include "CacheSizes.h"

#include "FileIo.h"
#include "Text.h"

#include <charconv>
#include <fcntl.h>

namespace rdtmon {

namespace {

std::optional<uint64_t> parseUnsigned(std::string_view s) {
    uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
        return std::nullopt;
    }
    return v;
}

bool isCpuName(const std::string& name) {
    return name.size() > 3 && name.compare(0, 3, "cpu") == 0 &&
           parseUnsigned(std::string_view(name).substr(3)).has_value();
}

std::optional<uint64_t> readNumberAt(int dirfd, const std::string& name) {
    const ReadResult r = readFileAt(dirfd, name);
    if (r.err != 0) {
        return std::nullopt;
    }
    return parseUnsigned(trimmed(r.text));
}

} // namespace

std::optional<uint64_t> parseCacheSize(std::string_view text) {
    const std::string t = trimmed(text);
    if (t.empty()) {
        return std::nullopt;
    }
    uint64_t unit = 1;
    std::string_view digits = t;
    switch (t.back()) {
    case 'K':
        unit = uint64_t{1} << 10;
        break;
    case 'M':
        unit = uint64_t{1} << 20;
        break;
    case 'G':
        unit = uint64_t{1} << 30;
        break;
    default:
        break;
    }
    if (unit != 1) {
        digits.remove_suffix(1);
    }
    const std::optional<uint64_t> v = parseUnsigned(digits);
    if (!v || *v > UINT64_MAX / unit) {
        return std::nullopt;
    }
    return *v * unit;
}

std::map<uint32_t, uint64_t> readL3CacheSizes(int cpuDirFd) {
    std::map<uint32_t, uint64_t> out;
    forEachEntry(cpuDirFd, [&](const std::string& cpu, unsigned char) {
        if (!isCpuName(cpu)) {
            return;
        }
        const OpenResult cache = openBeneath(cpuDirFd, cpu + "/cache", O_RDONLY | O_DIRECTORY);
        if (cache.err != 0) {
            return;
        }
        forEachEntry(cache.fd.get(), [&](const std::string& index, unsigned char) {
            if (index.rfind("index", 0) != 0) {
                return;
            }
            const OpenResult dir = openDirComponent(cache.fd.get(), index);
            if (dir.err != 0 || readNumberAt(dir.fd.get(), "level") != 3u) {
                return;
            }
            const std::optional<uint64_t> id = readNumberAt(dir.fd.get(), "id");
            if (!id || *id > UINT32_MAX || out.count(static_cast<uint32_t>(*id)) != 0) {
                return; // every CPU sharing the cache has the same files
            }
            const ReadResult size = readFileAt(dir.fd.get(), "size");
            if (size.err != 0) {
                return;
            }
            if (const std::optional<uint64_t> bytes = parseCacheSize(size.text)) {
                out[static_cast<uint32_t>(*id)] = *bytes;
            }
        });
    });
    return out;
}

} // namespace rdtmon
