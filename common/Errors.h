#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace rdtmon {

// Every failure the service can report maps to one of these kinds; the D-Bus
// layer turns each into the org.rdtmon1.Error.<Kind> name of the contract.
enum class ErrorKind {
    InvalidArgument,
    NotSupported,
    NoSuchGroup,
    NoSuchProcess,
    AlreadyExists,
    OutOfRmids,
    Busy,
    AccessDenied,
    Failed,
};

// The D-Bus error name for a kind, e.g. "org.rdtmon1.Error.OutOfRmids".
std::string errorName(ErrorKind kind);

// The kind whose errorName() is name; nullopt for any other name (the client side of the
// contract: rdtmon-hook reading an error reply).
std::optional<ErrorKind> errorKindFromName(std::string_view name);

class Error : public std::runtime_error {
public:
    Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
    ErrorKind kind() const noexcept { return kind_; }

private:
    ErrorKind kind_;
};

// Maps an errno from a resctrl syscall to the error kind of the contract:
// ENOSPC -> OutOfRmids, EBUSY -> Busy, ESRCH -> NoSuchProcess, ENOENT -> NoSuchGroup,
// EEXIST -> AlreadyExists, ENODEV -> NotSupported, everything else -> Failed.
ErrorKind kindFromErrno(int err);

// strerror(err) as a string, for messages.
std::string errnoText(int err);

// Throws Error(kindFromErrno(err), what + ": " + strerror(err)).
[[noreturn]] void throwErrno(int err, const std::string& what);

} // namespace rdtmon
