#include "Labels.h"

#include "Errors.h"

#include <cstdint>

namespace rdtmon {
namespace {

// A key for an error message: printable ASCII as it is, other bytes as \xNN, cut after 80.
std::string shown(std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out = "\"";
    std::size_t n = 0;
    for (char ch : s) {
        if (++n > 80) {
            out += "...";
            break;
        }
        auto c = static_cast<unsigned char>(ch);
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            out += ch;
        } else {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0xf];
        }
    }
    return out + "\"";
}

bool isKeyChar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

bool isControl(std::uint32_t cp) {
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

} // namespace

bool isValidLabelKey(std::string_view key) {
    if (key.empty() || key.size() > kMaxLabelKeyLength) {
        return false;
    }
    for (char c : key) {
        if (!isKeyChar(c)) {
            return false;
        }
    }
    return true;
}

std::string labelValueProblem(std::string_view value) {
    if (value.size() > kMaxLabelValueBytes) {
        return "is " + std::to_string(value.size()) + " bytes long (at most " +
               std::to_string(kMaxLabelValueBytes) + " allowed)";
    }
    const auto* p = reinterpret_cast<const unsigned char*>(value.data());
    const std::size_t n = value.size();
    for (std::size_t i = 0; i < n;) {
        const std::size_t at = i;
        const unsigned char b = p[i];
        std::uint32_t cp = 0;
        std::size_t len = 0;
        std::uint32_t min = 0;
        if (b < 0x80) {
            cp = b;
            len = 1;
        } else if (b >= 0xc2 && b <= 0xdf) {
            cp = b & 0x1fu;
            len = 2;
            min = 0x80;
        } else if (b >= 0xe0 && b <= 0xef) {
            cp = b & 0x0fu;
            len = 3;
            min = 0x800;
        } else if (b >= 0xf0 && b <= 0xf4) {
            cp = b & 0x07u;
            len = 4;
            min = 0x10000;
        } else {
            return "is not valid UTF-8 (byte " + std::to_string(at) + ")";
        }
        if (n - i < len) {
            return "is not valid UTF-8 (truncated sequence at byte " + std::to_string(at) + ")";
        }
        for (std::size_t k = 1; k < len; ++k) {
            if ((p[i + k] & 0xc0u) != 0x80u) {
                return "is not valid UTF-8 (byte " + std::to_string(i + k) + ")";
            }
            cp = (cp << 6) | (p[i + k] & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return "is not valid UTF-8 (overlong, surrogate or out-of-range sequence at byte " +
                   std::to_string(at) + ")";
        }
        if (isControl(cp)) {
            return "contains a control character at byte " + std::to_string(at);
        }
        i += len;
    }
    return {};
}

void validateLabels(const Labels& labels) {
    if (labels.size() > kMaxLabels) {
        throw Error(ErrorKind::InvalidArgument,
                    "too many labels: " + std::to_string(labels.size()) + " (at most " +
                        std::to_string(kMaxLabels) + " allowed)");
    }
    for (const auto& [key, value] : labels) {
        if (!isValidLabelKey(key)) {
            throw Error(ErrorKind::InvalidArgument,
                        "invalid label key " + shown(key) + " (a key is 1.." +
                            std::to_string(kMaxLabelKeyLength) + " characters of [a-z0-9_])");
        }
        std::string problem = labelValueProblem(value);
        if (!problem.empty()) {
            throw Error(ErrorKind::InvalidArgument, "the value of label " + key + " " + problem);
        }
    }
}

} // namespace rdtmon
