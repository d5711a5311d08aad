#include "ResctrlParsers.h"

#include <cctype>
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

std::optional<double> parseDecimalValue(std::string_view text) {
    const std::string t = trimmed(text);
    const std::size_t dot = t.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == t.size() || t.size() > 64) {
        return std::nullopt;
    }
    for (std::size_t i = 0; i < t.size(); ++i) {
        if (i != dot && !std::isdigit(static_cast<unsigned char>(t[i]))) {
            return std::nullopt; // a sign, an exponent, a second point, a word
        }
    }
    double v = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc() || p != t.data() + t.size()) {
        return std::nullopt;
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

namespace {

// The lines of text without their '\n' (a last line without one included), empty ones
// dropped.
std::vector<std::string_view> lines(std::string_view text) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < text.size()) {
        std::size_t nl = text.find('\n', i);
        if (nl == std::string_view::npos) {
            nl = text.size();
        }
        if (nl > i) {
            out.push_back(text.substr(i, nl - i));
        }
        i = nl + 1;
    }
    return out;
}

bool isWord(std::string_view w) {
    if (w.empty() || w.size() > 64) {
        return false;
    }
    for (char c : w) {
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) {
            return false;
        }
    }
    return true;
}

std::optional<unsigned> parseUnsigned(std::string_view t) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v, 10);
    if (t.empty() || ec != std::errc() || p != t.data() + t.size()) {
        return std::nullopt;
    }
    return v;
}

// "0=x;1=y": each domain once, value through parse.
template <class V, class Parse>
std::optional<std::map<unsigned, V>> parseDomainList(std::string_view text, Parse parse) {
    std::map<unsigned, V> out;
    std::size_t i = 0;
    while (i <= text.size()) {
        std::size_t semi = text.find(';', i);
        if (semi == std::string_view::npos) {
            semi = text.size();
        }
        const std::string_view item = text.substr(i, semi - i);
        const std::size_t eq = item.find('=');
        if (eq == std::string_view::npos) {
            return std::nullopt;
        }
        const std::optional<unsigned> dom = parseUnsigned(item.substr(0, eq));
        const std::optional<V> v = parse(item.substr(eq + 1));
        if (!dom || !v || !out.emplace(*dom, *v).second) {
            return std::nullopt;
        }
        i = semi + 1;
    }
    return out;
}

} // namespace

std::optional<AssignModes> parseAssignModes(std::string_view text) {
    AssignModes m;
    for (std::string_view line : lines(text)) {
        std::string name = trimmed(line);
        const bool active = name.size() > 2 && name.front() == '[' && name.back() == ']';
        if (active) {
            name = name.substr(1, name.size() - 2);
            if (!m.active.empty()) {
                return std::nullopt;
            }
            m.active = name;
        }
        if (!isWord(name)) {
            return std::nullopt;
        }
        m.listed.push_back(name);
    }
    if (m.active.empty()) {
        return std::nullopt;
    }
    return m;
}

std::optional<std::map<unsigned, unsigned>> parseDomainCounts(std::string_view text) {
    const std::vector<std::string_view> ls = lines(text);
    if (ls.size() != 1) {
        return std::nullopt;
    }
    return parseDomainList<unsigned>(trimmed(ls[0]), parseUnsigned);
}

std::optional<Assignments> parseAssignments(std::string_view text) {
    Assignments out;
    for (std::string_view line : lines(text)) {
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos || !isWord(line.substr(0, colon))) {
            return std::nullopt;
        }
        auto states = parseDomainList<bool>(line.substr(colon + 1),
                                            [](std::string_view s) -> std::optional<bool> {
                                                if (s == "e") {
                                                    return true;
                                                }
                                                if (s == "_") {
                                                    return false;
                                                }
                                                return std::nullopt;
                                            });
        if (!states || !out.emplace(std::string(line.substr(0, colon)), *states).second) {
            return std::nullopt;
        }
    }
    return out;
}

} // namespace rdtmon
