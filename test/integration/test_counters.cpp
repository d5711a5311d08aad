// Assignable counters end to end: rdtmond on a private bus over resctrl-emu in mbm_event
// mode gives the counters a removal frees to the oldest of its groups without them, by
// itself, after the call (GroupManager::assignFreeCounters, run by the event loop).
#include "EmulatorMount.h"
#include "PrivateBus.h"
#include "Proc.h"
#include "RdtmonClient.h"
#include "RdtmondProcess.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

using namespace rdtmon::test;

namespace {

constexpr const char* kAllOn = "mbm_total_bytes:0=e;1=e\nmbm_local_bytes:0=e;1=e\n";
constexpr const char* kAllOff = "mbm_total_bytes:0=_;1=_\nmbm_local_bytes:0=_;1=_\n";

TEST(CountersEndToEnd, ARemovalsCountersGoToTheOldestGroupWithout) {
    // The default group holds 2 of each domain's 6: two containers' worth are left.
    EmulatorMount emu(EmulatorOptions{.mbmAssign = "mbm_event", .numMbmCntrs = 6});
    PrivateBus bus;
    Rdtmond d(bus, {.resctrl = emu.path(),
                    .configJson = R"({"gc":{"intervalSeconds":3600,"graceSeconds":3600}})"});
    RdtmonClient c(bus.address());
    std::vector<std::unique_ptr<ChildProcess>> sleepers;
    for (const char* id : {"a", "b", "c"}) {
        sleepers.push_back(std::make_unique<ChildProcess>(spawnSleeper(0)));
        ASSERT_TRUE(c.createGroup(id, static_cast<uint32_t>(sleepers.back()->pid())).ok());
    }
    auto assignments = [&](const std::string& id) {
        return readFile(emu.path() + "/mon_groups/" + id + "/mbm_L3_assignments");
    };
    EXPECT_EQ(assignments("b"), kAllOn);
    EXPECT_EQ(assignments("c"), kAllOff) << "none was left at its mkdir";
    ASSERT_TRUE(c.removeGroup("a").ok());
    EXPECT_TRUE(waitUntil([&] { return assignments("c") == kAllOn; }, std::chrono::seconds(5)))
        << assignments("c");
    EXPECT_EQ(readFile(emu.path() + "/info/L3_MON/available_mbm_cntrs"), "0=0;1=0\n");
    EXPECT_TRUE(d.running());
}

} // namespace
