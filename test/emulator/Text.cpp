// resctrl-emu: small text helpers (see Text.h).
#include "Text.h"

#include <cerrno>
#include <cstdlib>
#include <sstream>

namespace rdtmon::emu {

std::optional<long> parseNumber(const std::string& s, int base) {
    if (s.empty()) {
        return std::nullopt;
    }
    errno = 0;
    char* end = nullptr;
    long v = std::strtol(s.c_str(), &end, base);
    if (errno != 0 || end == s.c_str() || *end != '\0') {
        return std::nullopt;
    }
    return v;
}

std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t\r\n\v\f");
    if (b == std::string::npos) {
        return {};
    }
    size_t e = s.find_last_not_of(" \t\r\n\v\f");
    return s.substr(b, e - b + 1);
}

std::vector<std::string> splitWords(const std::string& s) {
    std::istringstream in(s);
    std::vector<std::string> out;
    std::string w;
    while (in >> w) {
        out.push_back(w);
    }
    return out;
}

} // namespace rdtmon::emu
