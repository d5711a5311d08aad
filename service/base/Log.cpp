#include "Log.h"

#include <cstdio>
#include <string>

namespace rdtmon::log {
namespace {
void emit(const char* prefix, std::string_view msg) {
    std::string line;
    line.reserve(msg.size() + 5);
    line += prefix;
    for (char c : msg) {
        // One event per line: a newline inside a message would split it in the journal.
        line += (c == '\n') ? ' ' : c;
    }
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
}
} // namespace

void error(std::string_view msg) {
    emit("<3>", msg);
}
void warning(std::string_view msg) {
    emit("<4>", msg);
}
void notice(std::string_view msg) {
    emit("<5>", msg);
}
void info(std::string_view msg) {
    emit("<6>", msg);
}
void debug(std::string_view msg) {
    emit("<7>", msg);
}

std::string forContainer(std::string_view id, std::string_view msg) {
    std::string s = "container ";
    s += id;
    s += ": ";
    s += msg;
    return s;
}

} // namespace rdtmon::log
