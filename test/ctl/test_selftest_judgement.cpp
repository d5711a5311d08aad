// rdtmonctl selftest's verdicts on the load (LoadJudgement), on figures such as a real node
// gives: the bandwidth on the load's domain, the other domains, the occupancy, and SNC.

#include "LoadJudgement.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

using namespace rdtmon::ctl::selftest;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Result = Verdict::Result;

namespace {

constexpr uint64_t kGranule = 65536; // a typical MBM upscaling factor: counts move by it

uint64_t granules(double bytes) {
    return static_cast<uint64_t>(bytes / static_cast<double>(kGranule)) * kGranule;
}

// A two-socket Sapphire Rapids node (105 MiB L3 each), the load pinned to socket 1 with
// planLoad's buffer (420 MiB, 5 passes); mon_L3_01 moved `ratio` times what the load read,
// mon_L3_00 otherDelta. Another part's cache and buffer when given.
LoadObservation spr(double ratio, uint64_t otherDelta = 2 * kMiB, uint64_t l3 = 105 * kMiB,
                    uint64_t buffer = 420 * kMiB) {
    LoadObservation obs;
    obs.l3Bytes = l3;
    obs.bufferBytes = buffer;
    obs.passesDone = 5;
    obs.domain = "mon_L3_01";
    const double expected = static_cast<double>(obs.bufferBytes * obs.passesDone);
    obs.before = {
        {"mon_L3_00",
         {{"llc_occupancy", 0}, {"mbm_total_bytes", 917'504}, {"mbm_local_bytes", 851'968}}},
        {"mon_L3_01",
         {{"llc_occupancy", 3'211'264},
          {"mbm_total_bytes", 1'245'184},
          {"mbm_local_bytes", 1'179'648}}},
    };
    obs.during = obs.before;
    obs.during["mon_L3_01"]["llc_occupancy"] = 84'017'152; // 80.1 MiB of 105
    obs.after = obs.before;
    obs.after["mon_L3_00"]["mbm_total_bytes"] += otherDelta;
    obs.after["mon_L3_00"]["mbm_local_bytes"] += otherDelta;
    obs.after["mon_L3_01"]["mbm_total_bytes"] += granules(expected * ratio);
    obs.after["mon_L3_01"]["mbm_local_bytes"] += granules(expected * ratio * 0.97);
    obs.after["mon_L3_01"]["llc_occupancy"] = 83'886'080;
    return obs;
}

} // namespace

// --- the verdict: bandwidth on the load's domain ---

TEST(JudgeBandwidth, ExactPasses) {
    const Verdict v = judgeBandwidth(spr(1.0));
    EXPECT_EQ(v.result, Result::Pass) << v.summary;
    EXPECT_EQ(v.expectedBytes, 2100 * kMiB);
    EXPECT_EQ(v.measuredBytes, 2100 * kMiB);
    EXPECT_DOUBLE_EQ(v.ratio, 1.0);
    EXPECT_THAT(v.summary, HasSubstr("mon_L3_01 rose by 2.05 GiB, 1.00x"));
}

TEST(JudgeBandwidth, CacheKeepingPartOfEachPassPasses) {
    const Verdict v = judgeBandwidth(spr(0.85));
    EXPECT_EQ(v.result, Result::Pass) << v.summary;
    EXPECT_NEAR(v.ratio, 0.85, 0.001);
}

TEST(JudgeBandwidth, PrefetchAndCountingErrorPasses) {
    const Verdict v = judgeBandwidth(spr(1.1));
    EXPECT_EQ(v.result, Result::Pass) << v.summary;
}

TEST(JudgeBandwidth, FarTooLittleFails) {
    const Verdict v = judgeBandwidth(spr(0.3));
    EXPECT_EQ(v.result, Result::Fail);
    EXPECT_THAT(v.summary, HasSubstr("too little"));
    EXPECT_THAT(v.summary, HasSubstr("0.30x"));
}

TEST(JudgeBandwidth, FarTooMuchFails) {
    const Verdict v = judgeBandwidth(spr(3.0));
    EXPECT_EQ(v.result, Result::Fail);
    EXPECT_THAT(v.summary, HasSubstr("too much"));
    EXPECT_EQ(judgeBandwidth(spr(2.0)).result, Result::Fail); // a double count
}

TEST(JudgeBandwidth, LowBoundFollowsHowMuchOfAPassTheCacheCanHold) {
    // (1 - (L3 + 4 MiB) / buffer) * 0.9
    EXPECT_NEAR(lowBandwidthTolerance(256 * kMiB, 32 * kMiB), 0.7734, 0.0001);
    EXPECT_NEAR(lowBandwidthTolerance(384 * kMiB, 96 * kMiB), 0.6656, 0.0001);
    EXPECT_NEAR(lowBandwidthTolerance(1920 * kMiB, 480 * kMiB), 0.6731, 0.0001);
    // 0.72x: possible with a 96 MiB V-cache beside a 384 MiB buffer, not with 32 MiB of
    // cache beside 256 MiB.
    const Verdict vcache = judgeBandwidth(spr(0.72, 0, 96 * kMiB, 384 * kMiB));
    EXPECT_EQ(vcache.result, Result::Pass) << vcache.summary;
    const Verdict client = judgeBandwidth(spr(0.72, 0, 32 * kMiB, 256 * kMiB));
    EXPECT_EQ(client.result, Result::Fail) << client.summary;
    EXPECT_NEAR(client.ratio, 0.72, 0.001);
}

TEST(JudgeBandwidth, BufferNotBeyondTheCacheIsNotApplicable) {
    LoadObservation obs = spr(1.0);
    obs.bufferBytes = 128 * kMiB; // of a 105 MiB cache
    EXPECT_EQ(judgeBandwidth(obs).result, Result::NotApplicable);
}

TEST(JudgeBandwidth, CounterGoingBackwardsFails) {
    LoadObservation obs = spr(1.0);
    obs.after["mon_L3_01"]["mbm_total_bytes"] = 65536;
    const Verdict v = judgeBandwidth(obs);
    EXPECT_EQ(v.result, Result::Fail);
    EXPECT_THAT(v.summary, HasSubstr("went backwards"));
}

TEST(JudgeBandwidth, ShowsLocalAndSaysWhatWasAccepted) {
    const Verdict v = judgeBandwidth(spr(1.0));
    EXPECT_THAT(v.evidence, Contains(HasSubstr("5 passes x 420.0 MiB")));
    EXPECT_THAT(v.evidence, Contains(HasSubstr("accepted: 0.67x to 1.25x")));
    EXPECT_THAT(v.evidence, Contains(HasSubstr("mbm_local_bytes rose by")));
}

TEST(JudgeBandwidth, NoPassIsNotApplicable) {
    LoadObservation obs = spr(0.0);
    obs.passesDone = 0;
    for (const Verdict& v : judgeLoad(obs)) {
        EXPECT_EQ(v.result, Result::NotApplicable) << v.check;
        EXPECT_THAT(v.summary, HasSubstr("no pass"));
    }
}

TEST(JudgeBandwidth, UnassignedCounterIsNotApplicable) {
    LoadObservation obs = spr(1.0);
    obs.after["mon_L3_01"].erase("mbm_total_bytes"); // read Unassigned
    const Verdict v = judgeBandwidth(obs);
    EXPECT_EQ(v.result, Result::NotApplicable);
    EXPECT_THAT(v.summary, HasSubstr("mbm_total_bytes of mon_L3_01 was not readable after"));
    EXPECT_THAT(v.summary, HasSubstr("Unassigned"));
}

TEST(JudgeBandwidth, DomainMissingFromAReportingGroupFails) {
    LoadObservation obs = spr(1.0);
    obs.domain = "mon_L3_02"; // the load's cache id, but rdtmon keys it otherwise
    const Verdict v = judgeBandwidth(obs);
    EXPECT_EQ(v.result, Result::Fail);
    EXPECT_THAT(v.summary, HasSubstr("no domain mon_L3_02"));
    EXPECT_THAT(v.summary, HasSubstr("mon_L3_00, mon_L3_01"));
}

TEST(JudgeLoad, NothingReadIsNotApplicable) {
    LoadObservation obs = spr(1.0);
    obs.before.clear();
    obs.during.clear();
    obs.after.clear();
    const auto verdicts = judgeLoad(obs);
    ASSERT_EQ(verdicts.size(), 3u);
    for (const Verdict& v : verdicts) {
        EXPECT_EQ(v.result, Result::NotApplicable) << v.check;
    }
}

TEST(JudgeLoad, NoMbmNoCmtIsNotApplicable) {
    LoadObservation obs = spr(1.0);
    for (DomainCounts* counts : {&obs.before, &obs.during, &obs.after}) {
        for (auto& [key, events] : *counts) {
            events.clear();
        }
    }
    for (const Verdict& v : judgeLoad(obs)) {
        EXPECT_EQ(v.result, Result::NotApplicable) << v.check << ": " << v.summary;
    }
}

TEST(JudgeLoad, ThreeChecksInOrder) {
    const auto verdicts = judgeLoad(spr(1.0));
    ASSERT_EQ(verdicts.size(), 3u);
    EXPECT_EQ(verdicts[0].check, "bandwidth");
    EXPECT_EQ(verdicts[1].check, "other domains");
    EXPECT_EQ(verdicts[2].check, "occupancy");
    for (const Verdict& v : verdicts) {
        EXPECT_EQ(v.result, Result::Pass) << v.check << ": " << v.summary;
    }
}

TEST(JudgeLoad, NotApplicableForOneReason) {
    const auto verdicts = loadNotApplicable("resctrl-emu sees no memory traffic");
    ASSERT_EQ(verdicts.size(), 3u);
    for (const Verdict& v : verdicts) {
        EXPECT_EQ(v.result, Result::NotApplicable);
        EXPECT_EQ(v.summary, "resctrl-emu sees no memory traffic");
    }
    EXPECT_STREQ(resultName(Result::Pass), "pass");
    EXPECT_STREQ(resultName(Result::Fail), "FAIL");
    EXPECT_STREQ(resultName(Result::NotApplicable), "n/a");
}

// --- the other domains ---

TEST(JudgeOtherDomains, QuietOtherDomainPasses) {
    const Verdict v = judgeOtherDomains(spr(1.0, 2 * kMiB));
    EXPECT_EQ(v.result, Result::Pass) << v.summary;
    EXPECT_EQ(v.measuredBytes, 2 * kMiB);
    EXPECT_THAT(v.summary, HasSubstr("the other 1 L3 domain rose by at most 2.0 MiB"));
}

TEST(JudgeOtherDomains, LoadCountedElsewhereFails) {
    const Verdict v = judgeOtherDomains(spr(0.0, 2100 * kMiB)); // all of it, on mon_L3_00
    EXPECT_EQ(v.result, Result::Fail);
    EXPECT_THAT(v.summary, HasSubstr("mon_L3_00: rose by 2.05 GiB"));
    EXPECT_EQ(judgeBandwidth(spr(0.0, 2100 * kMiB)).result, Result::Fail);
}

TEST(JudgeOtherDomains, FivePercentIsTheBound) {
    EXPECT_EQ(judgeOtherDomains(spr(1.0, 100 * kMiB)).result, Result::Pass); // 4.8 %
    EXPECT_EQ(judgeOtherDomains(spr(1.0, 110 * kMiB)).result, Result::Fail); // 5.2 %
}

TEST(JudgeOtherDomains, OneDomainIsNotApplicable) {
    LoadObservation obs = spr(1.0);
    for (DomainCounts* counts : {&obs.before, &obs.during, &obs.after}) {
        counts->erase("mon_L3_00");
    }
    const Verdict v = judgeOtherDomains(obs);
    EXPECT_EQ(v.result, Result::NotApplicable);
    EXPECT_THAT(v.summary, HasSubstr("no other L3 domain"));
}

TEST(JudgeOtherDomains, UnreadableElsewhereIsNotApplicable) {
    LoadObservation obs = spr(1.0);
    obs.before["mon_L3_00"].erase("mbm_total_bytes");
    const Verdict v = judgeOtherDomains(obs);
    EXPECT_EQ(v.result, Result::NotApplicable);
    EXPECT_THAT(v.summary, HasSubstr("not readable on any other L3 domain"));
}

// --- the occupancy ---

TEST(JudgeOccupancy, RiseWhileLoadedPasses) {
    const Verdict v = judgeOccupancy(spr(1.0));
    EXPECT_EQ(v.result, Result::Pass) << v.summary;
    EXPECT_EQ(v.measuredBytes, 84'017'152u - 3'211'264u);
    EXPECT_EQ(v.expectedBytes, 105 * kMiB / 32);
}

TEST(JudgeOccupancy, NoRiseFails) {
    LoadObservation flat = spr(1.0);
    flat.during["mon_L3_01"]["llc_occupancy"] = 3'211'264;
    EXPECT_EQ(judgeOccupancy(flat).result, Result::Fail);
    EXPECT_THAT(judgeOccupancy(flat).summary, HasSubstr("did not rise"));
    LoadObservation fell = spr(1.0);
    fell.during["mon_L3_01"]["llc_occupancy"] = 65536;
    EXPECT_EQ(judgeOccupancy(fell).result, Result::Fail);
}

TEST(JudgeOccupancy, RiseBelowTheFloorFails) {
    LoadObservation obs = spr(1.0);
    obs.during["mon_L3_01"]["llc_occupancy"] = 3'211'264 + 3 * kMiB; // floor 3.3 MiB
    const Verdict v = judgeOccupancy(obs);
    EXPECT_EQ(v.result, Result::Fail);
    EXPECT_THAT(v.summary, HasSubstr("below the floor of 3.3 MiB"));
    obs.during["mon_L3_01"]["llc_occupancy"] = 3'211'264 + 4 * kMiB;
    EXPECT_EQ(judgeOccupancy(obs).result, Result::Pass);
}

TEST(JudgeOccupancy, MoreThanTheCacheFails) {
    LoadObservation obs = spr(1.0);
    obs.during["mon_L3_01"]["llc_occupancy"] = 2 * 105 * kMiB;
    const Verdict v = judgeOccupancy(obs);
    EXPECT_EQ(v.result, Result::Fail);
    EXPECT_THAT(v.summary, HasSubstr("more than the 105.0 MiB cache holds"));
}

TEST(JudgeOccupancy, UnreadableIsNotApplicable) {
    LoadObservation obs = spr(1.0);
    obs.during["mon_L3_01"].erase("llc_occupancy");
    const Verdict v = judgeOccupancy(obs);
    EXPECT_EQ(v.result, Result::NotApplicable);
    EXPECT_THAT(v.summary, HasSubstr("not readable during the load"));
}

// --- Sub-NUMA Clustering: the parents are the figures, the sub-domains their parts ---

TEST(JudgeLoad, SncSubDomainsAreNotCountedAgain) {
    LoadObservation obs = spr(1.0);
    const uint64_t total =
        obs.after["mon_L3_01"]["mbm_total_bytes"] - obs.before["mon_L3_01"]["mbm_total_bytes"];
    const auto split = [&obs](const std::string& parent, const std::string& a,
                              const std::string& b) {
        for (DomainCounts* counts : {&obs.before, &obs.during, &obs.after}) {
            for (const auto& [event, value] : (*counts)[parent]) {
                (*counts)[parent + "/" + a][event] = value / 2;
                (*counts)[parent + "/" + b][event] = value - value / 2;
            }
        }
    };
    split("mon_L3_00", "mon_sub_L3_00", "mon_sub_L3_01");
    split("mon_L3_01", "mon_sub_L3_02", "mon_sub_L3_03");
    // The scheduler moved the load between the SNC nodes of its L3: 60 % on one, 40 % on
    // the other.
    const uint64_t most = total / 10 * 6;
    obs.after["mon_L3_01/mon_sub_L3_02"]["mbm_total_bytes"] =
        obs.before["mon_L3_01/mon_sub_L3_02"]["mbm_total_bytes"] + most;
    obs.after["mon_L3_01/mon_sub_L3_03"]["mbm_total_bytes"] =
        obs.before["mon_L3_01/mon_sub_L3_03"]["mbm_total_bytes"] + (total - most);

    const auto verdicts = judgeLoad(obs);
    ASSERT_EQ(verdicts.size(), 3u);
    EXPECT_EQ(verdicts[0].result, Result::Pass) << verdicts[0].summary;
    EXPECT_DOUBLE_EQ(verdicts[0].ratio, 1.0);
    EXPECT_THAT(verdicts[0].evidence,
                Contains(HasSubstr("mon_L3_01/mon_sub_L3_02: rose by 1.23 GiB (part of")));
    EXPECT_EQ(verdicts[1].result, Result::Pass) << verdicts[1].summary; // its own parts
    EXPECT_EQ(verdicts[2].result, Result::Pass) << verdicts[2].summary; // 80 MiB, not 160
    EXPECT_EQ(verdicts[2].measuredBytes, 84'017'152u - 3'211'264u);

    // The load's domain named by its sub-domain is judged on the parent.
    obs.domain = "mon_L3_01/mon_sub_L3_02";
    EXPECT_DOUBLE_EQ(judgeBandwidth(obs).ratio, 1.0);
}
