#include "CgroupPaths.h"
#include "CgroupPoller.h"
#include "CgroupWatcher.h"

#include "Proc.h"
#include "TestCgroup.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <unistd.h>

namespace rdtmon::test {
namespace {

// This machine's shape: cgroup v1 hierarchies plus cgroup2 at /sys/fs/cgroup/unified.
const char* kHybridMountinfo =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime shared:9 - cgroup cgroup rw,pids\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

TEST(CgroupPaths, ParsesProcCgroupLines) {
    auto e = parseProcCgroup("9:name=systemd:/a\n2:cpu,cpuacct:/b c\n0::/x/y\n");
    ASSERT_TRUE(e);
    ASSERT_EQ(e->size(), 3u);
    EXPECT_EQ((*e)[0].hierarchy, 9u);
    EXPECT_EQ((*e)[0].controllers, std::vector<std::string>{"name=systemd"});
    EXPECT_EQ((*e)[1].controllers, (std::vector<std::string>{"cpu", "cpuacct"}));
    EXPECT_EQ((*e)[1].path, "/b c");
    EXPECT_TRUE((*e)[2].controllers.empty());
    EXPECT_EQ((*e)[2].path, "/x/y");
}

TEST(CgroupPaths, RejectsMalformedProcCgroup) {
    for (const char* bad : {"garbage", "x::/a", "1:cpu", "1:cpu:relative", ":cpu:/a", "0::"}) {
        EXPECT_FALSE(parseProcCgroup(bad)) << bad;
    }
    EXPECT_TRUE(parseProcCgroup(""));
}

TEST(CgroupPaths, ParsesCgroupMountsOnly) {
    auto m = parseCgroupMounts(std::string(kHybridMountinfo) +
                               "99 1 0:5 / /with\\040space rw - cgroup2 cgroup2 rw\n"
                               "bad line\n"
                               "100 1 0:6 / /x rw - ext4 /dev/sda rw\n");
    ASSERT_EQ(m.size(), 6u);
    EXPECT_EQ(m[0].mountPoint, "/sys/fs/cgroup/cpu,cpuacct");
    EXPECT_FALSE(m[0].v2);
    EXPECT_EQ(m[0].options, (std::vector<std::string>{"rw", "cpu", "cpuacct"}));
    EXPECT_TRUE(m[4].v2);
    EXPECT_EQ(m[5].mountPoint, "/with space");
}

TEST(CgroupPaths, PrefersCgroup2WhenTheProcessIsNotAtItsRoot) {
    EXPECT_EQ(containerCgroupDir("4:memory:/m\n8:pids:/p\n0::/c2\n", kHybridMountinfo),
              "/sys/fs/cgroup/unified/c2");
}

TEST(CgroupPaths, FallsBackToV1InPreferenceOrder) {
    // cgroup2 at its root: v1, pids first, whatever the line order.
    EXPECT_EQ(
        containerCgroupDir("9:name=systemd:/s\n4:memory:/m\n8:pids:/p\n0::/\n", kHybridMountinfo),
        "/sys/fs/cgroup/pids/p");
    // pids at the root: memory.
    EXPECT_EQ(
        containerCgroupDir("9:name=systemd:/s\n4:memory:/m\n8:pids:/\n0::/\n", kHybridMountinfo),
        "/sys/fs/cgroup/memory/m");
    // A co-mounted hierarchy is found by all its controllers.
    EXPECT_EQ(containerCgroupDir("2:cpu,cpuacct:/k\n9:name=systemd:/s\n", kHybridMountinfo),
              "/sys/fs/cgroup/cpu,cpuacct/k");
    // name=systemd last.
    EXPECT_EQ(containerCgroupDir("9:name=systemd:/s\n8:pids:/\n", kHybridMountinfo),
              "/sys/fs/cgroup/systemd/s");
}

TEST(CgroupPaths, NoneAtTheRootOrUnmounted) {
    EXPECT_FALSE(containerCgroupDir("8:pids:/\n0::/\n", kHybridMountinfo));
    EXPECT_FALSE(containerCgroupDir("0::/c\n", "1 0 0:1 / / rw - ext4 /dev/sda rw\n"));
    EXPECT_FALSE(containerCgroupDir("garbage", kHybridMountinfo));
    EXPECT_FALSE(containerCgroupDir("0::/a/../../etc\n", kHybridMountinfo));
}

TEST(CgroupPaths, MountRootIsStrippedAndPathsOutsideItIgnored) {
    const char* mi = "41 31 0:38 /kubepods /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
    EXPECT_EQ(containerCgroupDir("0::/kubepods/pod1/c\n", mi), "/sys/fs/cgroup/pod1/c");
    EXPECT_FALSE(containerCgroupDir("0::/system.slice/x\n", mi));
    EXPECT_FALSE(containerCgroupDir("0::/kubepodsX/y\n", mi));
}

TEST(CgroupPaths, ParsersSurviveArbitraryBytes) {
    std::string junk;
    for (int i = 0; i < 2000; ++i) {
        junk += static_cast<char>((i * 131 + 7) % 256);
        (void)parseProcCgroup(junk);
        (void)parseCgroupMounts(junk);
        (void)containerCgroupDir(junk, junk);
    }
    SUCCEED();
}

TEST(CgroupToFollow, OnlyACgroupHoldingTheInitAlone) {
    if (!TestCgroup::available()) {
        GTEST_SKIP() << "needs root and a cgroup mount";
    }
    ChildProcess a(spawnSleeper(2));
    std::string why;
    // The test runner's cgroup is shared (with this test at least).
    EXPECT_EQ(cgroupToFollow(a.pid(), why), "");
    EXPECT_FALSE(why.empty());

    TestCgroup cg;
    cg.add(a.pid());
    why.clear();
    EXPECT_EQ(cgroupToFollow(a.pid(), why), cg.dir()) << why;

    ChildProcess b(spawnSleeper());
    cg.add(b.pid());
    why.clear();
    EXPECT_EQ(cgroupToFollow(a.pid(), why), "");
    EXPECT_NE(why.find("2 process"), std::string::npos) << why;
}

TEST(CgroupWatcher, AWriteToCgroupProcsIsAnEventAReadIsNot) {
    if (!TestCgroup::available()) {
        GTEST_SKIP() << "needs root and a cgroup mount";
    }
    TestCgroup cg;
    CgroupWatcher w;
    int err = 0;
    ASSERT_TRUE(w.watch("c1", cg.dir(), err)) << err;
    EXPECT_TRUE(w.read().changed.empty());
    (void)cg.procs(); // a read
    EXPECT_TRUE(w.read().changed.empty());
    ChildProcess a(spawnSleeper());
    cg.add(a.pid());
    cg.add(a.pid()); // a burst is one entry
    CgroupWatcher::Events ev = w.read();
    EXPECT_EQ(ev.changed, std::set<std::string>{"c1"});
    w.unwatch("c1");
    EXPECT_EQ(w.size(), 0u);
    ChildProcess b(spawnSleeper());
    cg.add(b.pid());
    EXPECT_TRUE(w.read().changed.empty());
    EXPECT_FALSE(w.watch("gone", cg.dir() + "/nonexistent", err));
    EXPECT_EQ(err, ENOENT);
}

// What the inotify watch cannot see: a process started straight in the cgroup by
// clone3(CLONE_INTO_CGROUP). The poller reads every cgroup once per kSlices ticks and
// reports the pids new since its last read; a cgroup removed is reported gone.
TEST(CgroupPoller, AProcessStartedIntoTheCgroupIsNewAtItsNextRead) {
    if (!TestCgroup::available()) {
        GTEST_SKIP() << "needs root and a cgroup mount";
    }
    std::set<pid_t> joined;
    CgroupPoller poller;
    auto fullRound = [&] {
        joined.clear();
        for (std::size_t i = 0; i < CgroupPoller::kSlices; ++i) {
            for (const CgroupPoller::Joined& j : poller.tick().joined) {
                EXPECT_EQ(j.id, "c1");
                joined.insert(j.pids.begin(), j.pids.end());
            }
        }
    };
    auto cg = std::make_unique<TestCgroup>();
    ChildProcess init(spawnSleeper());
    cg->add(init.pid());
    int err = 0;
    ASSERT_TRUE(poller.add("c1", cg->dir(), err)) << err;
    fullRound();
    EXPECT_TRUE(joined.empty()) << "what was there at add() is the baseline";
    ChildProcess byClone3(cg->spawnInto());
    fullRound();
    EXPECT_EQ(joined, std::set<pid_t>{byClone3.pid()});
    fullRound();
    EXPECT_TRUE(joined.empty()) << "reported once";
    byClone3.reset();
    init.reset();
    cg.reset(); // the cgroup is removed
    std::set<std::string> gone;
    for (std::size_t i = 0; i < CgroupPoller::kSlices; ++i) {
        const CgroupPoller::TickResult t = poller.tick();
        gone.insert(t.gone.begin(), t.gone.end());
    }
    EXPECT_EQ(gone, std::set<std::string>{"c1"});
    EXPECT_EQ(poller.size(), 0u);
}

} // namespace
} // namespace rdtmon::test
