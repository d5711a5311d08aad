// GroupManager ending a container's group by itself when its last task is gone and no
// poststop hook came: real processes in real cgroups over the emulator, driven as the
// event loop drives it (the end fd, the timeout, runDueEnds()).

#include "EmulatorMount.h"
#include "GroupManager.h"
#include "GroupRegistry.h"
#include "ManagerRestart.h"
#include "Proc.h"
#include "TempDir.h"
#include "TestCgroup.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <poll.h>
#include <set>
#include <string>
#include <utility>
#include <vector>

using namespace rdtmon;
using namespace rdtmon::test;

namespace {

namespace fs = std::filesystem;

class GroupManagerEnd : public ::testing::Test {
protected:
    void SetUp() override {
        if (!TestCgroup::available()) {
            GTEST_SKIP() << "needs root and a cgroup mount";
        }
        reopen();
    }
    void reopen() {
        GroupManager::Events ev;
        ev.removed = [this](const GroupRecord& r, RemoveReason why) {
            removed_.emplace_back(r.id, why);
        };
        reopenManager(mgr_, registry_, state_.file("state"), emulatorOpener(emu_), ev);
        mgr_->setEndGrace(std::chrono::milliseconds(300));
    }
    // The event loop for up to `limit`: the end fd, the due looks and removals.
    void serve(std::chrono::milliseconds limit) {
        const auto end = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < end) {
            int timeout = mgr_->endTimeoutMs();
            timeout = timeout < 0 ? 50 : std::min(timeout, 50);
            pollfd p{mgr_->endFd(), POLLIN, 0};
            if (::poll(&p, 1, timeout) == 1) {
                mgr_->onEndEvents();
            }
            mgr_->runDueEnds();
        }
    }
    bool exists(const std::string& id) { return fs::exists(emu_.path() + "/mon_groups/" + id); }

    EmulatorMount emu_{EmulatorOptions{.numRmids = 4}};
    TempDir state_{"rdtmon-end"};
    std::unique_ptr<GroupRegistry> registry_;
    std::unique_ptr<GroupManager> mgr_;
    std::vector<std::pair<std::string, RemoveReason>> removed_;
};

TEST_F(GroupManagerEnd, AContainerWhoseLastTaskIsGoneLosesItsGroupAfterTheGrace) {
    mgr_->setEndGrace(std::chrono::milliseconds(1000));
    TestCgroup cg;
    ChildProcess init(spawnSleeper(1));
    cg.add(init.pid());
    mgr_->createGroup("c1", static_cast<uint32_t>(init.pid()));
    ASSERT_TRUE(mgr_->following("c1"));
    serve(std::chrono::milliseconds(100));
    EXPECT_TRUE(exists("c1")) << "removed while it runs";
    init.reset(); // killed behind its runtime's back: no poststop
    serve(std::chrono::milliseconds(150));
    EXPECT_TRUE(exists("c1")) << "removed before the grace";
    serve(std::chrono::milliseconds(2000 * kSlowdown));
    EXPECT_FALSE(exists("c1"));
    EXPECT_FALSE(registry_->find("c1"));
    ASSERT_EQ(removed_.size(), 1u);
    EXPECT_EQ(removed_[0], std::make_pair(std::string("c1"), RemoveReason::Exited));
    EXPECT_EQ(mgr_->endTimeoutMs(), -1) << "nothing left to time: no wake-ups at idle";
}

TEST_F(GroupManagerEnd, ATaskLeftInTheCgroupKeepsTheGroupUntilItIsGoneToo) {
    TestCgroup cg;
    ChildProcess init(spawnSleeper());
    ChildProcess child(spawnSleeper());
    cg.add(init.pid());
    mgr_->createGroup("c1", static_cast<uint32_t>(init.pid()));
    cg.add(child.pid()); // a process of the container without a pid namespace of its own
    init.reset();
    serve(std::chrono::milliseconds(1500));
    EXPECT_TRUE(exists("c1")) << "removed while a task of the container lives";
    EXPECT_TRUE(removed_.empty());
    child.reset();
    serve(std::chrono::milliseconds(2500 * kSlowdown)); // the next look (1 s) and the grace
    EXPECT_FALSE(exists("c1"));
    ASSERT_EQ(removed_.size(), 1u);
    EXPECT_EQ(removed_[0].second, RemoveReason::Exited);
}

TEST_F(GroupManagerEnd, AContainerThatAsksAgainInTheGraceKeepsItsGroup) {
    TestCgroup cg;
    ChildProcess init(spawnSleeper());
    cg.add(init.pid());
    mgr_->createGroup("c1", static_cast<uint32_t>(init.pid()));
    init.reset();
    serve(std::chrono::milliseconds(100)); // seen ended, removal due in the grace
    ChildProcess again(spawnSleeper());    // restarted under the same id, hook and all
    cg.add(again.pid());
    mgr_->createGroup("c1", static_cast<uint32_t>(again.pid()));
    serve(std::chrono::milliseconds(800));
    EXPECT_TRUE(exists("c1"));
    EXPECT_TRUE(removed_.empty());
    EXPECT_EQ(registry_->find("c1")->pid, static_cast<uint32_t>(again.pid()));
    again.reset(); // and its new init is watched
    serve(std::chrono::milliseconds(800 * kSlowdown));
    EXPECT_FALSE(exists("c1"));
}

TEST_F(GroupManagerEnd, AGroupThatFollowsNoCgroupEndsWhenItsTasksAreGone) {
    ChildProcess init(spawnSleeper(2)); // in the test's own cgroup: not followed
    GroupRecord rec = mgr_->createGroup("c1", static_cast<uint32_t>(init.pid()));
    ASSERT_TRUE(rec.cgroup.empty());
    init.reset();
    serve(std::chrono::milliseconds(800 * kSlowdown));
    EXPECT_FALSE(exists("c1"));
    ASSERT_EQ(removed_.size(), 1u);
}

// rdtmonctl selftest's children share its cgroup (the operator's session); even one alone in
// a cgroup of its own is not followed, while a container's is.
TEST_F(GroupManagerEnd, ASelftestFollowsNoCgroupNotEvenOneOfItsOwn) {
    const std::string selftest = "rdtmon-selftest-4242-1";
    TestCgroup cg, containers;
    ChildProcess init(spawnSleeper(1)), other(spawnSleeper());
    cg.add(init.pid());
    containers.add(other.pid());
    ASSERT_EQ(mgr_->createGroup("c1", static_cast<uint32_t>(other.pid())).cgroup, containers.dir());
    GroupRecord rec = mgr_->createGroup(selftest, static_cast<uint32_t>(init.pid()));
    EXPECT_TRUE(rec.cgroup.empty()) << rec.cgroup;
    EXPECT_TRUE(registry_->find(selftest)->cgroup.empty());
    EXPECT_FALSE(mgr_->following(selftest));
    EXPECT_TRUE(mgr_->following("c1"));
    EXPECT_EQ(mgr_->coverage(selftest), (Coverage{2, 0})) << "the threads moved at create";
    // What joins that cgroup later stays out of the group.
    ChildProcess joiner(spawnSleeper());
    cg.add(joiner.pid());
    mgr_->resyncAll();
    mgr_->resyncPending();
    const std::set<pid_t> in = tasksOf(emu_.path() + "/mon_groups/" + selftest);
    EXPECT_EQ(in.count(init.pid()), 1u);
    EXPECT_EQ(in.count(joiner.pid()), 0u);
}

// The selftest's children die with it (PR_SET_PDEATHSIG): its group ends as a container's
// does, although it follows no cgroup.
TEST_F(GroupManagerEnd, ASelftestWhoseProcessDiedLosesItsGroupAfterTheGrace) {
    const std::string selftest = "rdtmon-selftest-4242-1";
    mgr_->setEndGrace(std::chrono::milliseconds(1000));
    ChildProcess init(spawnSleeper(1)); // in the test's own cgroup, beside the test
    ASSERT_TRUE(mgr_->createGroup(selftest, static_cast<uint32_t>(init.pid())).cgroup.empty());
    serve(std::chrono::milliseconds(100));
    EXPECT_TRUE(exists(selftest)) << "removed while it runs";
    init.reset();
    serve(std::chrono::milliseconds(150));
    EXPECT_TRUE(exists(selftest)) << "removed before the grace";
    serve(std::chrono::milliseconds(2000 * kSlowdown));
    EXPECT_FALSE(exists(selftest));
    EXPECT_FALSE(registry_->find(selftest));
    ASSERT_EQ(removed_.size(), 1u);
    EXPECT_EQ(removed_[0], std::make_pair(selftest, RemoveReason::Exited));
    EXPECT_EQ(mgr_->endTimeoutMs(), -1);
}

// A self-test that meets no free RMID waits like a container, gets its group when one frees,
// follows no cgroup then either, and ends as any group does.
TEST_F(GroupManagerEnd, AWaitingSelftestGetsItsGroupFollowingNoCgroup) {
    const std::string selftest = "rdtmon-selftest-4242-1";
    const Sleepers inits(3); // the default group holds the fourth RMID
    for (std::size_t i = 0; i < 3; ++i) {
        mgr_->createGroup(concat("c", i), inits.upid(i));
    }
    TestCgroup cg;
    ChildProcess init(spawnSleeper());
    cg.add(init.pid());
    GroupRecord w = mgr_->createGroup(selftest, static_cast<uint32_t>(init.pid()));
    ASSERT_TRUE(w.waiting);
    EXPECT_TRUE(w.cgroup.empty()) << w.cgroup;
    mgr_->removeGroup("c0");
    EXPECT_EQ(mgr_->grantWaiting().granted, 1u);
    std::optional<GroupRecord> g = registry_->find(selftest);
    ASSERT_TRUE(g);
    EXPECT_FALSE(g->waiting);
    EXPECT_TRUE(g->cgroup.empty()) << g->cgroup;
    EXPECT_FALSE(mgr_->following(selftest));
    EXPECT_TRUE(exists(selftest));
    init.reset();
    serve(std::chrono::milliseconds(800 * kSlowdown));
    EXPECT_FALSE(exists(selftest));
    ASSERT_EQ(removed_.size(), 2u);
    EXPECT_EQ(removed_[1], std::make_pair(selftest, RemoveReason::Exited));
}

TEST_F(GroupManagerEnd, AContainerThatEndedWhileRdtmondWasDownGoesAfterTheStart) {
    TestCgroup cg;
    ChildProcess init(spawnSleeper());
    cg.add(init.pid());
    mgr_->createGroup("c1", static_cast<uint32_t>(init.pid()));
    mgr_.reset(); // rdtmond stops
    init.reset();
    reopen();
    serve(std::chrono::milliseconds(800 * kSlowdown));
    EXPECT_FALSE(exists("c1"));
    ASSERT_EQ(removed_.size(), 1u);
    EXPECT_EQ(removed_[0].second, RemoveReason::Exited);
}

TEST_F(GroupManagerEnd, AWaitingContainerGetsTheRmidAnEndFrees) {
    std::vector<std::unique_ptr<TestCgroup>> cgs;
    std::vector<ChildProcess> inits;
    for (int i = 0; i < 3; ++i) { // the default group holds the fourth RMID
        cgs.push_back(std::make_unique<TestCgroup>());
        inits.emplace_back(spawnSleeper());
        cgs.back()->add(inits.back().pid());
        std::string id = "c"; // (GCC 12 warns wrongly about "c" + std::to_string(i))
        id += std::to_string(i);
        mgr_->createGroup(id, static_cast<uint32_t>(inits.back().pid()));
    }
    ChildProcess waiter(spawnSleeper());
    GroupRecord w = mgr_->createGroup("w", static_cast<uint32_t>(waiter.pid()));
    ASSERT_TRUE(w.waiting);
    inits[1].reset();
    serve(std::chrono::milliseconds(800 * kSlowdown));
    EXPECT_FALSE(exists("c1"));
    EXPECT_TRUE(mgr_->grantDue());
    EXPECT_EQ(mgr_->grantWaiting().granted, 1u);
    EXPECT_TRUE(exists("w"));
}

} // namespace
