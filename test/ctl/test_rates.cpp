// Rates from two bulk reads (client/Rates.h): bytes/s over the monotonic interval, and no
// rate at all where one would be a lie (a reset, a group made anew, an event missing).

#include "Rates.h"
#include "SampleCounters.h"

#include <gtest/gtest.h>

#include <cstdint>

using namespace rdtmon::client;
using rdtmon::test::l3Counters;
using rdtmon::test::snapshotAt;

namespace {

const GroupRates& only(const RateReport& r) {
    EXPECT_EQ(r.containers.size(), 1u);
    return r.containers.at(0);
}

} // namespace

TEST(Rates, BytesPerSecondOverTheMonotonicInterval) {
    const Snapshot a =
        snapshotAt(10'000'000, {{"c1", {{"pod", "p"}}, l3Counters(100, 1'000, 500)}});
    const Snapshot b = snapshotAt(
        12'000'000, {{"c1", {{"pod", "p"}}, l3Counters(4096, 1'000 + 20'000'000, 500 + 2'000)}});
    const RateReport r = computeRates(a, {{"c1", 7}}, b, {{"c1", 7}});
    EXPECT_DOUBLE_EQ(r.intervalSeconds, 2.0);
    const GroupRates& g = only(r);
    EXPECT_EQ(g.id, "c1");
    EXPECT_EQ(g.labels.at("pod"), "p");
    const Figures& f = g.domains.at("mon_L3_00");
    EXPECT_EQ(f.llcBytes, 4096u); // the latest value, not a difference
    EXPECT_DOUBLE_EQ(f.mbmTotalBytesPerSec.value(), 10'000'000.0);
    EXPECT_DOUBLE_EQ(f.mbmLocalBytesPerSec.value(), 1'000.0);
    EXPECT_EQ(g.total.llcBytes, 4096u);
    EXPECT_DOUBLE_EQ(g.total.mbmTotalBytesPerSec.value(), 10'000'000.0);
}

TEST(Rates, TotalsAddTheWholeL3DomainsAndNotTheirSncSubDomains) {
    Counters c0 = {{"mon_L3_00", {{"llc_occupancy", 10}, {"mbm_total_bytes", 100}}},
                   {"mon_L3_00/mon_sub_L3_00", {{"llc_occupancy", 4}, {"mbm_total_bytes", 40}}},
                   {"mon_L3_01", {{"llc_occupancy", 20}, {"mbm_total_bytes", 200}}}};
    Counters c1 = {{"mon_L3_00", {{"llc_occupancy", 11}, {"mbm_total_bytes", 1100}}},
                   {"mon_L3_00/mon_sub_L3_00", {{"llc_occupancy", 5}, {"mbm_total_bytes", 540}}},
                   {"mon_L3_01", {{"llc_occupancy", 21}, {"mbm_total_bytes", 2200}}}};
    const RateReport r = computeRates(snapshotAt(0, {{"c1", {}, c0}}), {{"c1", 1}},
                                      snapshotAt(1'000'000, {{"c1", {}, c1}}), {{"c1", 1}});
    const GroupRates& g = only(r);
    EXPECT_EQ(g.domains.size(), 3u);
    EXPECT_DOUBLE_EQ(g.domains.at("mon_L3_00/mon_sub_L3_00").mbmTotalBytesPerSec.value(), 500.0);
    EXPECT_EQ(g.total.llcBytes, 32u);
    EXPECT_DOUBLE_EQ(g.total.mbmTotalBytesPerSec.value(), 3000.0);
    // No mbm_local anywhere: no sum either.
    EXPECT_FALSE(g.total.mbmLocalBytesPerSec);
}

TEST(Rates, ACounterThatWentDownHasNoRate) {
    const RateReport r =
        computeRates(snapshotAt(0, {{"c1", {}, l3Counters(1, 5'000, 700)}}), {{"c1", 1}},
                     snapshotAt(1'000'000, {{"c1", {}, l3Counters(1, 10, 800)}}), {{"c1", 1}});
    const GroupRates& g = only(r);
    EXPECT_FALSE(g.domains.at("mon_L3_00").mbmTotalBytesPerSec);
    EXPECT_DOUBLE_EQ(g.domains.at("mon_L3_00").mbmLocalBytesPerSec.value(), 100.0);
    EXPECT_FALSE(g.total.mbmTotalBytesPerSec); // nor in the sum
    EXPECT_DOUBLE_EQ(g.total.mbmLocalBytesPerSec.value(), 100.0);
}

TEST(Rates, ACountWhoseGenerationChangedHasNoRateThoughItGrew) {
    Snapshot a = snapshotAt(0, {{"c1", {}, l3Counters(1, 100, 100)}});
    Snapshot b = snapshotAt(1'000'000, {{"c1", {}, l3Counters(1, 900, 900)}});
    a.groups[0].generations = {{"mon_L3_00", {{"mbm_total_bytes", 5}, {"mbm_local_bytes", 5}}}};
    b.groups[0].generations = {{"mon_L3_00", {{"mbm_total_bytes", 9}, {"mbm_local_bytes", 5}}}};
    const GroupRates g = only(computeRates(a, {{"c1", 1}}, b, {{"c1", 1}}));
    EXPECT_FALSE(g.domains.at("mon_L3_00").mbmTotalBytesPerSec) << "restarted: 900 is not +800";
    EXPECT_DOUBLE_EQ(g.domains.at("mon_L3_00").mbmLocalBytesPerSec.value(), 800.0);
    // A read without generations (an older rdtmond) is compared as before.
    b.groups[0].generations.clear();
    const GroupRates o = only(computeRates(a, {{"c1", 1}}, b, {{"c1", 1}}));
    EXPECT_DOUBLE_EQ(o.domains.at("mon_L3_00").mbmTotalBytesPerSec.value(), 800.0);
}

TEST(Rates, AGroupMadeAnewHasNoRateEvenWhenItsCountersGrew) {
    const Snapshot a = snapshotAt(0, {{"c1", {}, l3Counters(1, 100, 100)}});
    const Snapshot b = snapshotAt(1'000'000, {{"c1", {}, l3Counters(1, 900, 900)}});
    const GroupRates g = only(computeRates(a, {{"c1", 1}}, b, {{"c1", 2}}));
    EXPECT_FALSE(g.domains.at("mon_L3_00").mbmTotalBytesPerSec);
    EXPECT_FALSE(g.domains.at("mon_L3_00").mbmLocalBytesPerSec);
    EXPECT_EQ(g.domains.at("mon_L3_00").llcBytes, 1u); // occupancy needs no history
    // Not in the earlier read at all: no rate.
    const GroupRates n = only(computeRates(snapshotAt(0, {}), {}, b, {{"c1", 2}}));
    EXPECT_FALSE(n.total.mbmTotalBytesPerSec);
    // Not in the ListGroups taken with the later read (made meanwhile): no rate.
    const GroupRates m = only(computeRates(a, {{"c1", 1}}, b, {}));
    EXPECT_FALSE(m.total.mbmTotalBytesPerSec);
}

TEST(Rates, AnEventMissingFromEitherReadHasNoRate) {
    Counters unavailable = {{"mon_L3_00", {{"llc_occupancy", 5}, {"mbm_local_bytes", 10}}}};
    const Snapshot full0 = snapshotAt(0, {{"c1", {}, l3Counters(1, 100, 0)}});
    const Snapshot part1 = snapshotAt(1'000'000, {{"c1", {}, unavailable}});
    const GroupRates g = only(computeRates(full0, {{"c1", 1}}, part1, {{"c1", 1}}));
    EXPECT_FALSE(g.domains.at("mon_L3_00").mbmTotalBytesPerSec);
    EXPECT_DOUBLE_EQ(g.domains.at("mon_L3_00").mbmLocalBytesPerSec.value(), 10.0);
    const Snapshot part0 = snapshotAt(0, {{"c1", {}, unavailable}});
    const Snapshot full1 = snapshotAt(1'000'000, {{"c1", {}, l3Counters(1, 100, 20)}});
    const GroupRates h = only(computeRates(part0, {{"c1", 1}}, full1, {{"c1", 1}}));
    EXPECT_FALSE(h.domains.at("mon_L3_00").mbmTotalBytesPerSec);
    // llc_occupancy Unavailable now: no occupancy either.
    Counters noLlc = {{"mon_L3_00", {{"mbm_total_bytes", 5}}}};
    const GroupRates k =
        only(computeRates(full0, {{"c1", 1}}, snapshotAt(1, {{"c1", {}, noLlc}}), {{"c1", 1}}));
    EXPECT_FALSE(k.domains.at("mon_L3_00").llcBytes);
    EXPECT_FALSE(k.total.llcBytes);
}

TEST(Rates, NoIntervalMeansNoRate) {
    const Snapshot a = snapshotAt(5, {{"c1", {}, l3Counters(1, 100, 100)}});
    const Snapshot b = snapshotAt(5, {{"c1", {}, l3Counters(1, 200, 200)}});
    const RateReport r = computeRates(a, {{"c1", 1}}, b, {{"c1", 1}});
    EXPECT_EQ(r.intervalSeconds, 0.0);
    EXPECT_FALSE(only(r).total.mbmTotalBytesPerSec);
    // A clock going backwards (reads swapped) is no interval either.
    EXPECT_FALSE(
        only(computeRates(b, {{"c1", 1}}, snapshotAt(1, {{"c1", {}, l3Counters(1, 300, 300)}}),
                          {{"c1", 1}}))
            .total.mbmTotalBytesPerSec);
}

TEST(Rates, ClosGroupsAreSeparateSortedAndNeedNoCreationTime) {
    const Snapshot a = snapshotAt(0, {{"/c1", {}, l3Counters(0, 0, 0)},
                                      {"/", {}, l3Counters(0, 1000, 0)},
                                      {"b", {}, l3Counters(0, 0, 0)},
                                      {"a", {}, l3Counters(0, 0, 0)}});
    const Snapshot b = snapshotAt(1'000'000, {{"/c1", {}, l3Counters(0, 10, 0)},
                                              {"/", {}, l3Counters(0, 3000, 0)},
                                              {"b", {}, l3Counters(0, 0, 0)},
                                              {"a", {}, l3Counters(0, 0, 0)}});
    const CreatedTimes t{{"a", 1}, {"b", 1}};
    const RateReport r = computeRates(a, t, b, t);
    ASSERT_EQ(r.closes.size(), 2u);
    EXPECT_EQ(r.closes[0].id, "/");
    EXPECT_EQ(r.closes[1].id, "/c1");
    EXPECT_DOUBLE_EQ(r.closes[0].total.mbmTotalBytesPerSec.value(), 2000.0);
    ASSERT_EQ(r.containers.size(), 2u);
    EXPECT_EQ(r.containers[0].id, "a");
    EXPECT_EQ(r.containers[1].id, "b");
}

TEST(Rates, TheShareOutsideContainersIsTheClosMinusItsContainersNeverBelowZero) {
    Counters clos0 = {{"mon_L3_00", {{"llc_occupancy", 0}, {"mbm_total_bytes", 0}}},
                      {"mon_L3_01", {{"llc_occupancy", 0}, {"mbm_total_bytes", 0}}}};
    Counters clos1 = {{"mon_L3_00", {{"llc_occupancy", 1000}, {"mbm_total_bytes", 10'000}}},
                      {"mon_L3_01", {{"llc_occupancy", 50}, {"mbm_total_bytes", 100}}}};
    Counters a0 = {{"mon_L3_00", {{"llc_occupancy", 0}, {"mbm_total_bytes", 0}}},
                   {"mon_L3_01", {{"llc_occupancy", 0}, {"mbm_total_bytes", 0}}}};
    Counters a1 = {{"mon_L3_00", {{"llc_occupancy", 600}, {"mbm_total_bytes", 4000}}},
                   // More than the CLOS read a moment earlier: clamped, not negative.
                   {"mon_L3_01", {{"llc_occupancy", 80}, {"mbm_total_bytes", 300}}}};
    const CreatedTimes t{{"a", 1}, {"other", 1}};
    const RateReport r = computeRates(
        snapshotAt(0, {{"/", {}, clos0}, {"a", {}, a0}, {"other", {}, a0}}), t,
        snapshotAt(1'000'000, {{"/", {}, clos1}, {"a", {}, a1}, {"other", {}, a1}}), t);
    // "other" is in another CLOS: not subtracted from "/".
    const auto out = outsideContainers(r, {{"a", "/"}, {"other", "/c9"}});
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].id, "/");
    EXPECT_EQ(out[0].domains.at("mon_L3_00").llcBytes, 400u);
    EXPECT_DOUBLE_EQ(out[0].domains.at("mon_L3_00").mbmTotalBytesPerSec.value(), 6000.0);
    EXPECT_EQ(out[0].domains.at("mon_L3_01").llcBytes, 0u);
    EXPECT_DOUBLE_EQ(out[0].domains.at("mon_L3_01").mbmTotalBytesPerSec.value(), 0.0);
    EXPECT_EQ(out[0].total.llcBytes, 1050u - 680u);
    EXPECT_DOUBLE_EQ(out[0].total.mbmTotalBytesPerSec.value(), 10'100.0 - 4300.0);
    // A container without a rate makes the share unknown, not larger.
    const CreatedTimes anew{{"a", 2}, {"other", 1}};
    const RateReport s =
        computeRates(snapshotAt(0, {{"/", {}, clos0}, {"a", {}, a0}}), t,
                     snapshotAt(1'000'000, {{"/", {}, clos1}, {"a", {}, a1}}), anew);
    const auto unknown = outsideContainers(s, {{"a", "/"}});
    EXPECT_FALSE(unknown[0].total.mbmTotalBytesPerSec);
    EXPECT_FALSE(unknown[0].domains.at("mon_L3_00").mbmTotalBytesPerSec);
    EXPECT_EQ(unknown[0].total.llcBytes, 1050u - 680u);
}

TEST(Rates, TheClosOfAGroupComesFromItsPath) {
    EXPECT_EQ(closOfGroup("/sys/fs/resctrl/mon_groups/x", "x", "/sys/fs/resctrl"), "/");
    EXPECT_EQ(closOfGroup("/sys/fs/resctrl/c1/mon_groups/x", "x", "/sys/fs/resctrl"), "/c1");
    EXPECT_EQ(closOfGroup("/sys/fs/resctrl/c1/mon_groups/x", "x", "/sys/fs/resctrl/"), "/c1");
    EXPECT_EQ(closOfGroup("mon_groups/x", "x", ""), "/");
    EXPECT_EQ(closOfGroup("c1/mon_groups/x", "x", ""), "/c1");
    EXPECT_EQ(closOfGroup("/mon_groups/x", "x", "/"), "/");
    EXPECT_EQ(closOfGroup("/c2/mon_groups/x", "x", "/"), "/c2");
    EXPECT_FALSE(closOfGroup("/sys/fs/resctrl/mon_groups/y", "x", "/sys/fs/resctrl"));
    EXPECT_FALSE(closOfGroup("/elsewhere/c1/mon_groups/x", "x", "/sys/fs/resctrl"));
    EXPECT_FALSE(closOfGroup("/sys/fs/resctrl/a/b/mon_groups/x", "x", "/sys/fs/resctrl"));
}

TEST(Rates, ATelemetryPackageIsNotAnL3DomainAndTakesNoFigureAway) {
    Counters c0 = l3Counters(10, 100, 50);
    Counters c1 = l3Counters(10, 1100, 550);
    c0["mon_PERF_PKG_00"] = {{"uops_retired", 5}};
    c1["mon_PERF_PKG_00"] = {{"uops_retired", 9}};
    const RateReport r = computeRates(snapshotAt(0, {{"c1", {}, c0}}), {{"c1", 1}},
                                      snapshotAt(1'000'000, {{"c1", {}, c1}}), {{"c1", 1}});
    const GroupRates& g = only(r);
    EXPECT_EQ(g.domains.count("mon_PERF_PKG_00"), 0u);
    EXPECT_TRUE(g.total.llcBytes.has_value());
    EXPECT_DOUBLE_EQ(g.total.mbmTotalBytesPerSec.value(), 1000.0);
    EXPECT_FALSE(isTopLevelDomain("mon_PERF_PKG_00"));
    EXPECT_TRUE(isTopLevelDomain("mon_L3_01"));
    EXPECT_FALSE(isTopLevelDomain("mon_L3_01/mon_sub_L3_02"));
}

namespace {

GroupCounters withEnergy(const char* id, std::map<std::string, double> joules, uint64_t gen = 1) {
    GroupCounters g{id, {}, l3Counters(10, 100, 50)};
    for (const auto& [pkg, j] : joules) {
        g.decimals[pkg]["core_energy"] = j;
        g.decimals[pkg]["activity"] = j / 4;
        g.generations[pkg]["core_energy"] = gen;
    }
    return g;
}

} // namespace

TEST(Rates, PowerIsTheEnergyOfEveryPackageOverTheInterval) {
    const auto a =
        snapshotAt(0, {withEnergy("c1", {{"mon_PERF_PKG_00", 10}, {"mon_PERF_PKG_01", 20}})});
    const auto b = snapshotAt(
        2'000'000, {withEnergy("c1", {{"mon_PERF_PKG_00", 40}, {"mon_PERF_PKG_01", 30}})});
    EXPECT_DOUBLE_EQ(only(computeRates(a, {{"c1", 1}}, b, {{"c1", 1}})).watts.value(), 20.0)
        << "(30 + 10) J over 2 s";
    // No telemetry: no power.
    const auto plain = snapshotAt(0, {GroupCounters{"c1", {}, l3Counters(1, 1, 1)}});
    const auto plain2 = snapshotAt(1'000'000, {GroupCounters{"c1", {}, l3Counters(1, 2, 2)}});
    EXPECT_FALSE(only(computeRates(plain, {{"c1", 1}}, plain2, {{"c1", 1}})).watts);
}

TEST(Rates, PowerIsAbsentAcrossARestartOrAMissingPackage) {
    const auto a =
        snapshotAt(0, {withEnergy("c1", {{"mon_PERF_PKG_00", 10}, {"mon_PERF_PKG_01", 20}})});
    // Went down.
    const auto down = snapshotAt(
        1'000'000, {withEnergy("c1", {{"mon_PERF_PKG_00", 5}, {"mon_PERF_PKG_01", 30}})});
    EXPECT_FALSE(only(computeRates(a, {{"c1", 1}}, down, {{"c1", 1}})).watts);
    // Grew, in another generation.
    const auto regen = snapshotAt(
        1'000'000, {withEnergy("c1", {{"mon_PERF_PKG_00", 50}, {"mon_PERF_PKG_01", 30}}, 2)});
    EXPECT_FALSE(only(computeRates(a, {{"c1", 1}}, regen, {{"c1", 1}})).watts);
    // A package missing from either read: a partial sum would read as real.
    const auto one = snapshotAt(1'000'000, {withEnergy("c1", {{"mon_PERF_PKG_00", 50}})});
    EXPECT_FALSE(only(computeRates(a, {{"c1", 1}}, one, {{"c1", 1}})).watts);
    EXPECT_FALSE(
        only(computeRates(one, {{"c1", 1}},
                          snapshotAt(2'000'000, {withEnergy("c1", {{"mon_PERF_PKG_00", 60},
                                                                   {"mon_PERF_PKG_01", 30}})}),
                          {{"c1", 1}}))
            .watts);
}
