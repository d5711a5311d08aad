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

// The value after `key` on the first line of /proc/PID/resctrl that starts with it, trimmed.
std::optional<std::string> procResctrlField(std::string_view text, std::string_view key) {
    std::size_t i = 0;
    while (i < text.size()) {
        std::size_t nl = text.find('\n', i);
        if (nl == std::string_view::npos) {
            nl = text.size();
        }
        std::string_view line = text.substr(i, nl - i);
        if (line.substr(0, key.size()) == key) {
            return trimmed(line.substr(key.size()));
        }
        i = nl + 1;
    }
    return std::nullopt;
}

// The kernel names one directory on each line; anything else (a nested path, "..", a NUL)
// is not trusted as a group name (a fuzzer finding for res:).
bool isOneDirectoryName(const std::string& v) {
    return v.find('/') == std::string::npos && v.find('\0') == std::string::npos && v != "." &&
           v != "..";
}

} // namespace

// fs/resctrl/rdtgroup.c, proc_resctrl_show: "res:/" for the default group, "res:NAME" (some
// readers print "res:/NAME") for another; "mon:NAME" for a MON group, "mon:" for none.
std::optional<std::string> parseProcResctrl(std::string_view text) {
    std::optional<std::string> v = procResctrlField(text, "res:");
    if (!v) {
        return std::nullopt;
    }
    while (!v->empty() && v->front() == '/') {
        v->erase(v->begin());
    }
    while (!v->empty() && v->back() == '/') {
        v->pop_back();
    }
    return isOneDirectoryName(*v) ? v : std::nullopt;
}

std::optional<std::string> parseProcResctrlMon(std::string_view text) {
    std::optional<std::string> v = procResctrlField(text, "mon:");
    return v && isOneDirectoryName(*v) ? v : std::nullopt;
}

} // namespace rdtmon
