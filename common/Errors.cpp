#include "Errors.h"

#include <cerrno>
#include <cstring>

namespace rdtmon {

std::string errorName(ErrorKind kind) {
    switch (kind) {
    case ErrorKind::InvalidArgument:
        return "org.rdtmon1.Error.InvalidArgument";
    case ErrorKind::NotSupported:
        return "org.rdtmon1.Error.NotSupported";
    case ErrorKind::NoSuchGroup:
        return "org.rdtmon1.Error.NoSuchGroup";
    case ErrorKind::NoSuchProcess:
        return "org.rdtmon1.Error.NoSuchProcess";
    case ErrorKind::AlreadyExists:
        return "org.rdtmon1.Error.AlreadyExists";
    case ErrorKind::OutOfRmids:
        return "org.rdtmon1.Error.OutOfRmids";
    case ErrorKind::Busy:
        return "org.rdtmon1.Error.Busy";
    case ErrorKind::AccessDenied:
        // The contract uses the standard D-Bus name for a caller that is not allowed.
        return "org.freedesktop.DBus.Error.AccessDenied";
    case ErrorKind::Failed:
        return "org.rdtmon1.Error.Failed";
    }
    return "org.rdtmon1.Error.Failed";
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

void throwErrno(int err, const std::string& what) {
    throw Error(kindFromErrno(err), what + ": " + std::strerror(err));
}

} // namespace rdtmon
