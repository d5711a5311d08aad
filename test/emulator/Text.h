#pragma once
// resctrl-emu: small text helpers shared by the model, the /proc reader, the control
// protocol and the command line.

#include <optional>
#include <string>
#include <vector>

namespace rdtmon::emu {

// The whole of s as a number in `base` (0: C prefixes), nullopt for anything else.
std::optional<long> parseNumber(const std::string& s, int base = 10);
// s without leading and trailing whitespace.
std::string trim(const std::string& s);
// The whitespace-separated words of s.
std::vector<std::string> splitWords(const std::string& s);

} // namespace rdtmon::emu
