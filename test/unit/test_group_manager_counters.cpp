// GroupManager::runCounters against resctrl-emu in mbm_event mode: while the owned groups
// fit, each holds its counters; when they do not, they take turns, each turn is measured
// and its group then served a count that goes on at the measured rate; pinned groups keep
// theirs; groups not owned and other modes are left alone. The plan runs on the times the
// test passes; the counts, on the emulator's clock.
#include "Clock.h"
#include "EmulatorMount.h"
#include "GroupManager.h"
#include "GroupRegistry.h"
#include "ManagerRestart.h"
#include "Proc.h"
#include "Resctrl.h"
#include "TempDir.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <chrono>
#include <sys/stat.h>
#include <thread>

using namespace rdtmon;
using namespace rdtmon::test;

namespace {

constexpr const char* kAllOn = "mbm_total_bytes:0=e;1=e\nmbm_local_bytes:0=e;1=e\n";
constexpr const char* kAllOff = "mbm_total_bytes:0=_;1=_\nmbm_local_bytes:0=_;1=_\n";

constexpr uint64_t kSec = 1'000'000;

class CountersTest : public ::testing::Test {
protected:
    void start(const std::string& mode, unsigned counters, CountersConfig cfg = {}) {
        emu_ = std::make_unique<EmulatorMount>(
            EmulatorOptions{.numRmids = 16, .mbmAssign = mode, .numMbmCntrs = counters});
        reopenManager(mgr_, registry_, state_.file("state"), emulatorOpener(*emu_), {},
                      [this] { return now_++; });
        mgr_->setCounterSettings(cfg);
    }
    // A group of our own for a fresh sleeper (made in order: older first).
    void make(const std::string& id, const Labels& labels = {}) {
        sleepers_.push_back(std::make_unique<ChildProcess>(spawnSleeper(0)));
        mgr_->createGroup(id, static_cast<uint32_t>(sleepers_.back()->pid()), labels);
    }
    // The served counts of an owned group as a read gets them, later bytes after now (the
    // sampled counts run on CLOCK_MONOTONIC, the plan on the times the test passes).
    GroupCounters served(const std::string& id, uint64_t later = 0) {
        GroupCounters g{id, {}, {}, {}, {}, {}};
        mgr_->applySampled(g, monotonicUsec() + later);
        return g;
    }
    // Runs the plan at t, then lets the emulator's clock run for a while.
    void turn(uint64_t t, bool changed = false) {
        mgr_->runCounters(t, changed);
        std::this_thread::sleep_for(std::chrono::milliseconds(150));
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

    // x, pg, pg2, y and z on three groups' worth of counters, pg and pg2 pinned (by these
    // labels): pinned at most half, so pg keeps its counters at every turn and pg2, beyond
    // the bound, takes turns.
    void expectTheFirstPinnedKeptAndTheSecondRotating(const Labels& pg, const Labels& pg2,
                                                      const CountersConfig& cfg = {}) {
        start("mbm_event", 8, cfg);
        make("x");
        make("pg", pg);
        make("pg2", pg2);
        make("y");
        make("z");
        uint64_t t = kSec;
        turn(t, true);
        for (int i = 0; i < 6; ++i) {
            EXPECT_EQ(assignments("mon_groups/pg"), kAllOn) << "turn " << i;
            t = mgr_->countersDueUsec();
            turn(t);
        }
        EXPECT_EQ(mgr_->counterStats().continuous, 1u) << "pg2 is beyond the bound: it rotates";
        EXPECT_TRUE(served("pg").windowUsec.empty());
        EXPECT_FALSE(served("pg2").windowUsec.empty());
    }
};

TEST_F(CountersTest, WhileTheyFitEveryOwnedGroupHoldsItsCounters) {
    start("mbm_event", 8); // the default group holds 2 per domain: three groups' worth
    writeFile(emu_->path() + "/info/L3_MON/mbm_assign_on_mkdir", "0\n");
    for (const char* id : {"a", "b", "c"}) {
        make(id);
    }
    EXPECT_EQ(assignments("mon_groups/a"), kAllOff) << "no counter at mkdir";
    mgr_->runCounters(kSec, true);
    for (const char* id : {"a", "b", "c"}) {
        EXPECT_EQ(assignments(std::string("mon_groups/") + id), kAllOn) << id;
        EXPECT_TRUE(served(id).windowUsec.empty()) << "read as the kernel counts it";
    }
    const auto st = mgr_->counterStats();
    EXPECT_EQ(st.continuous, 3u);
    EXPECT_EQ(st.rotating, 0u);
    EXPECT_EQ(mgr_->countersDueUsec(), 0u) << "nothing to do until something changes";
    EXPECT_EQ(available(), "0=0;1=0\n");
}

TEST_F(CountersTest, MoreGroupsThanFitTakeTurnsAndEachTurnIsMeasured) {
    start("mbm_event", 6); // two groups' worth
    const std::map<std::string, uint64_t> rates = {
        {"a", 100'000'000}, {"b", 200'000'000}, {"c", 300'000'000}, {"d", 400'000'000}};
    for (const auto& [id, bps] : rates) {
        make(id);
        emu_->drive("mon_groups/" + id, bps, bps / 10, 1 << 20);
    }
    EXPECT_EQ(assignments("mon_groups/c"), kAllOff) << "a and b took them at mkdir";
    uint64_t t = kSec;
    turn(t, true);
    EXPECT_EQ(mgr_->counterStats().rotating, 4u);
    EXPECT_GT(mgr_->counterStats().cycleUsec, 0u);
    // Two turns: everyone measured once.
    for (int i = 0; i < 2; ++i) {
        t = mgr_->countersDueUsec();
        ASSERT_GT(t, 0u);
        turn(t);
    }
    for (const auto& [id, bps] : rates) {
        const GroupCounters g = served(id);
        ASSERT_EQ(g.windowUsec.size(), 2u) << id << ": both domains measured";
        for (const char* domain : {"mon_L3_00", "mon_L3_01"}) {
            const uint64_t window = g.windowUsec.at(domain).at("mbm_total_bytes");
            EXPECT_GT(window, 100'000u) << id;
            // The emulator drives each domain at half the rate. Short turns on a loaded
            // machine: a wide margin (the benchmark measures the error).
            const double rate =
                static_cast<double>(served(id, kSec).counters.at(domain).at("mbm_total_bytes") -
                                    g.counters.at(domain).at("mbm_total_bytes"));
            EXPECT_NEAR(rate, bps / 2.0, 0.2 * bps / 2.0) << id << " " << domain;
            EXPECT_GT(g.counters.at(domain).at("mbm_local_bytes"), 0u) << id;
        }
    }
    // Between turns a group's count goes on at its rate: never Unassigned, never down.
    const uint64_t now = served("a").counters.at("mon_L3_00").at("mbm_total_bytes");
    const uint64_t later = served("a", 10 * kSec).counters.at("mon_L3_00").at("mbm_total_bytes");
    EXPECT_NEAR(static_cast<double>(later - now), 10 * 50e6, 0.2 * 10 * 50e6);
    // At most two hold at any time.
    int holding = 0;
    for (const auto& [id, bps] : rates) {
        holding += assignments("mon_groups/" + id) == kAllOn ? 1 : 0;
    }
    EXPECT_EQ(holding, 2);
}

TEST_F(CountersTest, PinnedGroupsKeepTheirCounters) {
    CountersConfig cfg;
    cfg.pin = {{{"namespace", "db"}}};
    expectTheFirstPinnedKeptAndTheSecondRotating({{"namespace", "db"}, {"pod", "pg-0"}},
                                                 {{"namespace", "db"}}, cfg);
}

// The hook's label from the annotation org.rdtmon.counters=pinned pins without any
// configuration, within the same bound.
TEST_F(CountersTest, TheHooksPinLabelPinsWithoutConfiguration) {
    expectTheFirstPinnedKeptAndTheSecondRotating({{"counters", "pinned"}},
                                                 {{"counters", "pinned"}});
}

TEST_F(CountersTest, GroupsNotOwnedAreNeverTouched) {
    start("mbm_event", 6);
    ASSERT_EQ(::mkdir((emu_->path() + "/mon_groups/other").c_str(), 0755), 0); // takes 2
    make("a");
    make("b");
    make("c");
    uint64_t t = kSec;
    turn(t, true);
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(assignments("mon_groups/other"), kAllOn);
        t = mgr_->countersDueUsec();
        ASSERT_GT(t, 0u);
        turn(t);
    }
    EXPECT_EQ(mgr_->counterStats().rotating, 3u) << "one group's worth left for three";
}

TEST_F(CountersTest, NothingHappensOutsideMbmEventMode) {
    for (const char* mode : {"default", "intel", ""}) {
        SCOPED_TRACE(mode);
        start(mode, 4);
        make("a");
        mgr_->runCounters(kSec, true);
        EXPECT_EQ(mgr_->counterStats().continuous + mgr_->counterStats().rotating, 0u);
        EXPECT_EQ(mgr_->countersDueUsec(), 0u);
        mgr_->removeGroup("a");
        mgr_.reset();
        emu_.reset();
    }
}

TEST_F(CountersTest, ASwitchOutOfMbmEventModeEndsTheTurns) {
    start("mbm_event", 6);
    for (const char* id : {"a", "b", "c"}) {
        make(id);
    }
    uint64_t t = kSec;
    turn(t, true);
    turn(mgr_->countersDueUsec());
    ASSERT_FALSE(served("a").windowUsec.empty());
    writeFile(emu_->path() + "/info/L3_MON/mbm_assign_mode", "default\n");
    mgr_->runCounters(t + kSec, true);
    EXPECT_EQ(mgr_->counterStats().rotating, 0u);
    EXPECT_TRUE(served("a").windowUsec.empty()) << "the kernel's counts again";
    EXPECT_EQ(mgr_->countersDueUsec(), 0u);
}

} // namespace
