// resctrl-emu's telemetry events (--perf-pkg), checked through plain syscalls on the mount
// against what fs/resctrl does (README, "Telemetry events"): info/PERF_PKG_MON, one
// mon_PERF_PKG_XX per package in every group's mon_data, decimal values printed as the
// kernel's print_event_value prints them, energy at the watts a test sets, a CTRL_MON
// group's reading holding its MON groups'.
#include "EmulatorMount.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <chrono>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

using namespace rdtmon::test;

namespace {

double decimal(const std::string& text) {
    return std::stod(text);
}

TEST(Telemetry, InfoAndOneDirectoryPerPackageInEveryGroup) {
    EmulatorMount emu(EmulatorOptions{.numRmids = 8, .perfPkgs = 2});
    const std::string p = emu.path();
    EXPECT_EQ(readFile(p + "/info/PERF_PKG_MON/num_rmids"), "8\n");
    EXPECT_EQ(readFile(p + "/info/PERF_PKG_MON/mon_features"),
              "core_energy\nactivity\nstalls_llc_hit\nc1_res\nunhalted_core_cycles\n"
              "stalls_llc_miss\nc6_res\nunhalted_ref_cycles\nuops_retired\n");
    ASSERT_EQ(::mkdir((p + "/mon_groups/a").c_str(), 0755), 0);
    for (const std::string g : {"", "/mon_groups/a"}) {
        EXPECT_EQ(
            entries(p + g + "/mon_data"),
            (std::set<std::string>{"mon_L3_00", "mon_L3_01", "mon_PERF_PKG_00", "mon_PERF_PKG_01"}))
            << g;
        EXPECT_EQ(readFile(p + g + "/mon_data/mon_PERF_PKG_01/core_energy"), "0.0\n")
            << "the kernel keeps one decimal for a whole number";
        EXPECT_EQ(readFile(p + g + "/mon_data/mon_PERF_PKG_00/uops_retired"), "0\n");
    }
    EXPECT_FALSE(::access((p + "/mon_data/mon_PERF_PKG_02").c_str(), F_OK) == 0);
    EmulatorMount none(EmulatorOptions{});
    EXPECT_FALSE(::access((none.path() + "/info/PERF_PKG_MON").c_str(), F_OK) == 0);
    EXPECT_EQ(entries(none.path() + "/mon_data"),
              (std::set<std::string>{"mon_L3_00", "mon_L3_01"}));
}

TEST(Telemetry, EnergyGrowsAtTheDrivenWattsAndTheParentHoldsItsChildren) {
    EmulatorMount emu(EmulatorOptions{.perfPkgs = 2});
    const std::string p = emu.path();
    ASSERT_EQ(::mkdir((p + "/mon_groups/a").c_str(), 0755), 0);
    const std::string file = p + "/mon_groups/a/mon_data/mon_PERF_PKG_00/core_energy";
    emu.energy("mon_groups/a", 40); // 20 W on each of two packages
    const auto t0 = std::chrono::steady_clock::now();
    const double j0 = decimal(readFile(file));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const double j1 = decimal(readFile(file));
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_NEAR((j1 - j0) / s, 20.0, 3.0);
    // At most six decimals, no trailing zero (but one digit after the point).
    const std::string text = readFile(file);
    const std::size_t dot = text.find('.');
    ASSERT_NE(dot, std::string::npos) << text;
    const std::string frac = text.substr(dot + 1, text.size() - dot - 2);
    EXPECT_GE(frac.size(), 1u) << text;
    EXPECT_LE(frac.size(), 6u) << text;
    EXPECT_TRUE(frac.size() == 1 || frac.back() != '0') << text;
    // The integer events follow the energy; activity is a decimal too.
    EXPECT_GT(std::stoull(readFile(p + "/mon_groups/a/mon_data/mon_PERF_PKG_01/uops_retired")), 0u);
    EXPECT_GT(decimal(readFile(p + "/mon_groups/a/mon_data/mon_PERF_PKG_01/activity")), 0.0);
    // The default group's reading holds a's.
    EXPECT_GE(decimal(readFile(p + "/mon_data/mon_PERF_PKG_00/core_energy")),
              decimal(readFile(file)) - 1.0);
    EXPECT_THROW(emu.control("energy nosuch 1"), std::runtime_error);
}

} // namespace
