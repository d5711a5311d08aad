#include "ProcStat.h"

#include <charconv>
#include <vector>

namespace rdtmon {

std::optional<ProcStat> parseProcStat(std::string_view text) {
    const std::size_t open = text.find('(');
    const std::size_t close = text.rfind(')');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
        return std::nullopt;
    }
    ProcStat st;
    st.comm = std::string(text.substr(open + 1, close - open - 1));
    // After ") ": state ppid pgrp session tty_nr tpgid flags ... starttime (the 20th).
    std::vector<std::string_view> f;
    std::size_t i = close + 1;
    while (i < text.size() && f.size() < 20) {
        while (i < text.size() && (text[i] == ' ' || text[i] == '\n')) {
            ++i;
        }
        std::size_t b = i;
        while (i < text.size() && text[i] != ' ' && text[i] != '\n') {
            ++i;
        }
        if (i > b) {
            f.push_back(text.substr(b, i - b));
        }
    }
    if (f.size() < 7 || f[0].size() != 1) {
        return std::nullopt;
    }
    st.state = f[0][0];
    auto num = [](std::string_view s, auto& out) {
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
        return ec == std::errc() && p == s.data() + s.size();
    };
    if (!num(f[1], st.ppid) || !num(f[6], st.flags)) {
        return std::nullopt;
    }
    if (f.size() >= 20 && !num(f[19], st.startTime)) {
        return std::nullopt;
    }
    return st;
}

} // namespace rdtmon
