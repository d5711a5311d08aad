// GroupManager::assignFreeCounters against resctrl-emu in mbm_event mode: counters freed by
// a removal, or never given at mkdir, go to the owned groups that lack them, oldest first;
// nothing else is touched.
#include "EmulatorMount.h"
#include "GroupManager.h"
#include "GroupRegistry.h"
#include "ManagerRestart.h"
#include "Proc.h"
#include "Resctrl.h"
#include "TempDir.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

using namespace rdtmon;
using namespace rdtmon::test;

namespace {

constexpr const char* kAllOn = "mbm_total_bytes:0=e;1=e\nmbm_local_bytes:0=e;1=e\n";
constexpr const char* kAllOff = "mbm_total_bytes:0=_;1=_\nmbm_local_bytes:0=_;1=_\n";

class CountersTest : public ::testing::Test {
protected:
    void start(const std::string& mode, unsigned counters) {
        emu_ = std::make_unique<EmulatorMount>(
            EmulatorOptions{.numRmids = 16, .mbmAssign = mode, .numMbmCntrs = counters});
        reopenManager(mgr_, registry_, state_.file("state"), emulatorOpener(*emu_), {},
                      [this] { return now_++; });
    }
    // A group of our own for a fresh sleeper (made in order: older first).
    void make(const std::string& id) {
        sleepers_.push_back(std::make_unique<ChildProcess>(spawnSleeper(0)));
        mgr_->createGroup(id, static_cast<uint32_t>(sleepers_.back()->pid()));
    }
    std::string assignments(const std::string& group) const {
        return readFile(emu_->path() + "/" + group + "/mbm_L3_assignments");
    }
    std::string available() const {
        return readFile(emu_->path() + "/info/L3_MON/available_mbm_cntrs");
    }

    std::unique_ptr<EmulatorMount> emu_;
    TempDir state_{"rdtmon-gm-counters"};
    std::unique_ptr<GroupRegistry> registry_;
    std::unique_ptr<GroupManager> mgr_;
    std::vector<std::unique_ptr<ChildProcess>> sleepers_;
    uint64_t now_ = 1'700'000'000'000'000ULL;
};

TEST_F(CountersTest, CountersFreedByARemovalGoToTheOldestGroupWithout) {
    start("mbm_event", 6); // the default group holds 2 per domain: 2 groups' worth left
    for (const char* id : {"a", "b", "c", "d"}) {
        make(id);
    }
    EXPECT_EQ(assignments("mon_groups/a"), kAllOn);
    EXPECT_EQ(assignments("mon_groups/b"), kAllOn);
    EXPECT_EQ(assignments("mon_groups/c"), kAllOff);
    EXPECT_EQ(mgr_->assignFreeCounters(), 0u) << "none is free";
    mgr_->removeGroup("a");
    EXPECT_EQ(available(), "0=2;1=2\n");
    // The kernel gives counters only at mkdir: without rdtmond, c and d stay Unassigned.
    EXPECT_EQ(mgr_->assignFreeCounters(), 4u);
    EXPECT_EQ(assignments("mon_groups/c"), kAllOn);
    EXPECT_EQ(assignments("mon_groups/d"), kAllOff);
    EXPECT_EQ(available(), "0=0;1=0\n");
    EXPECT_EQ(mgr_->assignFreeCounters(), 0u);
}

TEST_F(CountersTest, AGroupGetsAnEventOnlyWhereEveryDomainItLacksHasOne) {
    start("mbm_event", 6);
    make("a");
    make("b");
    make("c"); // none left: all off
    // Free one counter on domain 0 only: no event of c can be counted on both domains.
    Resctrl r(emu_->path());
    r.setAssignment(MonGroupRef{"", "a"}, "mbm_local_bytes", 0, false);
    EXPECT_EQ(mgr_->assignFreeCounters(), 1u) << "a lacks just that one and is older";
    EXPECT_EQ(assignments("mon_groups/a"), kAllOn);
    r.setAssignment(MonGroupRef{"", "a"}, "mbm_local_bytes", std::nullopt, false);
    r.setAssignment(MonGroupRef{"", "b"}, "mbm_total_bytes", 1, false);
    // a takes its local back on both domains; the one on domain 1 of b's total goes to b.
    EXPECT_EQ(mgr_->assignFreeCounters(), 3u);
    EXPECT_EQ(assignments("mon_groups/a"), kAllOn);
    EXPECT_EQ(assignments("mon_groups/b"), kAllOn);
    EXPECT_EQ(assignments("mon_groups/c"), kAllOff);
}

TEST_F(CountersTest, GroupsNotOwnedAreNeverTouched) {
    start("mbm_event", 4);
    ASSERT_EQ(::mkdir((emu_->path() + "/mon_groups/other").c_str(), 0755), 0); // takes all
    ASSERT_EQ(::mkdir((emu_->path() + "/mon_groups/late").c_str(), 0755), 0);  // gets none
    make("ours");
    Resctrl r(emu_->path());
    r.setAssignment(MonGroupRef{"", "other"}, "mbm_total_bytes", std::nullopt, false);
    EXPECT_EQ(mgr_->assignFreeCounters(), 2u);
    EXPECT_EQ(assignments("mon_groups/ours"), "mbm_total_bytes:0=e;1=e\nmbm_local_bytes:0=_;1=_\n");
    EXPECT_EQ(assignments("mon_groups/late"), kAllOff);
    EXPECT_EQ(assignments("mon_groups/other"),
              "mbm_total_bytes:0=_;1=_\nmbm_local_bytes:0=e;1=e\n");
}

TEST_F(CountersTest, NothingHappensOutsideMbmEventMode) {
    start("default", 4);
    make("a");
    EXPECT_EQ(mgr_->assignFreeCounters(), 0u);
    emu_.reset();
    start("", 4); // a kernel before 6.18
    make("b");
    EXPECT_EQ(mgr_->assignFreeCounters(), 0u);
}

TEST_F(CountersTest, WithAssignOnMkdirOffNewGroupsGetCountersFromRdtmond) {
    start("mbm_event", 8);
    writeFile(emu_->path() + "/info/L3_MON/mbm_assign_on_mkdir", "0\n");
    make("a");
    EXPECT_EQ(assignments("mon_groups/a"), kAllOff);
    EXPECT_EQ(mgr_->assignFreeCounters(), 4u);
    EXPECT_EQ(assignments("mon_groups/a"), kAllOn);
}

} // namespace
