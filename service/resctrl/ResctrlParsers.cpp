#include "ResctrlParsers.h"

#include <charconv>

namespace rdtmon {

std::optional<uint64_t> parseCounterValue(std::string_view text) {
    std::string t = trimmed(text);
    if (t.empty()) {
        return std::nullopt;
    }
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v, 10);
    if (ec != std::errc() || p != t.data() + t.size()) {
        return std::nullopt; // Unavailable, Error, Unassigned, garbage, overflow
    }
    return v;
}

namespace {

// The value after `key` on the first line that starts with it, untrimmed (the kernel
// prints names as they are; a blank in one is not ours to drop).
std::optional<std::string_view> lineValue(std::string_view text, std::string_view key) {
    std::size_t i = 0;
    while (i < text.size()) {
        std::size_t nl = text.find('\n', i);
        if (nl == std::string_view::npos) {
            nl = text.size();
        }
        std::string_view line = text.substr(i, nl - i);
        if (line.substr(0, key.size()) == key) {
            return line.substr(key.size());
        }
        i = nl + 1;
    }
    return std::nullopt;
}

// The kernel names one directory on each line; anything else (a nested path, "..", a NUL)
// is not trusted as a group name (a fuzzer finding for res:).
bool isOneDirectoryName(std::string_view v) {
    return !v.empty() && v.find('/') == std::string_view::npos &&
           v.find('\0') == std::string_view::npos && v != "." && v != "..";
}

} // namespace

std::optional<TaskGroups> parseCpuResctrlGroups(std::string_view text) {
    const std::optional<std::string_view> res = lineValue(text, "res:");
    const std::optional<std::string_view> mon = lineValue(text, "mon:");
    if (!res || !mon) {
        return std::nullopt;
    }
    TaskGroups g;
    if (*res != "/") {
        // "res:" alone is what an unmounted resctrl shows: no group to name.
        if (!isOneDirectoryName(*res)) {
            return std::nullopt;
        }
        g.ctrl = std::string(*res);
    }
    if (!mon->empty()) {
        if (!isOneDirectoryName(*mon)) {
            return std::nullopt;
        }
        g.mon = std::string(*mon);
    }
    return g;
}

} // namespace rdtmon
