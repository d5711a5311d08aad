// Assignable counters end to end: rdtmond on a private bus over resctrl-emu in mbm_event
// mode with more groups than counters. Every group gets a bandwidth figure, each at its
// driven rate, with one generation while it takes turns; pinned groups keep their counters;
// groups rdtmond does not own are left alone; a switch to default mode and back ends and
// restarts the turns. Values are read through busctl as nobody (the real policy).

#include "AllValues.h"
#include "EmulatorMount.h"
#include "PrivateBus.h"
#include "Proc.h"
#include "RdtmonClient.h"
#include "RdtmondProcess.h"
#include "Subprocess.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <tuple>
#include <vector>

using namespace rdtmon::test;

namespace {

constexpr const char* kAllOn = "mbm_total_bytes:0=e;1=e\nmbm_local_bytes:0=e;1=e\n";
// Turns as short as they go (half a second), so that a cycle of a few groups is quick.
constexpr const char* kFastTurns =
    R"({"gc":{"intervalSeconds":3600,"graceSeconds":3600},"counters":{"cycleSeconds":1)";

class RotationTest : public ::testing::Test {
protected:
    void start(unsigned counters, const std::string& countersJson = "}}") {
        emu_ = std::make_unique<EmulatorMount>(
            EmulatorOptions{.numRmids = 32, .mbmAssign = "mbm_event", .numMbmCntrs = counters});
        daemon_ = std::make_unique<Rdtmond>(
            bus_, Rdtmond::Options{.resctrl = emu_->path(),
                                   .configJson = std::string(kFastTurns) + countersJson});
        client_ = std::make_unique<RdtmonClient>(bus_.address());
    }
    void make(const std::string& id, uint64_t totalBps,
              const std::map<std::string, std::string>& labels = {}) {
        sleepers_.push_back(std::make_unique<ChildProcess>(spawnSleeper(0)));
        Pidfd fd(sleepers_.back()->pid());
        ASSERT_TRUE(client_->createContainerGroup(id, fd.get(), labels).ok());
        emu_->drive("mon_groups/" + id, totalBps, totalBps / 4, 1 << 20);
        rates_[id] = totalBps;
    }
    std::string assignments(const std::string& group) const {
        return readFile(emu_->path() + "/" + group + "/mbm_L3_assignments");
    }
    // Until every group has both events on both domains.
    AllValues waitForAllFigures(std::chrono::seconds timeout) {
        AllValues r;
        const bool all = waitUntil(
            [&] {
                r = allValuesByBusctl(bus_);
                for (const auto& [id, bps] : rates_) {
                    for (const char* d : {"mon_L3_00", "mon_L3_01"}) {
                        for (const char* e : {"mbm_total_bytes", "mbm_local_bytes"}) {
                            if (!r.has(id, d, e)) {
                                return false;
                            }
                        }
                    }
                }
                return true;
            },
            timeout);
        EXPECT_TRUE(all) << "not every group has a figure";
        return r;
    }

    PrivateBus bus_;
    std::unique_ptr<EmulatorMount> emu_;
    std::unique_ptr<Rdtmond> daemon_;
    std::unique_ptr<RdtmonClient> client_;
    std::vector<std::unique_ptr<ChildProcess>> sleepers_;
    std::map<std::string, uint64_t> rates_;
};

TEST_F(RotationTest, MoreGroupsThanCountersAreAllMeasuredEachAtItsRate) {
    start(6); // the default group holds 2 per domain: room for two groups of five
    for (const auto& [id, n] :
         {std::pair<const char*, uint64_t>{"c1", 1}, {"c2", 2}, {"c3", 3}, {"c4", 4}, {"c5", 5}}) {
        make(id, 100'000'000u * n);
    }
    EXPECT_TRUE(waitUntil([&] { return client_->property<uint32_t>("CountersRotating") == 5; },
                          std::chrono::seconds(10)));
    EXPECT_EQ(client_->property<uint32_t>("CountersContinuous"), 0u);
    const uint64_t cycle = client_->property<uint64_t>("CounterCycleUsec");
    EXPECT_GE(cycle, 1'000'000u) << "3 turns of at least half a second";
    EXPECT_LE(cycle, 2'000'000u);

    // Within the first cycle (and a margin for a loaded machine) everyone has a figure.
    const AllValues a = waitForAllFigures(std::chrono::seconds(20));
    int holding = 0;
    for (const auto& [id, bps] : rates_) {
        holding += assignments("mon_groups/" + id) == kAllOn ? 1 : 0;
    }
    EXPECT_LE(holding, 2) << "never more than fit";
    std::this_thread::sleep_for(std::chrono::seconds(3)); // two cycles and more
    const AllValues b = allValuesByBusctl(bus_);
    const double seconds = static_cast<double>(b.monotonicUsec - a.monotonicUsec) / 1e6;
    for (const auto& [id, bps] : rates_) {
        for (const char* d : {"mon_L3_00", "mon_L3_01"}) {
            const ServedValue& va = a.at(id, d, "mbm_total_bytes");
            const ServedValue& vb = b.at(id, d, "mbm_total_bytes");
            EXPECT_EQ(vb.generation, va.generation) << id << ": one count across its turns";
            EXPECT_GT(vb.windowUsec, 0u) << id << ": a figure measured over a turn";
            EXPECT_GE(vb.count, va.count) << id;
            // Each domain is driven at half the rate; a wide margin on a loaded machine (the
            // benchmark measures the error).
            const double rate = static_cast<double>(vb.count - va.count) / seconds;
            EXPECT_NEAR(rate, static_cast<double>(bps) / 2, 0.25 * static_cast<double>(bps) / 2)
                << id << " " << d;
        }
    }
    EXPECT_TRUE(daemon_->running());
}

TEST_F(RotationTest, PinnedGroupsKeepTheirCountersAndOthersAreLeftAlone) {
    start(8, R"(,"pin":[{"namespace":"db"}],"maxPinned":1}})"); // three groups' worth
    ASSERT_EQ(::mkdir((emu_->path() + "/mon_groups/native").c_str(), 0755), 0); // takes 2
    make("pg", 300'000'000, {{"namespace", "db"}, {"pod", "pg-0"}});
    for (const char* id : {"x", "y", "z"}) {
        make(id, 100'000'000);
    }
    EXPECT_TRUE(waitUntil([&] { return client_->property<uint32_t>("CountersRotating") == 3; },
                          std::chrono::seconds(10)));
    EXPECT_EQ(client_->property<uint32_t>("CountersContinuous"), 1u);
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (std::chrono::steady_clock::now() < end) {
        EXPECT_EQ(assignments("mon_groups/pg"), kAllOn);
        EXPECT_EQ(assignments("mon_groups/native"), kAllOn) << "not ours: never touched";
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    const AllValues r = waitForAllFigures(std::chrono::seconds(20));
    EXPECT_EQ(r.at("pg", "mon_L3_00", "mbm_total_bytes").windowUsec, 0u)
        << "read as the kernel counts it";
    EXPECT_GT(r.at("x", "mon_L3_00", "mbm_total_bytes").windowUsec, 0u);
}

TEST_F(RotationTest, ASwitchToDefaultModeEndsTheTurnsAndBackStartsThem) {
    start(6);
    for (const char* id : {"a", "b", "c"}) {
        make(id, 200'000'000);
    }
    const AllValues turns = waitForAllFigures(std::chrono::seconds(20));
    // An operator switches the mode: every count restarts, every group counts.
    writeFile(emu_->path() + "/info/L3_MON/mbm_assign_mode", "default\n");
    uint32_t removed = 0;
    ASSERT_TRUE(client_->garbageCollect(&removed).ok()); // a collection looks again
    EXPECT_TRUE(waitUntil([&] { return client_->property<uint32_t>("CountersRotating") == 0; },
                          std::chrono::seconds(10)));
    const AllValues dflt = waitForAllFigures(std::chrono::seconds(10));
    for (const char* id : {"a", "b", "c"}) {
        const ServedValue& v = dflt.at(id, "mon_L3_00", "mbm_total_bytes");
        EXPECT_EQ(v.windowUsec, 0u) << id;
        const ServedValue& t = turns.at(id, "mon_L3_00", "mbm_total_bytes");
        EXPECT_GT(v.generation, t.generation)
            << id << ": " << t.count << " (window " << t.windowUsec << ") then " << v.count;
    }
    // Back: the switch freed every counter, the default group's too, so all three fit.
    writeFile(emu_->path() + "/info/L3_MON/mbm_assign_mode", "mbm_event\n");
    ASSERT_TRUE(client_->garbageCollect(&removed).ok());
    EXPECT_TRUE(waitUntil([&] { return client_->property<uint32_t>("CountersContinuous") == 3; },
                          std::chrono::seconds(10)));
    make("d", 200'000'000); // and a fourth does not
    EXPECT_TRUE(waitUntil([&] { return client_->property<uint32_t>("CountersRotating") == 4; },
                          std::chrono::seconds(10)));
    EXPECT_TRUE(waitUntil(
        [&] {
            const AllValues r = allValuesByBusctl(bus_);
            return r.has("d", "mon_L3_01", "mbm_local_bytes") &&
                   r.at("d", "mon_L3_01", "mbm_local_bytes").windowUsec > 0;
        },
        std::chrono::seconds(20)))
        << "measured in turns again";
    EXPECT_TRUE(daemon_->running());
}

} // namespace
