// rdtmonctl top's view without a bus (ctl/TopView.h, ctl/Units.h): names, order, the
// table and the JSON fields the man page promises.

#include "SampleCounters.h"
#include "TopView.h"
#include "Units.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

using namespace rdtmon::ctl;
using rdtmon::client::CacheSizes;
using rdtmon::client::ClosOf;
using rdtmon::client::Counters;
using rdtmon::client::CreatedTimes;
using rdtmon::client::RateReport;
using rdtmon::client::Snapshot;
using rdtmon::ctl::TopBy;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

// Every sample container reads the same in both L3 domains.
Counters counters(uint64_t llc, uint64_t total, uint64_t local) {
    return rdtmon::test::l3Counters(llc, total, local, 2);
}

// Three containers over one second: a (2 MB/s total per domain), b (6), c (reset: no rate),
// and the default CLOS.
RateReport report() {
    const CreatedTimes t{{"a", 1}, {"b", 1}, {"c", 1}};
    const Snapshot before{
        0,
        {{"a", {}, counters(0, 0, 0)},
         {"b", {{"pod", "p"}, {"namespace", "ns"}, {"container", "k"}}, counters(0, 0, 0)},
         {"c", {}, counters(0, 5'000'000, 0)},
         {"/", {}, counters(0, 0, 0)}}};
    const Snapshot after{1'000'000,
                         {{"a", {}, counters(4096, 2'000'000, 1'000'000)},
                          {"b",
                           {{"pod", "p"}, {"namespace", "ns"}, {"container", "k"}},
                           counters(1024, 6'000'000, 0)},
                          {"c", {}, counters(3 << 20, 1, 0)},
                          {"/", {}, counters(10 << 20, 20'000'000, 2'000'000)}}};
    return computeRates(before, t, after, t);
}

const ClosOf kClos{{"a", "/"}, {"b", "/"}, {"c", "/"}};

std::vector<std::string> names(const TopFrame& f) {
    std::vector<std::string> out;
    for (const TopRow& r : f.containers) {
        out.push_back(r.name);
    }
    return out;
}

} // namespace

TEST(Units, PeopleReadTheseNumbers) {
    EXPECT_EQ(humanBytes(std::nullopt), "-");
    EXPECT_EQ(humanBytes(0), "0 B");
    EXPECT_EQ(humanBytes(1023), "1023 B");
    EXPECT_EQ(humanBytes(1536), "1.5 KiB");
    EXPECT_EQ(humanBytes(3u << 20), "3.0 MiB");
    EXPECT_EQ(humanBytes(5ull << 30), "5.0 GiB");
    EXPECT_EQ(megabytesPerSecond(std::nullopt), "-");
    EXPECT_EQ(megabytesPerSecond(123'456'789.0), "123.5");
    EXPECT_EQ(megabytesPerSecond(0.0), "0.0");
    EXPECT_EQ(watts(std::nullopt), "-");
    EXPECT_EQ(watts(12.34), "12.3");
    EXPECT_EQ(utcTime(1'700'000'000'123'456u), "2023-11-14T22:13:20Z");
}

TEST(TopView, AContainerIsNamedByItsLabelsElseByItsShortId) {
    EXPECT_EQ(containerName(std::string(64, 'f'), {}), std::string(12, 'f'));
    EXPECT_EQ(containerName("short", {{"pod_uid", "x"}}), "short");
    EXPECT_EQ(containerName("x", {{"pod", "web"}, {"namespace", "shop"}, {"container", "nginx"}}),
              "shop/web/nginx");
    EXPECT_EQ(containerName("x", {{"pod", "web"}}), "/web/");
}

TEST(TopView, SortedByTheChosenColumnRowsWithoutAFigureLast) {
    const RateReport r = report();
    EXPECT_EQ(names(buildTop(r, kClos, {SortColumn::Total, false})),
              (std::vector<std::string>{"ns/p/k", "a", "c"}));
    // A tie (0.0 and 0.0) goes by name.
    EXPECT_EQ(names(buildTop(r, kClos, {SortColumn::Local, false})),
              (std::vector<std::string>{"a", "c", "ns/p/k"}));
    EXPECT_EQ(names(buildTop(r, kClos, {SortColumn::Llc, false})),
              (std::vector<std::string>{"c", "a", "ns/p/k"}));
    EXPECT_EQ(names(buildTop(r, kClos, {SortColumn::Name, false})),
              (std::vector<std::string>{"a", "c", "ns/p/k"}));
}

TEST(TopView, TheTableSumsDomainsOrSplitsThem) {
    const RateReport r = report();
    const TopFrame summed = buildTop(r, kClos, {SortColumn::Name, false});
    const std::string text = topText(summed, false);
    EXPECT_EQ(text, "3 containers, interval 1.0 s\n"
                    "NAME              LLC  TOTAL MB/s  LOCAL MB/s\n"
                    "a             8.0 KiB         4.0         2.0\n"
                    "c             6.0 MiB           -         0.0\n"
                    "ns/p/k        2.0 KiB        12.0         0.0\n"
                    "outside (/)  14.0 MiB           -         2.0\n");
    EXPECT_THAT(text, Not(HasSubstr("\033")));
    const TopFrame split = buildTop(r, kClos, {SortColumn::Name, true});
    EXPECT_EQ(split.containers.size(), 6u);
    EXPECT_EQ(split.containerCount, 3u);
    const std::string perDomain = topText(split, true);
    EXPECT_THAT(perDomain, HasSubstr("3 containers"));
    TopFrame one = summed;
    one.containerCount = 1;
    EXPECT_THAT(topText(one, false), HasSubstr("1 container, interval"));
    EXPECT_THAT(perDomain, HasSubstr("NAME         DOMAIN"));
    EXPECT_THAT(perDomain, HasSubstr("ns/p/k       mon_L3_01  1.0 KiB         6.0         0.0\n"));
}

TEST(TopView, JsonHasTheDocumentedFields) {
    const nlohmann::json j = topJson(report(), kClos, {SortColumn::Total, false}, 42);
    EXPECT_EQ(j.at("monotonic_usec"), 42);
    EXPECT_EQ(j.at("interval_seconds"), 1.0);
    ASSERT_EQ(j.at("containers").size(), 3u);
    const nlohmann::json& b = j.at("containers")[0];
    EXPECT_EQ(b.at("container_id"), "b");
    EXPECT_EQ(b.at("name"), "ns/p/k");
    EXPECT_EQ(b.at("labels").at("pod"), "p");
    EXPECT_EQ(b.at("origin"), "hook");
    EXPECT_EQ(b.at("llc_occupancy_bytes"), 2048);
    EXPECT_EQ(b.at("mbm_total_bytes_per_second"), 12e6);
    EXPECT_EQ(b.at("mbm_local_bytes_per_second"), 0.0);
    ASSERT_EQ(b.at("domains").size(), 2u);
    EXPECT_EQ(b.at("domains")[1].at("domain"), "mon_L3_01");
    EXPECT_EQ(b.at("domains")[1].at("mbm_total_bytes_per_second"), 6e6);
    const nlohmann::json& c = j.at("containers")[2];
    EXPECT_EQ(c.at("container_id"), "c");
    EXPECT_TRUE(c.at("mbm_total_bytes_per_second").is_null());
    ASSERT_EQ(j.at("outside").size(), 1u);
    EXPECT_EQ(j.at("outside")[0].at("clos"), "/");
    EXPECT_TRUE(j.at("outside")[0].at("mbm_total_bytes_per_second").is_null());
    EXPECT_EQ(j.at("outside")[0].at("mbm_local_bytes_per_second"), 4e6 - 2e6);
}

// A group its runtime made has rates like any other, is marked in the table (and counted in
// the first line), says so in JSON, and counts as inside its CLOS.
TEST(TopView, ARuntimeMadeGroupIsMarkedAndCountsInsideItsClos) {
    const CreatedTimes t{{"a", 1}, {"r", 7}};
    const rdtmon::client::Labels podLabels{{"pod", "db"}, {"namespace", "ns"}, {"container", "pg"}};
    const Snapshot before{0,
                          {{"a", {}, counters(0, 0, 0), "adopted"},
                           {"r", podLabels, counters(0, 0, 0), "runtime"},
                           {"/", {}, counters(0, 0, 0)}}};
    const Snapshot after{1'000'000,
                         {{"a", {}, counters(1024, 1'000'000, 0), "adopted"},
                          {"r", podLabels, counters(2048, 3'000'000, 1'000'000), "runtime"},
                          {"/", {}, counters(4096, 10'000'000, 2'000'000)}}};
    const RateReport r = computeRates(before, t, after, t);
    const ClosOf clos{{"a", "/"}, {"r", "/"}};
    const TopFrame frame = buildTop(r, clos, {SortColumn::Total, false});
    ASSERT_EQ(frame.containers.size(), 2u);
    EXPECT_EQ(frame.runtimeCount, 1u);
    EXPECT_EQ(frame.containers[0].name, "ns/db/pg"); // no marker in the name itself
    EXPECT_EQ(frame.containers[0].origin, "runtime");
    EXPECT_EQ(topText(frame, false), "2 containers, 1 made by its runtime (*), interval 1.0 s\n"
                                     "NAME             LLC  TOTAL MB/s  LOCAL MB/s\n"
                                     "ns/db/pg *   4.0 KiB         6.0         2.0\n"
                                     "a            2.0 KiB         2.0         0.0\n"
                                     "outside (/)  2.0 KiB        12.0         2.0\n");
    const std::string perDomain = topText(buildTop(r, clos, {SortColumn::Total, true}), true);
    EXPECT_THAT(perDomain, HasSubstr("ns/db/pg *   mon_L3_00"));
    EXPECT_THAT(perDomain, HasSubstr("ns/db/pg *   mon_L3_01"));
    EXPECT_THAT(perDomain, Not(HasSubstr("a *")));

    const nlohmann::json j = topJson(r, clos, {SortColumn::Total, false}, 1);
    ASSERT_EQ(j.at("containers").size(), 2u);
    EXPECT_EQ(j.at("containers")[0].at("container_id"), "r");
    EXPECT_EQ(j.at("containers")[0].at("origin"), "runtime");
    EXPECT_EQ(j.at("containers")[0].at("name"), "ns/db/pg");
    EXPECT_EQ(j.at("containers")[0].at("labels"), nlohmann::json(podLabels));
    EXPECT_EQ(j.at("containers")[0].at("mbm_total_bytes_per_second"), 6e6);
    EXPECT_EQ(j.at("containers")[1].at("origin"), "adopted");

    // Made anew between the reads (another creation time): no rate, as for an owned one.
    const CreatedTimes later{{"a", 1}, {"r", 8}};
    const RateReport anew = computeRates(before, t, after, later);
    EXPECT_FALSE(anew.containers[1].total.mbmTotalBytesPerSec.has_value());
    EXPECT_TRUE(anew.containers[0].total.mbmTotalBytesPerSec.has_value());
    // Several: plural.
    TopFrame two = frame;
    two.runtimeCount = 2;
    EXPECT_THAT(topText(two, false), HasSubstr("2 containers, 2 made by their runtimes (*), "));
}

TEST(TopView, AGroupThatTakesTurnsIsMarkedWithItsWindowAndAgeAndHidesTheOutside) {
    const CreatedTimes t{{"a", 1}, {"s", 1}};
    Snapshot before{
        0,
        {{"a", {}, counters(0, 0, 0)}, {"s", {}, counters(0, 0, 0)}, {"/", {}, counters(0, 0, 0)}}};
    Snapshot after{10'000'000,
                   {{"a", {}, counters(1024, 10'000'000, 0)},
                    {"s", {}, counters(2048, 30'000'000, 0)},
                    {"/", {}, counters(4096, 90'000'000, 0)}}};
    // s's counts were measured over a turn of 0.75 s that ended 4 s before the read.
    for (const char* d : {"mon_L3_00", "mon_L3_01"}) {
        after.groups[1].windowUsec[d]["mbm_total_bytes"] = 750'000;
        after.groups[1].measuredUsec[d]["mbm_total_bytes"] = 6'000'000;
    }
    const RateReport r = computeRates(before, t, after, t);
    ASSERT_EQ(r.containers.size(), 2u);
    EXPECT_FALSE(r.containers[0].sampledWindowSeconds.has_value());
    EXPECT_EQ(r.containers[1].sampledWindowSeconds, 0.75);
    EXPECT_EQ(r.containers[1].sampledAgeSeconds, 4.0);
    const ClosOf clos{{"a", "/"}, {"s", "/"}};
    const TopFrame frame = buildTop(r, clos, {SortColumn::Total, false});
    EXPECT_EQ(frame.sampledCount, 1u);
    EXPECT_EQ(topText(frame, false), "2 containers, 1 measured in turns (~), interval 10.0 s\n"
                                     "NAME             LLC  TOTAL MB/s  LOCAL MB/s\n"
                                     "s ~          4.0 KiB         6.0         0.0\n"
                                     "a            2.0 KiB         2.0         0.0\n"
                                     "outside (/)  2.0 KiB           -           -\n")
        << "the CLOS counts only the groups holding counters: no outside bandwidth";
    const nlohmann::json j = topJson(r, clos, {SortColumn::Total, false}, 1);
    EXPECT_EQ(j.at("containers")[0].at("sampled"),
              (nlohmann::json{{"window_seconds", 0.75}, {"age_seconds", 4.0}}));
    EXPECT_TRUE(j.at("containers")[1].at("sampled").is_null());
}

// Power (Intel's telemetry) is a column only where some container has it, on summed rows
// only, sortable, and null in JSON where unknown.
TEST(TopView, PowerIsShownWhereTheNodeCountsIt) {
    RateReport r = report();
    const TopFrame none = buildTop(r, kClos, {SortColumn::Name, false});
    EXPECT_FALSE(none.power);
    EXPECT_THAT(topText(none, false), Not(HasSubstr("POWER")));
    r.containers[0].watts = 12.34; // a
    r.containers[1].watts = 40.0;  // b (ns/p/k)
    const TopFrame f = buildTop(r, kClos, {SortColumn::Power, false});
    EXPECT_TRUE(f.power);
    EXPECT_EQ(names(f), (std::vector<std::string>{"ns/p/k", "a", "c"}));
    const std::string text = topText(f, false);
    EXPECT_THAT(text, HasSubstr("LOCAL MB/s  POWER W\n"));
    EXPECT_THAT(text, HasSubstr("ns/p/k        2.0 KiB        12.0         0.0     40.0\n"));
    EXPECT_THAT(text, HasSubstr("a             8.0 KiB         4.0         2.0     12.3\n"));
    EXPECT_THAT(text, HasSubstr("c             6.0 MiB           -         0.0        -\n"))
        << "c has none";
    EXPECT_THAT(topText(buildTop(r, kClos, {SortColumn::Power, true}), true),
                Not(HasSubstr("POWER")))
        << "per package, not per L3 domain";
    const nlohmann::json j = topJson(r, kClos, {SortColumn::Power, false}, 1);
    EXPECT_EQ(j.at("containers")[0].at("power_watts"), 40.0);
    EXPECT_TRUE(j.at("containers")[2].at("power_watts").is_null());
}

TEST(TopView, ByPodARowPerPodAndJsonNamesThePod) {
    const RateReport r = report();
    TopOptions opts{SortColumn::Total, false, TopBy::Pod};
    const TopFrame f = buildTop(r, kClos, opts);
    EXPECT_EQ(names(f), (std::vector<std::string>{"ns/p", "a", "c"}));
    const std::string text = topText(f, false);
    EXPECT_THAT(text, HasSubstr("3 pods of 3 containers, interval 1.0 s\n"));
    EXPECT_THAT(text, HasSubstr("outside (/)  14.0 MiB           -         2.0\n"))
        << "the outside share is the CLOS minus its containers, as without --by";
    const nlohmann::json j = topJson(r, kClos, opts, 1);
    ASSERT_EQ(j.at("pods").size(), 3u);
    EXPECT_FALSE(j.contains("containers"));
    const nlohmann::json& p = j.at("pods")[0];
    EXPECT_EQ(p.at("pod"), "p");
    EXPECT_EQ(p.at("namespace"), "ns");
    EXPECT_EQ(p.at("containers"), 1);
    EXPECT_FALSE(p.contains("container_id"));
    EXPECT_EQ(p.at("mbm_total_bytes_per_second"), 12e6);
    EXPECT_TRUE(j.at("pods")[1].at("pod").is_null());
    EXPECT_EQ(j.at("pods")[1].at("container_id"), "a");
}

TEST(TopView, ByDomainEachDomainsLoadAndEachPodsShare) {
    const RateReport r = report();
    const TopOptions opts{SortColumn::Total, false, TopBy::Domain};
    // mon_L3_00's cache is 40 MiB; mon_L3_01's size is unknown.
    const CacheSizes caches{{"mon_L3_00", 40u << 20}};
    const std::string text = domainText(r, kClos, opts, caches);
    EXPECT_THAT(text, HasSubstr("3 containers, interval 1.0 s\n"));
    EXPECT_THAT(
        text,
        HasSubstr("\nmon_L3_00: total 20.0 MB/s (local 2.0, remote 18.0), "
                  "LLC 10.0 MiB of 40.0 MiB (25.0%) occupied\n"
                  "  NAME         TOTAL MB/s  SHARE  LOCAL MB/s      LLC  SHARE  OF CACHE\n"
                  "  ns/p                6.0  30.0%         0.0  1.0 KiB   0.0%      0.0%\n"
                  "  a                   2.0  10.0%         1.0  4.0 KiB   0.0%      0.0%\n"
                  "  c                     -      -         0.0  3.0 MiB  30.0%      7.5%\n"
                  "  outside (/)           -      -         1.0  7.0 MiB  70.0%     17.5%\n"));
    EXPECT_THAT(text, HasSubstr("\nmon_L3_01: total 20.0 MB/s (local 2.0, remote 18.0), "
                                "LLC 10.0 MiB occupied\n"));
    const nlohmann::json j = topJson(r, kClos, opts, 5, caches);
    ASSERT_EQ(j.at("domains").size(), 2u);
    const nlohmann::json& d = j.at("domains")[0];
    EXPECT_EQ(d.at("domain"), "mon_L3_00");
    EXPECT_EQ(d.at("mbm_total_bytes_per_second"), 20e6);
    EXPECT_EQ(d.at("mbm_remote_bytes_per_second"), 18e6);
    EXPECT_EQ(d.at("pods")[0].at("name"), "ns/p");
    EXPECT_DOUBLE_EQ(d.at("pods")[0].at("bandwidth_share").get<double>(), 0.3);
    EXPECT_TRUE(d.at("pods")[2].at("bandwidth_share").is_null());
    EXPECT_EQ(d.at("outside")[0].at("clos"), "/");
    EXPECT_NEAR(d.at("outside")[0].at("cache_share").get<double>(), 0.7, 0.001);
    EXPECT_EQ(d.at("llc_size_bytes"), 40u << 20);
    EXPECT_NEAR(d.at("outside")[0].at("cache_size_share").get<double>(), 0.175, 0.001);
    EXPECT_TRUE(j.at("domains")[1].at("llc_size_bytes").is_null());
}
