// Manager.GetAllValues end to end: every value with its generation, through busctl as nobody
// (the real policy), against rdtmond over resctrl-emu. A generation holds while a count
// grows and changes when the count restarts: reset by the kernel, the group made again with
// the same id, or a counter given to a group that read Unassigned.

#include "AllValues.h"
#include "DaemonOnEmulator.h"
#include "EmulatorMount.h"
#include "Proc.h"
#include "RdtmonClient.h"
#include "Subprocess.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

using namespace rdtmon::test;

namespace {

uint64_t monotonicUsecNow() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
}

// GetAllValues through busctl as nobody; every value these tests read is a count.
AllValues readAsNobody(const PrivateBus& bus) {
    AllValues r = allValuesByBusctl(bus);
    EXPECT_EQ(r.signature, "ta(sa{ss}a(ssvttt))");
    for (const auto& [key, v] : r.values) {
        EXPECT_EQ(v.type, 't') << std::get<0>(key) << " " << std::get<2>(key);
    }
    return r;
}

const ServedValue& at(const AllValues& r, const std::string& id, const std::string& event,
                      const std::string& domain = "mon_L3_00") {
    static const ServedValue none;
    const auto it = r.values.find({id, domain, event});
    if (it == r.values.end()) {
        ADD_FAILURE() << "no " << event << " on " << domain << " of " << id;
        return none;
    }
    return it->second;
}

class GenerationsTest : public ::testing::Test, protected DaemonOnEmulator {};

TEST_F(GenerationsTest, AGrowingCountKeepsItsGenerationAndAResetChangesIt) {
    ChildProcess s(spawnSleeper(0));
    RdtmonClient c(bus_.address());
    const uint64_t made = monotonicUsecNow();
    ASSERT_TRUE(c.createGroup("web", static_cast<uint32_t>(s.pid())).ok());
    emu_.drive("mon_groups/web", 100'000'000, 10'000'000, 1 << 20);

    const AllValues a = readAsNobody(bus_);
    EXPECT_EQ(a.order.front(), "web");
    const ServedValue& ta = at(a, "web", "mbm_total_bytes");
    // About when rdtmond first saw the count: the pass's time, each new one a step above
    // the last one given.
    EXPECT_GE(ta.generation, made);
    EXPECT_LE(ta.generation, a.monotonicUsec + a.values.size());
    EXPECT_EQ(ta.windowUsec, 0u) << "a count read in the pass";
    EXPECT_EQ(ta.measuredUsec, a.monotonicUsec);
    // Every value has one, CTRL_MON groups' too.
    for (const auto& [key, v] : a.values) {
        EXPECT_GT(v.generation, 0u) << std::get<0>(key) << " " << std::get<2>(key);
    }

    std::this_thread::sleep_for(std::chrono::milliseconds(600)); // passes are 500 ms apart
    const AllValues b = readAsNobody(bus_);
    EXPECT_GT(at(b, "web", "mbm_total_bytes").count, ta.count);
    EXPECT_EQ(at(b, "web", "mbm_total_bytes").generation, ta.generation);
    EXPECT_EQ(at(b, "/", "mbm_total_bytes").generation, at(a, "/", "mbm_total_bytes").generation);

    // Local stops, then counts from 0: it stays below what was read, however late the next
    // read comes (a restart that climbs past the last value read unseen cannot be told).
    emu_.drive("mon_groups/web", 100'000'000, 0, 1 << 20);
    emu_.resetCounter("mon_groups/web", "mbm_local_bytes");
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    const AllValues r = readAsNobody(bus_);
    EXPECT_GT(at(r, "web", "mbm_local_bytes").generation,
              at(b, "web", "mbm_local_bytes").generation);
    EXPECT_LT(at(r, "web", "mbm_local_bytes").count, at(b, "web", "mbm_local_bytes").count);
    EXPECT_EQ(at(r, "web", "mbm_total_bytes").generation, ta.generation) << "not reset";
}

TEST_F(GenerationsTest, AGroupMadeAgainWithTheSameIdHasNewGenerations) {
    RdtmonClient c(bus_.address());
    ChildProcess s1(spawnSleeper(0));
    ASSERT_TRUE(c.createGroup("app", static_cast<uint32_t>(s1.pid())).ok());
    emu_.drive("mon_groups/app", 100'000'000, 10'000'000, 1 << 20);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const AllValues a = readAsNobody(bus_);
    ASSERT_TRUE(c.removeGroup("app").ok());
    ChildProcess s2(spawnSleeper(0));
    ASSERT_TRUE(c.createGroup("app", static_cast<uint32_t>(s2.pid())).ok());
    // Driven faster, so its count is above the old one when read: only the generation says
    // that it is another count.
    emu_.drive("mon_groups/app", 4'000'000'000, 400'000'000, 1 << 20);
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    const AllValues b = readAsNobody(bus_);
    for (const char* event : {"mbm_total_bytes", "mbm_local_bytes"}) {
        ASSERT_GT(at(b, "app", event).count, at(a, "app", event).count) << event;
        EXPECT_GT(at(b, "app", event).generation, at(a, "app", event).generation) << event;
    }
}

} // namespace

// On a node in mbm_event mode: a group that read Unassigned gets its counts, each with a
// generation newer than any it had, when rdtmond gives it the counters a removal freed.
TEST(GenerationsAssign, ACounterGivenToAGroupStartsANewGeneration) {
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
    const AllValues before = readAsNobody(bus);
    EXPECT_EQ(before.values.count({"c", "mon_L3_00", "mbm_total_bytes"}), 0u) << "Unassigned";
    const uint64_t llcGen = at(before, "c", "llc_occupancy").generation;
    ASSERT_TRUE(c.removeGroup("a").ok());
    AllValues after;
    EXPECT_TRUE(waitUntil(
        [&] {
            after = readAsNobody(bus);
            return after.values.count({"c", "mon_L3_01", "mbm_local_bytes"}) != 0;
        },
        std::chrono::seconds(10)));
    EXPECT_GT(at(after, "c", "mbm_total_bytes").generation, before.monotonicUsec);
    EXPECT_EQ(at(after, "c", "llc_occupancy").generation, llcGen) << "occupancy did not restart";
}
