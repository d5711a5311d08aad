#pragma once

// Every failure a client of rdtmond meets, as one type with a kind: the kinds are what a
// program decides on (rdtmonctl's exit code, the exporter's rdtmon_up), the message what a
// person reads.

#include <stdexcept>
#include <string>

namespace rdtmon::client {

enum class ClientErrorKind {
    NotRunning,   // no system bus, or nobody owns org.rdtmon1 on it
    Unsupported,  // org.rdtmon1.Error.NotSupported: no resctrl or no monitoring
    AccessDenied, // org.freedesktop.DBus.Error.AccessDenied: root only (gc)
    NoSuchGroup,  // org.rdtmon1.Error.NoSuchGroup
    Other,        // anything else: the D-Bus error name is in the message
};

class ClientError : public std::runtime_error {
public:
    ClientError(ClientErrorKind kind, const std::string& message)
        : std::runtime_error(message), kind_(kind) {}
    ClientErrorKind kind() const noexcept { return kind_; }

private:
    ClientErrorKind kind_;
};

// The kind of a D-Bus error name (a name this list does not know is Other).
ClientErrorKind clientErrorKindOf(const std::string& dbusErrorName);

} // namespace rdtmon::client
