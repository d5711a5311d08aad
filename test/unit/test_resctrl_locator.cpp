// ResctrlLocator: which resctrl path the service uses, and when it mounts one. The system
// calls (mount table, mount(2)) are faked; the explicit path is a temp dir.

#include "Config.h"
#include "Errors.h"
#include "ResctrlLocator.h"
#include "TempDir.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <sys/stat.h>

namespace rdtmon::test {
namespace {

// Answers the locator's system calls as told and counts them.
struct FakeSystem {
    std::optional<std::string> mountTable; // what findMount finds
    std::optional<Error> mountError;       // what mount throws, if anything
    int findCalls = 0;
    int mountCalls = 0;
    std::string mountedPath;
    std::string mountedOptions;

    ResctrlLocator::System system() {
        return ResctrlLocator::System{[this] {
                                          ++findCalls;
                                          return mountTable;
                                      },
                                      [this](const std::string& path, const std::string& options) {
                                          ++mountCalls;
                                          mountedPath = path;
                                          mountedOptions = options;
                                          if (mountError) {
                                              throw *mountError;
                                          }
                                      }};
    }
};

Config explicitPath(const std::string& path) {
    Config cfg;
    cfg.resctrlPath = path;
    cfg.resctrlPathExplicit = true;
    cfg.mountOptions = "mba_MBps";
    return cfg;
}

void makeInfoDir(const TempDir& dir) {
    ASSERT_EQ(::mkdir(dir.file("info").c_str(), 0755), 0);
}

TEST(ResctrlLocator, AnExplicitPathWithAnInfoDirIsReturned) {
    TempDir dir("rdtmon-locator");
    makeInfoDir(dir);
    FakeSystem sys;
    ResctrlLocator loc(explicitPath(dir.path()), true, sys.system());
    std::string why = "untouched";
    EXPECT_EQ(loc.locate(why), dir.path());
    EXPECT_EQ(why, "untouched");
    EXPECT_EQ(sys.findCalls, 0) << "an explicit path is not looked up in the mount table";
    EXPECT_EQ(sys.mountCalls, 0) << "a path that already is a mount is not mounted again";
    EXPECT_FALSE(loc.mountFailure());
}

TEST(ResctrlLocator, AnExplicitPathWithoutInfoAndMountingOffSaysWhy) {
    TempDir dir("rdtmon-locator");
    FakeSystem sys;
    sys.mountTable = "/sys/fs/resctrl"; // a mount elsewhere does not replace the explicit path
    ResctrlLocator loc(explicitPath(dir.path()), false, sys.system());
    std::string why;
    EXPECT_EQ(loc.locate(why), std::nullopt);
    EXPECT_EQ(why, dir.path() + " is not a resctrl mount (no info/) and mounting is off");
    EXPECT_EQ(sys.findCalls, 0);
    EXPECT_EQ(sys.mountCalls, 0);
    EXPECT_FALSE(loc.mountFailure());
}

TEST(ResctrlLocator, WithoutAnExplicitPathTheMountTableIsSearched) {
    FakeSystem sys;
    sys.mountTable = "/mnt/resctrl";
    ResctrlLocator loc(Config{}, true, sys.system());
    std::string why;
    EXPECT_EQ(loc.locate(why), "/mnt/resctrl");
    EXPECT_EQ(sys.findCalls, 1);
    EXPECT_EQ(sys.mountCalls, 0);
}

TEST(ResctrlLocator, NotMountedAndMountingOffSaysWhy) {
    FakeSystem sys;
    ResctrlLocator loc(Config{}, false, sys.system());
    std::string why;
    EXPECT_EQ(loc.locate(why), std::nullopt);
    EXPECT_EQ(why, "resctrl is not mounted and mounting is off");
    EXPECT_EQ(sys.mountCalls, 0);
}

TEST(ResctrlLocator, AMountIsTriedOnceAndItsErrorIsRemembered) {
    TempDir dir("rdtmon-locator");
    FakeSystem sys;
    sys.mountError = Error(ErrorKind::NotSupported, "the kernel has no resctrl filesystem");
    ResctrlLocator loc(explicitPath(dir.path()), true, sys.system());

    std::string why;
    EXPECT_EQ(loc.locate(why), std::nullopt);
    EXPECT_EQ(why, "the kernel has no resctrl filesystem");
    EXPECT_EQ(sys.mountCalls, 1);
    EXPECT_EQ(sys.mountedPath, dir.path());
    EXPECT_EQ(sys.mountedOptions, "mba_MBps");
    EXPECT_EQ(loc.mountFailure(), ErrorKind::NotSupported);

    for (int i = 0; i < 3; ++i) {
        why.clear();
        EXPECT_EQ(loc.locate(why), std::nullopt);
        EXPECT_EQ(why, "the kernel has no resctrl filesystem");
    }
    EXPECT_EQ(sys.mountCalls, 1) << "mount(2) is not retried on every call";
    EXPECT_EQ(loc.mountFailure(), ErrorKind::NotSupported);

    // Mounted by someone else later: the explicit path is used as soon as it has info/.
    makeInfoDir(dir);
    EXPECT_EQ(loc.locate(why), dir.path());
    EXPECT_EQ(sys.mountCalls, 1);
}

TEST(ResctrlLocator, TheKindOfAMountFailureIsKept) {
    FakeSystem sys;
    sys.mountError = Error(ErrorKind::Failed, "resctrl is already mounted at /elsewhere");
    ResctrlLocator loc(Config{}, true, sys.system());
    std::string why;
    EXPECT_EQ(loc.locate(why), std::nullopt);
    EXPECT_EQ(loc.mountFailure(), ErrorKind::Failed);
    EXPECT_EQ(sys.mountedPath, "/sys/fs/resctrl") << "the default path is the one mounted";
    EXPECT_EQ(sys.mountedOptions, "");
}

TEST(ResctrlLocator, ASuccessfulMountGivesTheConfiguredPath) {
    FakeSystem sys;
    Config cfg;
    cfg.resctrlPath = "/run/test-resctrl";
    ResctrlLocator loc(cfg, true, sys.system());
    std::string why = "untouched";
    EXPECT_EQ(loc.locate(why), "/run/test-resctrl");
    EXPECT_EQ(why, "untouched");
    EXPECT_EQ(sys.mountCalls, 1);
    EXPECT_EQ(sys.mountedPath, "/run/test-resctrl");
    EXPECT_FALSE(loc.mountFailure());

    // Now it is in the mount table: found there, not mounted again.
    sys.mountTable = "/run/test-resctrl";
    EXPECT_EQ(loc.locate(why), "/run/test-resctrl");
    EXPECT_EQ(sys.mountCalls, 1);
}

TEST(ResctrlLocator, TheRealSystemCallsAreWiredByDefault) {
    ResctrlLocator::System sys = ResctrlLocator::realSystem();
    EXPECT_TRUE(sys.findMount);
    EXPECT_TRUE(sys.mount);
}

} // namespace
} // namespace rdtmon::test
