// CountGenerations: when a count's generation changes (first seen, made again, gone and
// back, gone down, restarted by an assignment) and when it does not, and that a new one is
// always above every one given before.

#include "CountGenerations.h"

#include <gtest/gtest.h>

using rdtmon::Counters;
using rdtmon::CountGenerations;

namespace {

Counters two(uint64_t total, uint64_t local) {
    return {{"mon_L3_00", {{"mbm_total_bytes", total}, {"mbm_local_bytes", local}}},
            {"mon_L3_01", {{"mbm_total_bytes", total}}}};
}

TEST(CountGenerations, ACountThatGrowsKeepsItsGeneration) {
    CountGenerations g;
    const auto first = g.observe("c:a", 1, two(10, 5), 1000);
    EXPECT_GE(first.at("mon_L3_00").at("mbm_total_bytes"), 1000u) << "seen at 1000";
    EXPECT_LE(first.at("mon_L3_00").at("mbm_total_bytes"), 1002u);
    EXPECT_NE(first.at("mon_L3_00").at("mbm_total_bytes"),
              first.at("mon_L3_01").at("mbm_total_bytes"))
        << "given one at a time, each above the last";
    EXPECT_EQ(g.observe("c:a", 1, two(10, 5), 2000), first) << "the same value";
    EXPECT_EQ(g.observe("c:a", 1, two(900, 600), 3000), first);
}

TEST(CountGenerations, DecimalValuesHaveGenerationsUnderTheSameRules) {
    CountGenerations g;
    const rdtmon::Decimals pkg = {{"mon_PERF_PKG_00", {{"core_energy", 12.5}}}};
    const auto first = g.observe("c:a", 1, two(10, 5), 1000, pkg);
    const uint64_t e = first.at("mon_PERF_PKG_00").at("core_energy");
    EXPECT_GE(e, 1000u);
    const rdtmon::Decimals more = {{"mon_PERF_PKG_00", {{"core_energy", 12.500001}}}};
    EXPECT_EQ(g.observe("c:a", 1, two(10, 5), 2000, more).at("mon_PERF_PKG_00").at("core_energy"),
              e)
        << "a millionth of a joule more is growth";
    const rdtmon::Decimals restarted = {{"mon_PERF_PKG_00", {{"core_energy", 0.25}}}};
    const auto after = g.observe("c:a", 1, two(10, 5), 3000, restarted);
    EXPECT_GT(after.at("mon_PERF_PKG_00").at("core_energy"), e);
    EXPECT_EQ(after.at("mon_L3_00").at("mbm_total_bytes"),
              first.at("mon_L3_00").at("mbm_total_bytes"));
    // A read without it (the package gone): new when it comes back.
    const auto gone = g.observe("c:a", 1, two(10, 5), 4000);
    EXPECT_EQ(gone.count("mon_PERF_PKG_00"), 0u);
    EXPECT_GT(
        g.observe("c:a", 1, two(10, 5), 5000, restarted).at("mon_PERF_PKG_00").at("core_energy"),
        after.at("mon_PERF_PKG_00").at("core_energy"));
}

TEST(CountGenerations, AValueThatGoesDownStartsANewGeneration) {
    CountGenerations g;
    const auto first = g.observe("c:a", 1, two(100, 50), 1000);
    const auto after = g.observe("c:a", 1, two(100, 7), 2000);
    EXPECT_GT(after.at("mon_L3_00").at("mbm_local_bytes"),
              first.at("mon_L3_00").at("mbm_local_bytes"));
    EXPECT_EQ(after.at("mon_L3_00").at("mbm_total_bytes"),
              first.at("mon_L3_00").at("mbm_total_bytes"))
        << "only the count that went down";
}

TEST(CountGenerations, ACountThatWasMissingIsNewWhenItComesBack) {
    CountGenerations g;
    const auto first = g.observe("c:a", 1, two(100, 50), 1000);
    // Unassigned on one domain: the event is not in the read.
    g.observe("c:a", 1, {{"mon_L3_00", {{"mbm_total_bytes", 120}, {"mbm_local_bytes", 60}}}}, 2000);
    // Back, and higher than before: nothing in the value says that it restarted.
    const auto back = g.observe("c:a", 1, two(500, 70), 3000);
    EXPECT_GT(back.at("mon_L3_01").at("mbm_total_bytes"), 2000u);
    EXPECT_EQ(back.at("mon_L3_00").at("mbm_total_bytes"),
              first.at("mon_L3_00").at("mbm_total_bytes"));
}

TEST(CountGenerations, AGroupMadeAgainHasNewCountsAndKeysDoNotMix) {
    CountGenerations g;
    const auto first = g.observe("c:a", 1, two(100, 50), 1000);
    const auto other = g.observe("r:a", 1, two(100, 50), 1000); // a runtime's, same id
    EXPECT_NE(other.at("mon_L3_00").at("mbm_total_bytes"),
              first.at("mon_L3_00").at("mbm_total_bytes"));
    const auto again = g.observe("c:a", 2, two(5000, 5000), 1500);
    for (const auto& [domain, events] : again) {
        for (const auto& [event, gen] : events) {
            EXPECT_GT(gen, other.at("mon_L3_00").at("mbm_total_bytes")) << domain << event;
        }
    }
}

TEST(CountGenerations, AnAssignmentRestartsThatEventOnly) {
    CountGenerations g;
    const auto first = g.observe("c:a", 1, two(100, 50), 1000);
    g.restart("c:a", "mbm_total_bytes");
    g.restart("c:unknown", "mbm_total_bytes"); // never read: nothing to do
    const auto after = g.observe("c:a", 1, two(200, 60), 2000);
    EXPECT_GE(after.at("mon_L3_00").at("mbm_total_bytes"), 2000u);
    EXPECT_GE(after.at("mon_L3_01").at("mbm_total_bytes"), 2000u);
    EXPECT_EQ(after.at("mon_L3_00").at("mbm_local_bytes"),
              first.at("mon_L3_00").at("mbm_local_bytes"));
}

TEST(CountGenerations, AModeSwitchRestartsThatEventOfEveryGroupAndAMountEveryCount) {
    CountGenerations g;
    const auto a1 = g.observe("c:a", 1, two(100, 50), 1000);
    const auto r1 = g.observe("/", 0, two(900, 500), 1000);
    g.restartAll("mbm_local_bytes");
    const auto a2 = g.observe("c:a", 1, two(200, 60), 2000);
    const auto r2 = g.observe("/", 0, two(1900, 600), 2000);
    EXPECT_GE(a2.at("mon_L3_00").at("mbm_local_bytes"), 2000u);
    EXPECT_GE(r2.at("mon_L3_00").at("mbm_local_bytes"), 2000u);
    EXPECT_EQ(a2.at("mon_L3_00").at("mbm_total_bytes"), a1.at("mon_L3_00").at("mbm_total_bytes"));
    EXPECT_EQ(r2.at("mon_L3_01").at("mbm_total_bytes"), r1.at("mon_L3_01").at("mbm_total_bytes"));
    g.restartAll("");
    const auto a3 = g.observe("c:a", 1, two(300, 70), 3000);
    for (const auto& [domain, events] : a3) {
        for (const auto& [event, gen] : events) {
            EXPECT_GE(gen, 3000u) << domain << " " << event;
        }
    }
}

TEST(CountGenerations, NewGenerationsAlwaysRiseEvenWhenTheClockDoesNot) {
    CountGenerations g;
    uint64_t last = 0;
    for (uint64_t v = 10; v > 0; --v) { // every read a drop, all at one instant
        const auto gens = g.observe("c:a", 1, {{"mon_L3_00", {{"mbm_total_bytes", v}}}}, 50);
        const uint64_t now = gens.at("mon_L3_00").at("mbm_total_bytes");
        EXPECT_GT(now, last);
        last = now;
    }
}

TEST(CountGenerations, ASweepForgetsTheGroupsNoReadFound) {
    CountGenerations g;
    g.observe("c:a", 1, two(1, 1), 1000);
    g.observe("c:b", 1, two(1, 1), 1000);
    g.sweep();
    EXPECT_EQ(g.groups(), 2u);
    g.observe("c:a", 1, two(2, 2), 2000);
    g.sweep();
    EXPECT_EQ(g.groups(), 1u) << "b was not in the last full read";
    const auto back = g.observe("c:b", 1, two(3, 3), 3000);
    EXPECT_GE(back.at("mon_L3_00").at("mbm_total_bytes"), 3000u) << "forgotten, so new";
}

} // namespace
