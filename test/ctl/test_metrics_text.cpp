// The Prometheus text (client/MetricsText.h): the exact text of a small reading, escaping,
// what a daemon that did not answer gives, and promtool's verdict on a larger reading.

#include "MetricsText.h"
#include "Subprocess.h"
#include "TestUtil.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>
#include <unistd.h>

using namespace rdtmon::client;
using rdtmon::test::CommandOptions;
using rdtmon::test::CommandResult;
using rdtmon::test::concat;
using rdtmon::test::runCommand;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

MetricsInput sample() {
    MetricsInput in;
    in.up = true;
    in.status.supported = true;
    in.status.numRmids = 32;
    in.status.freeRmids = 28;
    in.status.groupCount = 2;
    in.status.monFeatures = {"llc_occupancy", "mbm_total_bytes", "mbm_local_bytes"};
    in.snapshot.monotonicUsec = 123;
    in.snapshot.groups = {
        {"web-1",
         {{"pod", "web-7d9f"}, {"namespace", "shop"}, {"container", "nginx"}, {"pod_uid", "u"}},
         {{"mon_L3_01", {{"llc_occupancy", 20}, {"mbm_total_bytes", 200}}},
          {"mon_L3_00",
           {{"llc_occupancy", 10}, {"mbm_total_bytes", 100}, {"mbm_local_bytes", 50}}}}},
        {"/", {}, {{"mon_L3_00", {{"llc_occupancy", 1000}, {"mbm_total_bytes", 9000}}}}},
        {"bare", {}, {{"mon_L3_00", {{"llc_occupancy", 1}}}}, kOriginAdopted},
        // A group its runtime made: read as any other, with origin runtime.
        {"native",
         {{"pod", "db-0"}, {"namespace", "data"}, {"container", "pg"}},
         {{"mon_L3_00", {{"mbm_total_bytes", 7}}}},
         kOriginRuntime},
    };
    return in;
}

} // namespace

TEST(MetricsText, ASmallReadingGivesExactlyThisText) {
    EXPECT_EQ(formatMetrics(sample()),
              "# HELP rdtmon_up Whether rdtmond answered on the system bus (1) or not (0).\n"
              "# TYPE rdtmon_up gauge\n"
              "rdtmon_up 1\n"
              "# HELP rdtmon_supported Whether resctrl monitoring is usable on this node (1) or "
              "not (0).\n"
              "# TYPE rdtmon_supported gauge\n"
              "rdtmon_supported 1\n"
              "# HELP rdtmon_groups Monitoring groups rdtmond owns (not those runtimes made).\n"
              "# TYPE rdtmon_groups gauge\n"
              "rdtmon_groups 2\n"
              "# HELP rdtmon_rmids RMIDs resctrl has (info/L3_MON/num_rmids).\n"
              "# TYPE rdtmon_rmids gauge\n"
              "rdtmon_rmids 32\n"
              "# HELP rdtmon_rmids_free RMIDs free for new monitoring groups.\n"
              "# TYPE rdtmon_rmids_free gauge\n"
              "rdtmon_rmids_free 28\n"
              "# HELP rdtmon_containers_without_bandwidth Containers with no memory-bandwidth "
              "value on any L3 domain (in mbm_event mode: their group holds no counter).\n"
              "# TYPE rdtmon_containers_without_bandwidth gauge\n"
              "rdtmon_containers_without_bandwidth 1\n"
              "# HELP rdtmon_llc_occupancy_bytes Last-level cache occupied by the container's "
              "group, per L3 domain; origin: hook, adopted or runtime (made by its runtime, not "
              "owned by rdtmond).\n"
              "# TYPE rdtmon_llc_occupancy_bytes gauge\n"
              "rdtmon_llc_occupancy_bytes{container_id=\"bare\",pod=\"\",namespace=\"\","
              "container=\"\",origin=\"adopted\",domain=\"mon_L3_00\"} 1\n"
              "rdtmon_llc_occupancy_bytes{container_id=\"web-1\",pod=\"web-7d9f\",namespace="
              "\"shop\",container=\"nginx\",origin=\"hook\",domain=\"mon_L3_00\"} 10\n"
              "rdtmon_llc_occupancy_bytes{container_id=\"web-1\",pod=\"web-7d9f\",namespace="
              "\"shop\",container=\"nginx\",origin=\"hook\",domain=\"mon_L3_01\"} 20\n"
              "# HELP rdtmon_mbm_total_bytes_total Memory bandwidth (MBM total) used by the "
              "container's group, per L3 domain; origin: hook, adopted or runtime (made by its "
              "runtime, not owned by rdtmond).\n"
              "# TYPE rdtmon_mbm_total_bytes_total counter\n"
              "rdtmon_mbm_total_bytes_total{container_id=\"native\",pod=\"db-0\",namespace="
              "\"data\",container=\"pg\",origin=\"runtime\",domain=\"mon_L3_00\"} 7\n"
              "rdtmon_mbm_total_bytes_total{container_id=\"web-1\",pod=\"web-7d9f\",namespace="
              "\"shop\",container=\"nginx\",origin=\"hook\",domain=\"mon_L3_00\"} 100\n"
              "rdtmon_mbm_total_bytes_total{container_id=\"web-1\",pod=\"web-7d9f\",namespace="
              "\"shop\",container=\"nginx\",origin=\"hook\",domain=\"mon_L3_01\"} 200\n"
              "# HELP rdtmon_mbm_local_bytes_total Local memory bandwidth (MBM local) used by "
              "the container's group, per L3 domain; origin: hook, adopted or runtime (made by "
              "its runtime, not owned by rdtmond).\n"
              "# TYPE rdtmon_mbm_local_bytes_total counter\n"
              "rdtmon_mbm_local_bytes_total{container_id=\"web-1\",pod=\"web-7d9f\",namespace="
              "\"shop\",container=\"nginx\",origin=\"hook\",domain=\"mon_L3_00\"} 50\n"
              "# HELP rdtmon_clos_llc_occupancy_bytes Last-level cache occupied by a whole "
              "CTRL_MON group (its MON groups included), per L3 domain.\n"
              "# TYPE rdtmon_clos_llc_occupancy_bytes gauge\n"
              "rdtmon_clos_llc_occupancy_bytes{clos=\"/\",domain=\"mon_L3_00\"} 1000\n"
              "# HELP rdtmon_clos_mbm_total_bytes_total Memory bandwidth (MBM total) used by a "
              "whole CTRL_MON group, per L3 domain.\n"
              "# TYPE rdtmon_clos_mbm_total_bytes_total counter\n"
              "rdtmon_clos_mbm_total_bytes_total{clos=\"/\",domain=\"mon_L3_00\"} 9000\n");
}

TEST(MetricsText, NoAnswerIsUpZeroAndNothingElse) {
    MetricsInput in = sample();
    in.up = false;
    EXPECT_EQ(formatMetrics(in),
              "# HELP rdtmon_up Whether rdtmond answered on the system bus (1) or not (0).\n"
              "# TYPE rdtmon_up gauge\n"
              "rdtmon_up 0\n");
}

TEST(MetricsText, UnsupportedAndNoFreeRmidsKnown) {
    MetricsInput in;
    in.up = true;
    const std::string text = formatMetrics(in);
    EXPECT_THAT(text, HasSubstr("\nrdtmon_supported 0\n"));
    EXPECT_THAT(text, HasSubstr("\nrdtmon_rmids 0\n"));
    EXPECT_THAT(text, Not(HasSubstr("rdtmon_rmids_free")));
    EXPECT_THAT(text, Not(HasSubstr("rdtmon_llc_occupancy_bytes")));
}

TEST(MetricsText, AssignableCountersGiveTheModeAndEachDomainsCounters) {
    MetricsInput in = sample();
    in.counters = CounterAssignment{"mbm_event", {{0, 32, 4}, {1, 32, 0}}};
    const std::string text = formatMetrics(in);
    EXPECT_THAT(text, HasSubstr("\nrdtmon_mbm_assign_mode{mode=\"mbm_event\"} 1\n"));
    EXPECT_THAT(text, HasSubstr("\nrdtmon_mbm_counters{domain=\"mon_L3_00\"} 32\n"
                                "rdtmon_mbm_counters{domain=\"mon_L3_01\"} 32\n"));
    EXPECT_THAT(text, HasSubstr("\nrdtmon_mbm_counters_free{domain=\"mon_L3_00\"} 4\n"
                                "rdtmon_mbm_counters_free{domain=\"mon_L3_01\"} 0\n"));
    // Only "bare" has no MBM value; "native" (a runtime's group) has one on a domain.
    EXPECT_THAT(text, HasSubstr("\nrdtmon_containers_without_bandwidth 1\n"));

    in.counters = CounterAssignment{"default", {}}; // every group counts: no counters to show
    const std::string dflt = formatMetrics(in);
    EXPECT_THAT(dflt, HasSubstr("\nrdtmon_mbm_assign_mode{mode=\"default\"} 1\n"));
    EXPECT_THAT(dflt, Not(HasSubstr("rdtmon_mbm_counters")));

    for (const std::optional<CounterAssignment>& none :
         {std::optional<CounterAssignment>(CounterAssignment{}), // no mbm_assign_mode
          std::optional<CounterAssignment>()}) {                 // an older rdtmond
        in.counters = none;
        const std::string text = formatMetrics(in);
        EXPECT_THAT(text, Not(HasSubstr("rdtmon_mbm_assign_mode")));
        EXPECT_THAT(text, Not(HasSubstr("rdtmon_mbm_counters")));
    }
}

TEST(MetricsText, WithoutAnMbmEventNoContainerLacksBandwidth) {
    MetricsInput in = sample();
    in.status.monFeatures = {"llc_occupancy"};
    EXPECT_THAT(formatMetrics(in), HasSubstr("\nrdtmon_containers_without_bandwidth 0\n"));
    in.status.monFeatures = {"llc_occupancy", "mbm_local_bytes"};
    in.snapshot.groups.push_back({"total-only", {}, {{"mon_L3_00", {{"mbm_total_bytes", 1}}}}});
    EXPECT_EQ(containersWithoutBandwidth(in.snapshot, in.status.monFeatures), 3u)
        << "bare, native and total-only have no value of the one MBM event the node counts";
}

TEST(MetricsText, LabelValuesAreEscaped) {
    EXPECT_EQ(escapeLabelValue("plain"), "plain");
    EXPECT_EQ(escapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    EXPECT_EQ(escapeLabelValue("tab\there é"), "tab\there é"); // only the three are escaped
    MetricsInput in;
    in.up = true;
    in.snapshot.groups = {
        {"c1", {{"pod", "we\"ird\\pod\nx"}}, {{"mon_L3_00", {{"llc_occupancy", 7}}}}}};
    EXPECT_THAT(formatMetrics(in), HasSubstr("pod=\"we\\\"ird\\\\pod\\nx\""));
}

// Every container sample has the same label names, origin among them; an entry that says
// no origin (an rdtmond older than it) is a hook's; CLOS samples have no origin.
TEST(MetricsText, EveryContainerSampleHasAnOriginAndNoClosSampleHas) {
    MetricsInput in = sample();
    in.snapshot.groups.push_back({"old", {}, {{"mon_L3_00", {{"llc_occupancy", 3}}}}, ""});
    in.snapshot.groups.push_back(
        {"/clos1", {}, {{"mon_L3_00", {{"llc_occupancy", 4}}}}, kOriginRuntime});
    const std::string text = formatMetrics(in);
    EXPECT_THAT(text, HasSubstr("{container_id=\"old\",pod=\"\",namespace=\"\",container=\"\","
                                "origin=\"hook\",domain=\"mon_L3_00\"} 3\n"));
    EXPECT_THAT(text, HasSubstr("rdtmon_clos_llc_occupancy_bytes{clos=\"/clos1\",domain=\"mon_L3_"
                                "00\"} 4\n"));
    std::istringstream lines(text);
    std::size_t containerSamples = 0;
    for (std::string line; std::getline(lines, line);) {
        if (line.find("container_id=") != std::string::npos) {
            ++containerSamples;
            EXPECT_THAT(line, testing::ContainsRegex(
                                  "container=\"[^\"]*\",origin=\"(hook|adopted|runtime)\","))
                << line;
        }
        if (line.find("clos=") != std::string::npos) {
            EXPECT_THAT(line, Not(HasSubstr("origin"))) << line;
        }
    }
    EXPECT_EQ(containerSamples, 8u) << text;
}

TEST(MetricsText, EnergyIsACounterInJoulesPerPackageWithEveryDigit) {
    MetricsInput in;
    in.up = true;
    GroupCounters g{"c1", {{"pod", "p"}}, {{"mon_L3_00", {{"llc_occupancy", 7}}}}};
    g.decimals["mon_PERF_PKG_00"] = {{"core_energy", 123456.789012}, {"activity", 3.5}};
    g.decimals["mon_PERF_PKG_01"] = {{"core_energy", 0.5}};
    in.snapshot.groups = {g};
    const std::string text = formatMetrics(in);
    EXPECT_THAT(text, HasSubstr("# TYPE rdtmon_core_energy_joules_total counter\n"));
    EXPECT_THAT(text, HasSubstr("origin=\"hook\",domain=\"mon_PERF_PKG_00\"} 123456.789012\n"));
    EXPECT_THAT(text, HasSubstr("origin=\"hook\",domain=\"mon_PERF_PKG_01\"} 0.5\n"));
    EXPECT_THAT(text, Not(HasSubstr("activity"))) << "only energy is exported";
    EXPECT_THAT(text, Not(HasSubstr("mon_PERF_PKG_00\"} 7"))) << "not an L3 domain";
    // A node without telemetry has no such family.
    in.snapshot.groups = {{"c1", {}, {{"mon_L3_00", {{"llc_occupancy", 7}}}}}};
    EXPECT_THAT(formatMetrics(in), Not(HasSubstr("core_energy")));
}

TEST(MetricsText, SncSubDomainsAreNotWrittenTwice) {
    MetricsInput in;
    in.up = true;
    in.snapshot.groups = {{"c1",
                           {},
                           {{"mon_L3_00", {{"llc_occupancy", 7}}},
                            {"mon_L3_00/mon_sub_L3_00", {{"llc_occupancy", 3}}}}}};
    const std::string text = formatMetrics(in);
    EXPECT_THAT(text, HasSubstr("domain=\"mon_L3_00\"} 7\n"));
    EXPECT_THAT(text, Not(HasSubstr("mon_sub_L3_00")));
}

TEST(MetricsText, CoverageGivesTasksPerContainerAndTheWaitingCount) {
    MetricsInput in = sample();
    EXPECT_THAT(formatMetrics(in), Not(HasSubstr("rdtmon_container_tasks")));
    EXPECT_THAT(formatMetrics(in), Not(HasSubstr("rdtmon_containers_waiting")));
    in.coverage = std::vector<GroupCoverage>{{"web-1", "active", "/sys/fs/cgroup/x", 5, 2},
                                             {"queued", "waiting", "", 0, 3},
                                             {"late", "waiting", "", 0, 1}};
    // A waiting container is not in the snapshot: its labels and origin come from its group
    // object; without one it has no labels and is a hook's.
    GroupInfo queued;
    queued.id = "queued";
    queued.state = kStateWaiting;
    queued.labels = {{"pod", "q-1"}, {"container", "q"}, {"pod_uid", "u"}};
    queued.origin = kOriginAdopted;
    in.notRead = {{"queued", queued}};
    const std::string text = formatMetrics(in);
    EXPECT_THAT(text, HasSubstr("rdtmon_rmids_free 28\n"
                                "# HELP rdtmon_containers_waiting Containers waiting for a free "
                                "RMID: not monitored until one frees.\n"
                                "# TYPE rdtmon_containers_waiting gauge\n"
                                "rdtmon_containers_waiting 2\n"));
    // Only the coverage's containers: the runtime-made "native" has no tasks series.
    EXPECT_THAT(text, HasSubstr("# TYPE rdtmon_container_tasks gauge\n"
                                "rdtmon_container_tasks{container_id=\"late\",pod=\"\",namespace="
                                "\"\",container=\"\",origin=\"hook\",where=\"group\"} 0\n"
                                "rdtmon_container_tasks{container_id=\"late\",pod=\"\",namespace="
                                "\"\",container=\"\",origin=\"hook\",where=\"outside\"} 1\n"
                                "rdtmon_container_tasks{container_id=\"queued\",pod=\"q-1\","
                                "namespace=\"\",container=\"q\",origin=\"adopted\",where="
                                "\"group\"} 0\n"
                                "rdtmon_container_tasks{container_id=\"queued\",pod=\"q-1\","
                                "namespace=\"\",container=\"q\",origin=\"adopted\",where="
                                "\"outside\"} 3\n"
                                "rdtmon_container_tasks{container_id=\"web-1\",pod=\"web-7d9f\","
                                "namespace=\"shop\",container=\"nginx\",origin=\"hook\",where="
                                "\"group\"} 5\n"
                                "rdtmon_container_tasks{container_id=\"web-1\",pod=\"web-7d9f\","
                                "namespace=\"shop\",container=\"nginx\",origin=\"hook\",where="
                                "\"outside\"} 2\n"
                                "# HELP rdtmon_clos_llc_occupancy_bytes"));
    // The snapshot's labels and origin win over the group object's (read later).
    queued.id = "web-1";
    in.notRead = {{"web-1", queued}};
    EXPECT_THAT(formatMetrics(in), HasSubstr("container=\"nginx\",origin=\"hook\",where="));
    in.coverage->clear();
    EXPECT_THAT(formatMetrics(in), HasSubstr("\nrdtmon_containers_waiting 0\n"));
}

// promtool is Debian's prometheus package (test/setup-deps.sh installs it).
TEST(MetricsText, PromtoolFindsNothingToSay) {
    ASSERT_EQ(::access("/usr/bin/promtool", X_OK), 0) << "promtool is not installed";
    MetricsInput in = sample();
    for (int i = 0; i < 50; ++i) {
        in.snapshot.groups.push_back({concat("c", i),
                                      {{"pod", concat("p\"", i, "\\\n")}, {"namespace", "ns"}},
                                      {{"mon_L3_00",
                                        {{"llc_occupancy", 1u << 20},
                                         {"mbm_total_bytes", 1ull << 40},
                                         {"mbm_local_bytes", 18446744073709551615ull}}},
                                       {"mon_L3_01", {{"llc_occupancy", 0}}}}});
    }
    in.snapshot.groups.push_back(
        {"/clos1", {}, {{"mon_L3_00", {{"mbm_local_bytes", 1}, {"llc_occupancy", 2}}}}});
    in.coverage =
        std::vector<GroupCoverage>{{"c1", "active", "", 3, 0}, {"w", "waiting", "", 0, 1}};
    in.counters = CounterAssignment{"mbm_event", {{0, 32, 1}, {1, 32, 2}}};
    for (const bool up : {true, false}) {
        in.up = up;
        CommandOptions opts;
        opts.stdinText = formatMetrics(in);
        const CommandResult r = runCommand({"/usr/bin/promtool", "check", "metrics"}, opts);
        EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
        EXPECT_EQ(r.out + r.err, "") << opts.stdinText;
    }
}
