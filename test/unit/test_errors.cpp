#include "Errors.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>

namespace rdtmon {
namespace {

TEST(ErrorName, EveryKindHasItsContractName) {
    EXPECT_EQ(errorName(ErrorKind::InvalidArgument), "org.rdtmon1.Error.InvalidArgument");
    EXPECT_EQ(errorName(ErrorKind::NotSupported), "org.rdtmon1.Error.NotSupported");
    EXPECT_EQ(errorName(ErrorKind::NoSuchGroup), "org.rdtmon1.Error.NoSuchGroup");
    EXPECT_EQ(errorName(ErrorKind::NoSuchProcess), "org.rdtmon1.Error.NoSuchProcess");
    EXPECT_EQ(errorName(ErrorKind::AlreadyExists), "org.rdtmon1.Error.AlreadyExists");
    EXPECT_EQ(errorName(ErrorKind::OutOfRmids), "org.rdtmon1.Error.OutOfRmids");
    EXPECT_EQ(errorName(ErrorKind::Busy), "org.rdtmon1.Error.Busy");
    EXPECT_EQ(errorName(ErrorKind::AccessDenied), "org.freedesktop.DBus.Error.AccessDenied");
    EXPECT_EQ(errorName(ErrorKind::Failed), "org.rdtmon1.Error.Failed");
}

TEST(KindFromErrno, MapsTheContractErrnos) {
    EXPECT_EQ(kindFromErrno(ENOSPC), ErrorKind::OutOfRmids);
    EXPECT_EQ(kindFromErrno(EBUSY), ErrorKind::Busy);
    EXPECT_EQ(kindFromErrno(ESRCH), ErrorKind::NoSuchProcess);
    EXPECT_EQ(kindFromErrno(ENOENT), ErrorKind::NoSuchGroup);
    EXPECT_EQ(kindFromErrno(EEXIST), ErrorKind::AlreadyExists);
    EXPECT_EQ(kindFromErrno(ENODEV), ErrorKind::NotSupported);
}

TEST(KindFromErrno, EverythingElseIsFailed) {
    for (int e : {0, EIO, EPERM, EINVAL, EACCES, E2BIG, ENOTDIR, ELOOP, ENOMEM, 9999, -1}) {
        EXPECT_EQ(kindFromErrno(e), ErrorKind::Failed) << "errno " << e;
    }
}

TEST(ThrowErrno, CarriesKindAndMessage) {
    try {
        throwErrno(ENOSPC, "mkdir /x/mon_groups/c1");
        FAIL() << "throwErrno returned";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::OutOfRmids);
        EXPECT_EQ(std::string(e.what()),
                  std::string("mkdir /x/mon_groups/c1: ") + std::strerror(ENOSPC));
    }
    try {
        throwErrno(EIO, "read");
        FAIL() << "throwErrno returned";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Failed);
        EXPECT_EQ(std::string(e.what()), std::string("read: ") + std::strerror(EIO));
    }
}

TEST(ErrorKindFromName, IsTheInverseOfErrorName) {
    for (ErrorKind k : {ErrorKind::InvalidArgument, ErrorKind::NotSupported, ErrorKind::NoSuchGroup,
                        ErrorKind::NoSuchProcess, ErrorKind::AlreadyExists, ErrorKind::OutOfRmids,
                        ErrorKind::Busy, ErrorKind::AccessDenied, ErrorKind::Failed}) {
        EXPECT_EQ(errorKindFromName(errorName(k)), k) << errorName(k);
    }
}

TEST(ErrorKindFromName, OtherNamesAreNoKind) {
    for (const char* name :
         {"", "org.rdtmon1.Error.", "org.rdtmon1.Error.Nope", "org.rdtmon1.error.Failed",
          "org.freedesktop.DBus.Error.NoReply", "org.rdtmon1.Error.Failed "}) {
        EXPECT_EQ(errorKindFromName(name), std::nullopt) << "'" << name << "'";
    }
}

TEST(ErrnoText, IsStrerror) {
    for (int e : {ENOENT, EACCES, ENOSPC, 0}) {
        EXPECT_EQ(errnoText(e), std::string(std::strerror(e)));
    }
}

TEST(ErrorClass, IsARuntimeError) {
    Error e(ErrorKind::Busy, "limbo");
    const std::runtime_error& base = e;
    EXPECT_STREQ(base.what(), "limbo");
    EXPECT_EQ(e.kind(), ErrorKind::Busy);
}

} // namespace
} // namespace rdtmon
