#include "ListenAddress.h"

#include <arpa/inet.h>
#include <charconv>
#include <cstring>
#include <stdexcept>

namespace rdtmon::exporter {

namespace {

unsigned parsePort(const std::string& text, const std::string& whole) {
    unsigned port = 0;
    const char* end = text.data() + text.size();
    auto [p, ec] = std::from_chars(text.data(), end, port);
    if (text.empty() || ec != std::errc() || p != end || port > 65535) {
        throw std::invalid_argument("bad port in listen address '" + whole +
                                    "': want a number 0..65535");
    }
    return port;
}

} // namespace

unsigned ListenAddress::port() const {
    if (addr.ss_family == AF_INET) {
        return ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
    }
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
}

ListenAddress parseListenAddress(const std::string& text) {
    ListenAddress out;
    if (!text.empty() && text.front() == '[') {
        const std::size_t close = text.find(']');
        if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            throw std::invalid_argument("bad listen address '" + text +
                                        "': want [IPV6]:PORT, e.g. [::1]:10036");
        }
        const std::string host = text.substr(1, close - 1);
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out.addr);
        if (inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr) != 1) {
            throw std::invalid_argument("bad IPv6 address '" + host + "' in listen address '" +
                                        text + "'");
        }
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(static_cast<uint16_t>(parsePort(text.substr(close + 2), text)));
        out.len = sizeof(sockaddr_in6);
        return out;
    }
    const std::size_t colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) {
        throw std::invalid_argument("bad listen address '" + text +
                                    "': want IPV4:PORT or [IPV6]:PORT, e.g. 127.0.0.1:10036");
    }
    const std::string host = text.substr(0, colon);
    auto* sin = reinterpret_cast<sockaddr_in*>(&out.addr);
    if (inet_pton(AF_INET, host.c_str(), &sin->sin_addr) != 1) {
        throw std::invalid_argument("bad IPv4 address '" + host + "' in listen address '" + text +
                                    "' (names are not resolved)");
    }
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<uint16_t>(parsePort(text.substr(colon + 1), text)));
    out.len = sizeof(sockaddr_in);
    return out;
}

std::string formatListenAddress(const sockaddr* addr) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (addr->sa_family == AF_INET) {
        const auto* sin = reinterpret_cast<const sockaddr_in*>(addr);
        inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
        return std::string(buf) + ":" + std::to_string(ntohs(sin->sin_port));
    }
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(addr);
    inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf);
    std::string out = "[";
    out += buf;
    out += "]:";
    out += std::to_string(ntohs(sin6->sin6_port));
    return out;
}

} // namespace rdtmon::exporter
