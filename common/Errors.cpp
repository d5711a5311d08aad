#include "Errors.h"

#include <cerrno>
#include <cstring>
#include <iterator>

namespace rdtmon {
namespace {

struct KindName {
    ErrorKind kind;
    const char* name;
};

// One table for both directions of the mapping.
constexpr KindName kErrorNames[] = {
    {ErrorKind::InvalidArgument, "org.rdtmon1.Error.InvalidArgument"},
    {ErrorKind::NotSupported, "org.rdtmon1.Error.NotSupported"},
    {ErrorKind::NoSuchGroup, "org.rdtmon1.Error.NoSuchGroup"},
    {ErrorKind::NoSuchProcess, "org.rdtmon1.Error.NoSuchProcess"},
    {ErrorKind::AlreadyExists, "org.rdtmon1.Error.AlreadyExists"},
    {ErrorKind::OutOfRmids, "org.rdtmon1.Error.OutOfRmids"},
    {ErrorKind::Busy, "org.rdtmon1.Error.Busy"},
    // The contract uses the standard D-Bus name for a caller that is not allowed.
    {ErrorKind::AccessDenied, "org.freedesktop.DBus.Error.AccessDenied"},
    {ErrorKind::Failed, "org.rdtmon1.Error.Failed"},
};
// Failed is the last kind: a kind added to the enum needs its row here.
static_assert(std::size(kErrorNames) == static_cast<std::size_t>(ErrorKind::Failed) + 1);

} // namespace

std::string errorName(ErrorKind kind) {
    for (const KindName& e : kErrorNames) {
        if (e.kind == kind) {
            return e.name;
        }
    }
    return "org.rdtmon1.Error.Failed";
}

std::optional<ErrorKind> errorKindFromName(std::string_view name) {
    for (const KindName& e : kErrorNames) {
        if (name == e.name) {
            return e.kind;
        }
    }
    return std::nullopt;
}

ErrorKind kindFromErrno(int err) {
    switch (err) {
    case ENOSPC:
        return ErrorKind::OutOfRmids;
    case EBUSY:
        return ErrorKind::Busy;
    case ESRCH:
        return ErrorKind::NoSuchProcess;
    case ENOENT:
        return ErrorKind::NoSuchGroup;
    case EEXIST:
        return ErrorKind::AlreadyExists;
    case ENODEV:
        return ErrorKind::NotSupported;
    default:
        return ErrorKind::Failed;
    }
}

std::string errnoText(int err) {
    return std::strerror(err);
}

void throwErrno(int err, const std::string& what) {
    throw Error(kindFromErrno(err), what + ": " + errnoText(err));
}

} // namespace rdtmon
