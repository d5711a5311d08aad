#pragma once

// The --listen value of rdtmon-exporter: "HOST:PORT" with HOST a numeric IPv4 address or a
// bracketed numeric IPv6 address ("[::1]:10036"). Names are not resolved on purpose: what
// the exporter binds must not depend on DNS or /etc/hosts at start-up.

#include <netinet/in.h>
#include <string>
#include <sys/socket.h>

namespace rdtmon::exporter {

// Chosen outside 9100-9999, the range of Prometheus' default port allocations, which is
// fully allocated; see docs/monitoring.md.
inline constexpr unsigned kDefaultPort = 10036;
inline constexpr const char* kDefaultListen = "127.0.0.1:10036";

struct ListenAddress {
    sockaddr_storage addr{};
    socklen_t len = 0;
    int family() const { return addr.ss_family; }
    unsigned port() const;
};

// Throws std::invalid_argument naming what is wrong. Port 0 asks the kernel for a free port.
ListenAddress parseListenAddress(const std::string& text);

// "127.0.0.1:10036" or "[::1]:10036": the form parseListenAddress reads.
std::string formatListenAddress(const sockaddr* addr);

} // namespace rdtmon::exporter
