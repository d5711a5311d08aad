// Assignable counters as an operator sees them: `rdtmonctl status` (text and JSON) and
// `rdtmonctl metrics`, run as nobody through the real bus policy, against rdtmond over
// resctrl-emu in mbm_event mode (and in the modes where every group counts).

#include "AllValues.h"
#include "EmulatorMount.h"
#include "PrivateBus.h"
#include "Proc.h"
#include "RdtmonClient.h"
#include "RdtmondProcess.h"
#include "Subprocess.h"
#include "TestUtil.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace rdtmon::test;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

constexpr const char* kConfig = R"({"gc":{"intervalSeconds":3600,"graceSeconds":3600}})";

CommandResult ctlAsNobody(const PrivateBus& bus, std::vector<std::string> args) {
    args.insert(args.begin(), RDTMONCTL_BIN);
    CommandOptions opts;
    opts.env.push_back(bus.envEntry());
    opts.uid = 65534;
    return runCommand(args, opts);
}

// The value of a "name: value" row of `rdtmonctl status`.
std::string statusRow(const std::string& text, const std::string& name) {
    const std::size_t at = text.find(name + ":");
    if (at == std::string::npos) {
        return "<no " + name + " row>";
    }
    const std::size_t value = text.find_first_not_of(' ', at + name.size() + 1);
    return text.substr(value, text.find('\n', value) - value);
}

void expectPromtoolClean(const std::string& text) {
    CommandOptions opts;
    opts.stdinText = text;
    const CommandResult check = runCommand({"/usr/bin/promtool", "check", "metrics"}, opts);
    EXPECT_EQ(check.exitCode, 0) << check.out << check.err;
    EXPECT_EQ(check.out + check.err, "");
}

TEST(RdtmonctlCounters, StatusAndMetricsShowTheCountersAndTheContainersWithout) {
    // The default group holds 2 of each domain's 6: two containers' worth are left.
    EmulatorMount emu(EmulatorOptions{.mbmAssign = "mbm_event", .numMbmCntrs = 6});
    PrivateBus bus;
    Rdtmond d(bus, {.resctrl = emu.path(), .configJson = kConfig});
    RdtmonClient c(bus.address());
    std::vector<std::unique_ptr<ChildProcess>> sleepers;
    for (const char* id : {"a", "b", "c"}) {
        sleepers.push_back(std::make_unique<ChildProcess>(spawnSleeper(0)));
        ASSERT_TRUE(c.createGroup(id, static_cast<uint32_t>(sleepers.back()->pid())).ok());
    }

    // Three groups for two groups' worth of counters: all three take turns of 5 s.
    EXPECT_TRUE(waitUntil(
        [&] {
            return statusRow(ctlAsNobody(bus, {"status"}).out, "MBM turns") ==
                   "0 all the time, 3 in turns (each measured every 10.0 s)";
        },
        std::chrono::seconds(10)));
    const CommandResult st = ctlAsNobody(bus, {"status"});
    ASSERT_EQ(st.exitCode, 0) << st.err;
    EXPECT_EQ(statusRow(st.out, "MBM counters"),
              "mbm_event: mon_L3_00 0 of 6 free, mon_L3_01 0 of 6 free");

    const CommandResult js = ctlAsNobody(bus, {"status", "--json"});
    ASSERT_EQ(js.exitCode, 0) << js.err;
    const json j = json::parse(js.out);
    EXPECT_EQ(j.at("mbm_assign_mode"), "mbm_event");
    EXPECT_EQ(j.at("mbm_counters"), json::parse(R"([{"domain":"mon_L3_00","counters":6,"free":0},
                                                     {"domain":"mon_L3_01","counters":6,"free":0}])"));
    EXPECT_EQ(j.at("counters_continuous"), 0);
    EXPECT_EQ(j.at("counters_rotating"), 3);
    EXPECT_EQ(j.at("counter_cycle_seconds"), 10.0);
    EXPECT_TRUE(j.at("containers_without_bandwidth").is_number());

    const CommandResult m = ctlAsNobody(bus, {"metrics"});
    ASSERT_EQ(m.exitCode, 0) << m.err;
    EXPECT_THAT(m.out, HasSubstr("\nrdtmon_mbm_assign_mode{mode=\"mbm_event\"} 1\n"));
    EXPECT_THAT(m.out, HasSubstr("\nrdtmon_mbm_counters{domain=\"mon_L3_01\"} 6\n"));
    EXPECT_THAT(m.out, HasSubstr("\nrdtmon_mbm_counters_free{domain=\"mon_L3_00\"} 0\n"));
    EXPECT_THAT(m.out, HasSubstr("\nrdtmon_mbm_schedule_groups{schedule=\"continuous\"} 0\n"
                                 "rdtmon_mbm_schedule_groups{schedule=\"turns\"} 3\n"));
    EXPECT_THAT(m.out, HasSubstr("\nrdtmon_mbm_turns_cycle_seconds 10\n"));
    EXPECT_THAT(m.out, HasSubstr("\nrdtmon_containers_without_bandwidth "));
    expectPromtoolClean(m.out);

    // Within a cycle every container has a figure: c takes its turn when a's and b's end.
    std::string last;
    EXPECT_TRUE(waitUntil(
        [&] {
            last = ctlAsNobody(bus, {"status"}).out;
            return statusRow(last, "no bandwidth") == "0";
        },
        std::chrono::seconds(30)))
        << last;
    // A removal leaves two groups, which fit: both hold their counters all the time.
    ASSERT_TRUE(c.removeGroup("a").ok());
    EXPECT_TRUE(waitUntil(
        [&] {
            last = ctlAsNobody(bus, {"status"}).out;
            return statusRow(last, "MBM turns") == "2 all the time, 0 in turns";
        },
        std::chrono::seconds(20)))
        << last;
    EXPECT_EQ(statusRow(last, "no bandwidth"), "0");
    EXPECT_TRUE(d.running());
}

// No counter left for rdtmond's groups (the default group holds every one): they wait for
// a turn that cannot come, and status says so.
TEST(RdtmonctlCounters, WithNoCounterFreeEveryContainerIsWithoutBandwidth) {
    EmulatorMount emu(EmulatorOptions{.mbmAssign = "mbm_event", .numMbmCntrs = 2});
    PrivateBus bus;
    Rdtmond d(bus, {.resctrl = emu.path(), .configJson = kConfig});
    RdtmonClient c(bus.address());
    std::vector<std::unique_ptr<ChildProcess>> sleepers;
    for (const char* id : {"a", "b"}) {
        sleepers.push_back(std::make_unique<ChildProcess>(spawnSleeper(0)));
        ASSERT_TRUE(c.createGroup(id, static_cast<uint32_t>(sleepers.back()->pid())).ok());
    }
    std::string last;
    EXPECT_TRUE(waitUntil(
        [&] {
            last = ctlAsNobody(bus, {"status"}).out;
            return statusRow(last, "MBM turns") ==
                   "0 all the time, 2 in turns (no counter is free for them)";
        },
        std::chrono::seconds(10)))
        << last;
    EXPECT_EQ(statusRow(last, "no bandwidth"), "2");
    EXPECT_THAT(ctlAsNobody(bus, {"metrics"}).out,
                HasSubstr("\nrdtmon_containers_without_bandwidth 2\n"));
}

// top while groups take turns: every container is marked and rated at its driven rate,
// with the turn its figure was measured over; never a rate across a turn's reset.
TEST(RdtmonctlCounters, TopRatesGroupsThatTakeTurnsAtTheirDrivenRate) {
    EmulatorMount emu(EmulatorOptions{.mbmAssign = "mbm_event", .numMbmCntrs = 6});
    PrivateBus bus;
    Rdtmond d(bus, {.resctrl = emu.path(),
                    .configJson = R"({"gc":{"intervalSeconds":3600,"graceSeconds":3600},
                                      "counters":{"cycleSeconds":1}})"});
    RdtmonClient c(bus.address());
    std::vector<std::unique_ptr<ChildProcess>> sleepers;
    const std::map<std::string, double> driven = {{"a", 100e6}, {"b", 200e6}, {"c", 400e6}};
    for (const auto& [id, bps] : driven) {
        sleepers.push_back(std::make_unique<ChildProcess>(spawnSleeper(0)));
        ASSERT_TRUE(c.createGroup(id, static_cast<uint32_t>(sleepers.back()->pid())).ok());
        emu.drive("mon_groups/" + id, static_cast<uint64_t>(bps), static_cast<uint64_t>(bps / 4),
                  1 << 20);
    }
    // Two cycles (0.5 s turns, 3 groups for 2 slots): everyone measured at least once.
    std::this_thread::sleep_for(std::chrono::seconds(2));
    const CommandResult top = ctlAsNobody(bus, {"top", "-n", "2", "-d", "1", "--json"});
    ASSERT_EQ(top.exitCode, 0) << top.err;
    std::vector<json> frames;
    std::istringstream lines(top.out);
    for (std::string line; std::getline(lines, line);) {
        frames.push_back(json::parse(line));
    }
    ASSERT_EQ(frames.size(), 2u) << top.out;
    for (const json& frame : frames) {
        ASSERT_EQ(frame.at("containers").size(), 3u) << frame.dump();
        for (const json& ct : frame.at("containers")) {
            const std::string id = ct.at("container_id");
            ASSERT_TRUE(ct.at("sampled").is_object()) << ct.dump();
            EXPECT_GE(ct.at("sampled").at("window_seconds").get<double>(), 0.4) << id;
            ASSERT_TRUE(ct.at("mbm_total_bytes_per_second").is_number()) << ct.dump();
            // A wide margin: turns of half a second on a loaded machine.
            EXPECT_NEAR(ct.at("mbm_total_bytes_per_second").get<double>(), driven.at(id),
                        0.3 * driven.at(id))
                << id;
        }
        EXPECT_TRUE(frame.at("outside").at(0).at("mbm_total_bytes_per_second").is_null());
    }
    const CommandResult text = ctlAsNobody(bus, {"top", "-n", "1", "-d", "1"});
    EXPECT_THAT(text.out, HasSubstr("3 containers, 3 measured in turns (~), interval"));
}

// Intel's telemetry end to end: rdtmond reads core_energy and activity as decimals
// (GetAllValues' d, with generations), status names the events, top shows each container's
// power in watts summed over the packages, and the exporter's text has its energy as a
// counter in joules; the L3 figures and domains stay as they were.
TEST(RdtmonctlCounters, TelemetryIsReadEndToEnd) {
    EmulatorMount emu(EmulatorOptions{.perfPkgs = 2});
    PrivateBus bus;
    Rdtmond d(bus, {.resctrl = emu.path(), .configJson = kConfig});
    RdtmonClient c(bus.address());
    ChildProcess sleeper(spawnSleeper(0));
    ASSERT_TRUE(c.createGroup("x", static_cast<uint32_t>(sleeper.pid())).ok());
    emu.drive("mon_groups/x", 200'000'000, 50'000'000, 1 << 20);
    emu.energy("mon_groups/x", 30); // spread over the two packages

    const AllValues v = allValuesByBusctl(bus);
    for (const char* pkg : {"mon_PERF_PKG_00", "mon_PERF_PKG_01"}) {
        for (const char* ev : {"core_energy", "activity"}) {
            ASSERT_TRUE(v.has("x", pkg, ev)) << pkg << " " << ev;
            EXPECT_EQ(v.at("x", pkg, ev).type, 'd') << pkg << " " << ev;
            EXPECT_GT(v.at("x", pkg, ev).generation, 0u);
        }
        ASSERT_TRUE(v.has("x", pkg, "uops_retired")) << "integer events stay counts";
        EXPECT_EQ(v.at("x", pkg, "uops_retired").type, 't');
    }
    EXPECT_EQ(v.at("x", "mon_L3_00", "mbm_total_bytes").type, 't');

    const CommandResult status = ctlAsNobody(bus, {"status", "--json"});
    ASSERT_EQ(status.exitCode, 0) << status.err;
    const json st = json::parse(status.out);
    EXPECT_NE(std::find(st.at("telemetry_features").begin(), st.at("telemetry_features").end(),
                        "core_energy"),
              st.at("telemetry_features").end())
        << status.out;

    const CommandResult top = ctlAsNobody(bus, {"top", "-n", "1", "-d", "1", "--json"});
    ASSERT_EQ(top.exitCode, 0) << top.err;
    const json frame = json::parse(top.out);
    ASSERT_EQ(frame.at("containers").size(), 1u) << top.out;
    const json& x = frame.at("containers").at(0);
    ASSERT_TRUE(x.at("mbm_total_bytes_per_second").is_number()) << top.out;
    EXPECT_NEAR(x.at("mbm_total_bytes_per_second").get<double>(), 200e6, 0.3 * 200e6);
    EXPECT_EQ(x.at("llc_occupancy_bytes"), 1 << 20);
    EXPECT_EQ(x.at("domains").size(), 2u) << "the two L3 domains, not the packages";
    ASSERT_TRUE(x.at("power_watts").is_number()) << top.out;
    EXPECT_NEAR(x.at("power_watts").get<double>(), 30, 0.3 * 30);
    const CommandResult text = ctlAsNobody(bus, {"top", "-n", "1", "-d", "1", "--sort", "power"});
    ASSERT_EQ(text.exitCode, 0) << text.err;
    EXPECT_THAT(text.out, HasSubstr("POWER W"));

    const CommandResult m = ctlAsNobody(bus, {"metrics"});
    ASSERT_EQ(m.exitCode, 0) << m.err;
    for (const char* pkg : {"mon_PERF_PKG_00", "mon_PERF_PKG_01"}) {
        EXPECT_THAT(m.out, HasSubstr(std::string("rdtmon_core_energy_joules_total{container_id="
                                                 "\"x\",pod=\"\",namespace=\"\",container=\"\","
                                                 "origin=\"hook\",domain=\"") +
                                     pkg + "\"} "));
    }
    // Packages appear in no L3 family.
    std::istringstream lines(m.out);
    for (std::string line; std::getline(lines, line);) {
        if (line.find("PERF_PKG") != std::string::npos && line[0] != '#') {
            EXPECT_EQ(line.rfind("rdtmon_core_energy_joules_total{", 0), 0u) << line;
        }
    }
    expectPromtoolClean(m.out);
}

// Where every group counts (Intel's [default]-only file, AMD switched to default, or a
// kernel without the file), status says so and the metrics show no counters.
TEST(RdtmonctlCounters, WhereEveryGroupCountsThereAreNoCountersToShow) {
    struct Case {
        std::string emulated, mode, row;
    };
    for (const Case& k : {Case{"intel", "default", "default (every group counts)"},
                          Case{"default", "default", "default (every group counts)"},
                          Case{"", "", "not assignable (every group counts)"}}) {
        SCOPED_TRACE("--mbm-assign " + k.emulated);
        EmulatorMount emu(EmulatorOptions{.mbmAssign = k.emulated});
        PrivateBus bus;
        Rdtmond d(bus, {.resctrl = emu.path(), .configJson = kConfig});
        RdtmonClient c(bus.address());
        ChildProcess sleeper(spawnSleeper(0));
        ASSERT_TRUE(c.createGroup("x", static_cast<uint32_t>(sleeper.pid())).ok());

        const CommandResult st = ctlAsNobody(bus, {"status"});
        ASSERT_EQ(st.exitCode, 0) << st.err;
        EXPECT_EQ(statusRow(st.out, "MBM counters"), k.row);
        EXPECT_EQ(statusRow(st.out, "no bandwidth"), "0");
        EXPECT_EQ(statusRow(st.out, "MBM turns"), "-");
        const json j = json::parse(ctlAsNobody(bus, {"status", "--json"}).out);
        EXPECT_EQ(j.at("mbm_assign_mode"), k.mode);
        EXPECT_EQ(j.at("mbm_counters"), json::array());
        EXPECT_EQ(j.at("containers_without_bandwidth"), 0);

        const CommandResult m = ctlAsNobody(bus, {"metrics"});
        ASSERT_EQ(m.exitCode, 0) << m.err;
        EXPECT_THAT(m.out, Not(HasSubstr("rdtmon_mbm_counters")));
        if (k.mode.empty()) {
            EXPECT_THAT(m.out, Not(HasSubstr("rdtmon_mbm_assign_mode")));
        } else {
            EXPECT_THAT(m.out, HasSubstr("\nrdtmon_mbm_assign_mode{mode=\"default\"} 1\n"));
        }
        EXPECT_THAT(m.out, HasSubstr("\nrdtmon_containers_without_bandwidth 0\n"));
        expectPromtoolClean(m.out);
    }
}

} // namespace
