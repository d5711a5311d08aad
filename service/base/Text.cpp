#include "Text.h"

#include <charconv>

namespace rdtmon {

std::string trimmed(std::string_view s) {
    std::size_t b = 0;
    std::size_t e = s.size();
    while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\n' || s[b] == '\r')) {
        ++b;
    }
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\n' || s[e - 1] == '\r')) {
        --e;
    }
    return std::string(s.substr(b, e - b));
}

std::string unescapeMountField(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' &&
            s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
            int v = (s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0');
            out += static_cast<char>(v);
            i += 3;
        } else {
            out += s[i];
        }
    }
    return out;
}

std::vector<std::string_view> splitSpaces(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && line[i] == ' ') {
            ++i;
        }
        std::size_t b = i;
        while (i < line.size() && line[i] != ' ') {
            ++i;
        }
        if (i > b) {
            out.push_back(line.substr(b, i - b));
        }
    }
    return out;
}

std::vector<pid_t> parseTaskList(std::string_view text) {
    std::vector<pid_t> out;
    std::size_t i = 0;
    while (i <= text.size()) {
        std::size_t nl = text.find('\n', i);
        if (nl == std::string_view::npos) {
            nl = text.size();
        }
        std::string line = trimmed(text.substr(i, nl - i));
        if (!line.empty()) {
            pid_t v = 0;
            auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), v, 10);
            if (ec == std::errc() && p == line.data() + line.size() && v > 0) {
                out.push_back(v);
            }
        }
        i = nl + 1;
    }
    return out;
}

} // namespace rdtmon
