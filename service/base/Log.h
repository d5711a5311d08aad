#pragma once

#include <string>
#include <string_view>

namespace rdtmon::log {

// Lines go to stderr with sd-daemon priority prefixes (<3> error, <4> warning, <5> notice, <6>
// info, <7> debug), which journald turns into priorities. A line about a container names its id.
void error(std::string_view msg);
void warning(std::string_view msg);
void notice(std::string_view msg);
void info(std::string_view msg);
void debug(std::string_view msg);

// "container <id>: " prefix, for lines about one container.
std::string forContainer(std::string_view id, std::string_view msg);

} // namespace rdtmon::log
