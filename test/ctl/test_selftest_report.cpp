// rdtmonctl selftest's report without a bus: the node facts parsed from mountinfo, cpuinfo
// and mbm_assign_mode, the verdict of a run, and its text and JSON.

#include "NodeFacts.h"
#include "SelftestReport.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

using namespace rdtmon::ctl::selftest;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

Check check(const std::string& name, Result r) {
    Check c;
    c.name = name;
    c.result = r;
    c.summary = name + " summary";
    c.evidence = {name + " evidence"};
    return c;
}

} // namespace

TEST(SelftestNodeFacts, TheResctrlMountIsFoundWithItsOptions) {
    const std::string mountinfo =
        "22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
        "41 22 0:36 / /sys/fs/resctrl rw,relatime shared:20 - resctrl resctrl rw,mba_MBps\n"
        "90 1 0:50 / /tmp/my\\040emu rw,nosuid - fuse.resctrl resctrl-emu rw,user_id=0\n";
    const auto kernel = findMount(mountinfo, "/sys/fs/resctrl");
    ASSERT_TRUE(kernel);
    EXPECT_EQ(kernel->fsType, "resctrl");
    EXPECT_EQ(kernel->options, "rw,relatime (rw,mba_MBps)");
    const auto emu = findMount(mountinfo, "/tmp/my emu");
    ASSERT_TRUE(emu);
    EXPECT_EQ(emu->fsType, "fuse.resctrl");
    EXPECT_FALSE(findMount(mountinfo, "/sys/fs"));
    EXPECT_FALSE(findMount("garbage\n", "/sys/fs/resctrl"));
}

TEST(SelftestNodeFacts, TheLastMountOnAPathIsTheOneInUse) {
    const std::string mountinfo =
        "41 22 0:36 / /sys/fs/resctrl rw,relatime - resctrl resctrl rw\n"
        "42 41 0:37 / /sys/fs/resctrl rw,relatime - resctrl resctrl rw,cdp\n";
    EXPECT_EQ(findMount(mountinfo, "/sys/fs/resctrl")->options, "rw,relatime (rw,cdp)");
}

TEST(SelftestNodeFacts, CpuModelFromX86OrArm) {
    EXPECT_EQ(cpuModelOf("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) "
                         "Xeon(R) Platinum 8480+\n"),
              "Intel(R) Xeon(R) Platinum 8480+");
    EXPECT_EQ(cpuModelOf("processor\t: 0\nBogoMIPS\t: 50.00\nHardware\t: Ampere Altra\n"),
              "Ampere Altra");
    EXPECT_EQ(cpuModelOf("processor\t: 0\n"), "");
}

TEST(SelftestNodeFacts, TheAssignModeInForceIsTheBracketedOne) {
    EXPECT_EQ(assignModeOf("[mbm_event]\ndefault\n"), "mbm_event");
    EXPECT_EQ(assignModeOf("mbm_event\n[default]\n"), "default");
    EXPECT_EQ(assignModeOf(""), "");
}

TEST(SelftestReport, PassedWhenNoCheckFailedAndTheRunWasNotStopped) {
    Report r;
    r.checks = {check("create-group", Result::Pass),
                check("load-bandwidth", Result::NotApplicable)};
    EXPECT_TRUE(r.passed());
    r.stopped = "interrupted by SIGINT";
    EXPECT_FALSE(r.passed());
    r.stopped.clear();
    r.checks.push_back(check("remove-group", Result::Fail));
    EXPECT_FALSE(r.passed());
}

TEST(SelftestReport, TheTextShowsEvidenceUnderFailuresOrWhenVerbose) {
    const Check pass = check("threads-moved", Result::Pass);
    EXPECT_EQ(formatCheck(pass, false), "PASS  threads-moved        threads-moved summary\n");
    EXPECT_THAT(formatCheck(pass, true), HasSubstr("\n      threads-moved evidence\n"));
    const Check fail = check("children-inherit", Result::Fail);
    EXPECT_THAT(formatCheck(fail, false),
                HasSubstr("FAIL  children-inherit     children-inherit summary\n      "
                          "children-inherit evidence\n"));
    EXPECT_THAT(formatCheck(check("load-occupancy", Result::NotApplicable), false),
                ::testing::StartsWith("N/A   load-occupancy "));
}

TEST(SelftestReport, TheSummaryCountsAndSaysWhatWasLeft) {
    Report r;
    r.checks = {check("a", Result::Pass), check("b", Result::Fail),
                check("c", Result::NotApplicable)};
    EXPECT_EQ(formatSummary(r), "result: FAIL (1 passed, 1 failed, 1 not applicable)\n");
    r.stopped = "rdtmond is not running";
    r.leftBehind = {"rdtmon-selftest-1-main"};
    EXPECT_THAT(formatSummary(r), HasSubstr("stopped: rdtmond is not running\n"));
    EXPECT_THAT(formatSummary(r),
                HasSubstr("left for rdtmond's next start to remove: rdtmon-selftest-1-main\n"));
}

TEST(SelftestReport, TheJsonHasTheNodeEveryCheckAndTheVerdict) {
    Report r;
    r.node.kernel = "6.18.1";
    r.node.fsType = "resctrl";
    r.node.l3CacheBytes = {{0, 32u << 20}};
    r.node.sncNodes = 2;
    r.checks = {check("create-group", Result::Pass),
                check("load-bandwidth", Result::NotApplicable)};
    const nlohmann::json j = reportJson(r);
    EXPECT_EQ(j.at("node").at("kernel"), "6.18.1");
    EXPECT_EQ(j.at("node").at("l3_cache_bytes").at("0"), 32u << 20);
    EXPECT_EQ(j.at("node").at("snc_nodes_per_domain"), 2);
    ASSERT_EQ(j.at("checks").size(), 2u);
    EXPECT_EQ(j.at("checks")[1].at("result"), "not-applicable");
    EXPECT_EQ(j.at("checks")[0].at("evidence"), nlohmann::json({"create-group evidence"}));
    EXPECT_TRUE(j.at("passed").get<bool>());
    EXPECT_TRUE(j.at("stopped").is_null());
    EXPECT_THAT(j.dump(), Not(HasSubstr("left_behind\":null")));
}

TEST(SelftestReport, TheNodeLinesSayWhenResctrlIsAnEmulator) {
    NodeFacts n;
    n.hostname = "node-a";
    n.kernel = "6.18.1";
    n.machine = "x86_64";
    n.resctrlPath = "/sys/fs/resctrl";
    n.fsType = "resctrl";
    n.assignMode = "mbm_event";
    n.numMbmCounters = "0=32;1=32";
    EXPECT_THAT(formatNode(n), Not(HasSubstr("emulator")));
    EXPECT_THAT(formatNode(n), HasSubstr("counters: mode mbm_event, 0=32;1=32 per domain"));
    n.emulated = true;
    n.fsType = "fuse.resctrl";
    EXPECT_THAT(formatNode(n), HasSubstr("(fuse.resctrl): an emulator, not the kernel's"));
}
