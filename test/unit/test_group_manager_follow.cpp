// GroupManager following a container's cgroup, without a bus: the watch's event and the
// collection's pass move joiners; removal, a vanished cgroup and a restart start or stop it.

#include "EmulatorMount.h"
#include "GroupManager.h"
#include "GroupRegistry.h"
#include "ManagerRestart.h"
#include "Proc.h"
#include "TempDir.h"
#include "TestCgroup.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <memory>
#include <poll.h>
#include <set>
#include <string>

using namespace rdtmon;
using namespace rdtmon::test;

namespace {

class GroupManagerFollow : public ::testing::Test {
protected:
    void SetUp() override {
        if (!TestCgroup::available()) {
            GTEST_SKIP() << "needs root and a cgroup mount";
        }
        reopen();
    }
    void reopen() {
        GroupManager::Events ev;
        ev.coverageChanged = [this](const std::string& id) { changed_.push_back(id); };
        reopenManager(mgr_, registry_, state_.file("state"), emulatorOpener(emu_), ev);
    }
    // What the event loop does for one wake-up of the watch (bounded wait).
    bool serveWatch() {
        pollfd p{mgr_->followFd(), POLLIN, 0};
        if (::poll(&p, 1, 5000 * kSlowdown) != 1) {
            return false;
        }
        mgr_->onFollowEvents();
        mgr_->resyncPending();
        return true;
    }
    bool allIn(const std::string& id, pid_t pid) {
        const std::set<pid_t> in = tasksOf(emu_.path() + "/mon_groups/" + id);
        for (pid_t t : threadsOf(pid)) {
            if (in.count(t) == 0) {
                return false;
            }
        }
        return true;
    }

    EmulatorMount emu_{EmulatorOptions{.numRmids = 8}};
    TempDir state_{"rdtmon-follow"};
    std::unique_ptr<GroupRegistry> registry_;
    std::unique_ptr<GroupManager> mgr_;
    std::vector<std::string> changed_;
};

TEST_F(GroupManagerFollow, AJoinerIsMovedOnTheWatchEventWithItsThreads) {
    TestCgroup cg;
    ChildProcess init(spawnSleeper());
    cg.add(init.pid());
    GroupRecord rec = mgr_->createGroup("c1", static_cast<uint32_t>(init.pid()));
    EXPECT_EQ(rec.cgroup, cg.dir());
    EXPECT_EQ(registry_->find("c1")->cgroup, cg.dir());
    EXPECT_TRUE(mgr_->following("c1"));
    mgr_->resyncPending(); // the create's own resync
    EXPECT_EQ(mgr_->coverage("c1"), (Coverage{1, 0}));

    ChildProcess joiner(spawnSleeper(2));
    cg.add(joiner.pid());
    ASSERT_TRUE(serveWatch());
    EXPECT_TRUE(allIn("c1", joiner.pid()));
    EXPECT_EQ(mgr_->coverage("c1"), (Coverage{4, 0}));
    EXPECT_EQ(changed_, (std::vector<std::string>{"c1", "c1"}));
    // Nothing changed: no event, the fd is quiet.
    pollfd p{mgr_->followFd(), POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 100), 0);
}

TEST_F(GroupManagerFollow, TheCollectionsPassCatchesAJoinNoEventToldOf) {
    TestCgroup cg;
    ChildProcess init(spawnSleeper());
    cg.add(init.pid());
    mgr_->createGroup("c1", static_cast<uint32_t>(init.pid()));
    mgr_->resyncPending();
    ChildProcess joiner(spawnSleeper(1));
    cg.add(joiner.pid());
    mgr_->resyncAll(); // without reading the watch, as for CLONE_INTO_CGROUP
    EXPECT_TRUE(allIn("c1", joiner.pid()));
    EXPECT_EQ(mgr_->coverage("c1"), (Coverage{3, 0}));
}

TEST_F(GroupManagerFollow, AnotherCtrlMonGroupsThreadIsCountedOutsideNeverMoved) {
    ASSERT_EQ(::mkdir((emu_.path() + "/clos1").c_str(), 0755), 0);
    TestCgroup cg;
    ChildProcess init(spawnSleeper());
    cg.add(init.pid());
    mgr_->createGroup("c1", static_cast<uint32_t>(init.pid()));
    ChildProcess other(spawnSleeper());
    writeFile(emu_.path() + "/clos1/tasks", std::to_string(other.pid()));
    cg.add(other.pid());
    mgr_->resyncAll();
    EXPECT_EQ(mgr_->coverage("c1"), (Coverage{1, 1}));
    EXPECT_EQ(tasksOf(emu_.path() + "/clos1"), std::set<pid_t>{other.pid()});
    EXPECT_GE(mgr_->retryTimeoutMs(), 0); // a retry is pending: it may be on its way
}

TEST_F(GroupManagerFollow, ARefusalOtherThanAnotherCtrlMonGroupIsAnErrorNeverOutside) {
    TestCgroup cg;
    ChildProcess init(spawnSleeper());
    cg.add(init.pid());
    mgr_->createGroup("c1", static_cast<uint32_t>(init.pid()));
    mgr_->resyncPending();
    ChildProcess joiner(spawnSleeper());
    cg.add(joiner.pid());
    for (const std::string err : {"EPERM", "EIO"}) {
        emu_.control("fail-tasks-write-after 0 " + err);
        ::testing::internal::CaptureStderr();
        mgr_->resyncAll();
        const std::string log = ::testing::internal::GetCapturedStderr();
        EXPECT_EQ(mgr_->coverage("c1"), (Coverage{1, 0})) << err;
        EXPECT_NE(log.find("<3>"), std::string::npos) << err << ": " << log;
        EXPECT_NE(log.find("resync stopped: process " + std::to_string(joiner.pid())),
                  std::string::npos)
            << err << ": " << log;
        EXPECT_EQ(log.find("outside"), std::string::npos) << err << ": " << log;
        EXPECT_FALSE(allIn("c1", joiner.pid())) << err;
    }
    // The fault gone, the next pass moves it.
    mgr_->resyncAll();
    EXPECT_TRUE(allIn("c1", joiner.pid()));
    EXPECT_EQ(mgr_->coverage("c1"), (Coverage{2, 0}));
}

TEST_F(GroupManagerFollow, RemovalAndAVanishedCgroupStopFollowingARestartResumes) {
    auto cg = std::make_unique<TestCgroup>();
    ChildProcess init(spawnSleeper());
    cg->add(init.pid());
    mgr_->createGroup("c1", static_cast<uint32_t>(init.pid()));
    reopen();
    EXPECT_TRUE(mgr_->following("c1"));
    ChildProcess joiner(spawnSleeper());
    cg->add(joiner.pid());
    ASSERT_TRUE(serveWatch());
    EXPECT_TRUE(allIn("c1", joiner.pid()));

    cg.reset(); // the container is gone: its processes killed, the cgroup removed
    mgr_->resyncAll();
    EXPECT_FALSE(mgr_->following("c1"));
    EXPECT_EQ(registry_->find("c1")->cgroup.empty(), false); // the record is unchanged

    TestCgroup cg2;
    ChildProcess init2(spawnSleeper());
    cg2.add(init2.pid());
    mgr_->createGroup("c2", static_cast<uint32_t>(init2.pid()));
    EXPECT_TRUE(mgr_->following("c2"));
    mgr_->removeGroup("c2");
    EXPECT_FALSE(mgr_->following("c2"));
    EXPECT_EQ(mgr_->retryTimeoutMs(), -1);
}

TEST_F(GroupManagerFollow, AnInitSharingItsCgroupIsNotFollowed) {
    ChildProcess init(spawnSleeper());
    GroupRecord rec = mgr_->createGroup("c1", static_cast<uint32_t>(init.pid()));
    EXPECT_EQ(rec.cgroup, "");
    EXPECT_FALSE(mgr_->following("c1"));
    EXPECT_EQ(mgr_->coverage("c1"), (Coverage{1, 0}));
}

} // namespace
