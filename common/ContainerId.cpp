#include "ContainerId.h"

#include "Errors.h"
#include "ResctrlNames.h"

#include <string>

namespace rdtmon {
namespace {

constexpr std::size_t kMaxIdLength = 128;

bool isIdChar(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

// Printable rendering of an id for an error message: control bytes and anything
// outside printable ASCII become \xNN, and a long id is cut.
std::string quoted(std::string_view id) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string s = "\"";
    std::size_t n = 0;
    for (char ch : id) {
        if (++n > kMaxIdLength + 8) {
            s += "...";
            break;
        }
        auto c = static_cast<unsigned char>(ch);
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            s += ch;
        } else {
            s += "\\x";
            s += hex[c >> 4];
            s += hex[c & 0xf];
        }
    }
    s += '"';
    return s;
}

// Empty when valid, else what is wrong.
std::string problem(std::string_view id) {
    if (id.empty()) {
        return "is empty";
    }
    if (id.size() > kMaxIdLength) {
        return "is " + std::to_string(id.size()) + " characters long (at most " +
               std::to_string(kMaxIdLength) + " allowed)";
    }
    for (std::size_t i = 0; i < id.size(); ++i) {
        if (!isIdChar(id[i])) {
            return "contains a character not in [A-Za-z0-9_.-] at position " + std::to_string(i);
        }
    }
    if (id == "." || id == "..") {
        return "is a relative directory name";
    }
    if (isReservedResctrlName(id)) {
        return "is a name reserved by resctrl";
    }
    return {};
}

} // namespace

bool isValidContainerId(std::string_view id) {
    return problem(id).empty();
}

bool isSelftestId(std::string_view id) {
    return id.substr(0, kSelftestIdPrefix.size()) == kSelftestIdPrefix && isValidContainerId(id);
}

void validateContainerId(std::string_view id) {
    std::string p = problem(id);
    if (!p.empty()) {
        throw Error(ErrorKind::InvalidArgument,
                    "invalid container id " + quoted(id) + ": " + p +
                        " (an id is 1..128 characters of [A-Za-z0-9_.-], not . or .., and not "
                        "info, mon_groups or mon_data)");
    }
}

} // namespace rdtmon
