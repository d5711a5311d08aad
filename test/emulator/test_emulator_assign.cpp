// resctrl-emu's assignable counters (--mbm-assign), checked through plain syscalls on the
// mount against what fs/resctrl does (README, "Assignable counters").
#include "EmulatorMount.h"
#include "TestUtil.h"
#include "UniqueFd.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <thread>

using namespace rdtmon::test;
using rdtmon::UniqueFd;

namespace {

// 0 or the errno of one write(2) of data, as `echo` into a resctrl file does.
int writeErr(const std::string& path, const std::string& data) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
    if (!fd) {
        return errno;
    }
    return ::write(fd.get(), data.data(), data.size()) == static_cast<ssize_t>(data.size()) ? 0
                                                                                            : errno;
}

// 0 or the errno of reading the whole file into out.
int readErr(const std::string& path, std::string& out) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        return errno;
    }
    out.clear();
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) {
        out.append(buf, static_cast<size_t>(n));
    }
    return n < 0 ? errno : 0;
}

class Assign : public ::testing::Test {
protected:
    void mount(const std::string& mode, unsigned counters = 4) {
        emu_ = std::make_unique<EmulatorMount>(
            EmulatorOptions{.mbmAssign = mode, .numMbmCntrs = counters});
    }
    std::string p(const std::string& rel) const { return emu_->path() + "/" + rel; }
    std::string info(const std::string& name) const { return readFile(p("info/L3_MON/" + name)); }
    std::string counter(const std::string& group, unsigned domain, const std::string& event) {
        std::string dir = group.empty() ? "" : group + "/";
        return readFile(p(dir + "mon_data/mon_L3_0" + std::to_string(domain) + "/" + event));
    }
    std::string lastCmd() const { return readFile(p("info/last_cmd_status")); }
    std::unique_ptr<EmulatorMount> emu_;
};

constexpr const char* kAllOn = "mbm_total_bytes:0=e;1=e\nmbm_local_bytes:0=e;1=e\n";
constexpr const char* kAllOff = "mbm_total_bytes:0=_;1=_\nmbm_local_bytes:0=_;1=_\n";

TEST_F(Assign, WithoutTheOptionThereIsNoModeFileAsBefore618) {
    emu_ = std::make_unique<EmulatorMount>();
    EXPECT_FALSE(exists(p("info/L3_MON/mbm_assign_mode")));
    EXPECT_FALSE(exists(p("mbm_L3_assignments")));
    ASSERT_EQ(::mkdir(p("mon_groups/m").c_str(), 0755), 0);
    EXPECT_FALSE(exists(p("mon_groups/m/mbm_L3_assignments")));
}

TEST_F(Assign, IntelReadsDefaultAndCannotSwitch) {
    mount("intel");
    EXPECT_EQ(info("mbm_assign_mode"), "[default]\n");
    EXPECT_EQ(writeErr(p("info/L3_MON/mbm_assign_mode"), "mbm_event\n"), EINVAL);
    EXPECT_EQ(lastCmd(), "mbm_event mode is not supported\n");
    EXPECT_EQ(writeErr(p("info/L3_MON/mbm_assign_mode"), "default\n"), 0);
    EXPECT_FALSE(exists(p("info/L3_MON/num_mbm_cntrs")));
    EXPECT_FALSE(exists(p("mbm_L3_assignments")));
    ASSERT_EQ(::mkdir(p("mon_groups/m").c_str(), 0755), 0);
    EXPECT_NE(counter("mon_groups/m", 0, "mbm_total_bytes"), "Unassigned\n");
}

TEST_F(Assign, MkdirTakesCountersWhileThereAreAnyThenGroupsReadUnassigned) {
    mount("mbm_event", 4);
    EXPECT_EQ(info("mbm_assign_mode"), "[mbm_event]\ndefault\n");
    EXPECT_EQ(info("num_mbm_cntrs"), "0=4;1=4\n");
    // The default group took two of each domain's four at mount.
    EXPECT_EQ(info("available_mbm_cntrs"), "0=2;1=2\n");
    EXPECT_EQ(info("mbm_assign_on_mkdir"), "1\n");
    EXPECT_EQ(readFile(p("mbm_L3_assignments")), kAllOn);
    ASSERT_EQ(::mkdir(p("mon_groups/a").c_str(), 0755), 0);
    EXPECT_EQ(readFile(p("mon_groups/a/mbm_L3_assignments")), kAllOn);
    EXPECT_EQ(info("available_mbm_cntrs"), "0=0;1=0\n");
    // mkdir succeeds with none left; the group counts no bandwidth, still its occupancy.
    ASSERT_EQ(::mkdir(p("mon_groups/b").c_str(), 0755), 0);
    EXPECT_EQ(readFile(p("mon_groups/b/mbm_L3_assignments")), kAllOff);
    EXPECT_EQ(counter("mon_groups/b", 0, "mbm_total_bytes"), "Unassigned\n");
    EXPECT_EQ(counter("mon_groups/b", 1, "mbm_local_bytes"), "Unassigned\n");
    EXPECT_NE(counter("mon_groups/b", 0, "llc_occupancy"), "Unassigned\n");
    EXPECT_NE(counter("mon_groups/a", 0, "mbm_total_bytes"), "Unassigned\n");

    // No counter free: ENOSPC, and last_cmd_status says which event and domain.
    EXPECT_EQ(writeErr(p("mon_groups/b/mbm_L3_assignments"), "mbm_total_bytes:0=e\n"), ENOSPC);
    EXPECT_EQ(lastCmd(), "Failed to allocate counter for mbm_total_bytes in domain 0\n"
                         "Assign operation 'mbm_total_bytes:0=e' failed\n");
    // Freed by one group, taken by the other, on that domain only.
    EXPECT_EQ(writeErr(p("mon_groups/a/mbm_L3_assignments"), "mbm_total_bytes:0=_\n"), 0);
    EXPECT_EQ(info("available_mbm_cntrs"), "0=1;1=0\n");
    EXPECT_EQ(writeErr(p("mon_groups/b/mbm_L3_assignments"), "mbm_total_bytes:0=e\n"), 0);
    EXPECT_EQ(readFile(p("mon_groups/b/mbm_L3_assignments")),
              "mbm_total_bytes:0=e;1=_\nmbm_local_bytes:0=_;1=_\n");
    EXPECT_NE(counter("mon_groups/b", 0, "mbm_total_bytes"), "Unassigned\n");
    EXPECT_EQ(counter("mon_groups/b", 1, "mbm_total_bytes"), "Unassigned\n");
    EXPECT_EQ(counter("mon_groups/a", 0, "mbm_total_bytes"), "Unassigned\n");
    // rmdir frees the group's counters.
    ASSERT_EQ(::rmdir(p("mon_groups/a").c_str()), 0);
    EXPECT_EQ(info("available_mbm_cntrs"), "0=1;1=2\n");
}

TEST_F(Assign, WritesAreLinesProcessedUpToTheFirstErrorAndStarEndsItsLine) {
    mount("mbm_event", 8);
    ASSERT_EQ(::mkdir(p("mon_groups/g").c_str(), 0755), 0);
    const std::string f = p("mon_groups/g/mbm_L3_assignments");
    // Without its trailing newline a write is refused whole.
    EXPECT_EQ(writeErr(f, "mbm_total_bytes:0=_"), EINVAL);
    EXPECT_EQ(readFile(f), kAllOn);
    // The first line is done, the second fails, the third is never looked at.
    EXPECT_EQ(writeErr(f, "mbm_local_bytes:0=_;1=_\nbogus:0=_\nmbm_total_bytes:0=_\n"), ENOENT);
    EXPECT_EQ(lastCmd(), "Invalid event bogus\n");
    EXPECT_EQ(readFile(f), "mbm_total_bytes:0=e;1=e\nmbm_local_bytes:0=_;1=_\n");
    // '*' is every domain, and ends its line: ";1=e" after it is not applied.
    EXPECT_EQ(writeErr(f, "mbm_total_bytes:*=_;1=e\nmbm_local_bytes:1=e\n"), 0);
    EXPECT_EQ(readFile(f), "mbm_total_bytes:0=_;1=_\nmbm_local_bytes:0=_;1=e\n");
    // Bad domain ids and states.
    EXPECT_EQ(writeErr(f, "mbm_total_bytes:2=e\n"), EINVAL);
    EXPECT_EQ(lastCmd(), "Invalid domain id 2\n");
    EXPECT_EQ(writeErr(f, "mbm_total_bytes:x=e\n"), EINVAL);
    EXPECT_EQ(lastCmd(), "Missing domain id\n");
    EXPECT_EQ(writeErr(f, "mbm_total_bytes:0=s\n"), EINVAL);
    EXPECT_EQ(lastCmd(), "Assign operation 'mbm_total_bytes:0=s' failed\n");
    // Assigning what is assigned changes nothing (and restarts nothing).
    EXPECT_EQ(writeErr(f, "mbm_local_bytes:1=e\n"), 0);
    EXPECT_EQ(readFile(f), "mbm_total_bytes:0=_;1=_\nmbm_local_bytes:0=_;1=e\n");
    EXPECT_EQ(info("available_mbm_cntrs"), "0=6;1=5\n");
}

TEST_F(Assign, ACountRestartsFromZeroAtEachAssignment) {
    mount("mbm_event", 8);
    ASSERT_EQ(::mkdir(p("mon_groups/g").c_str(), 0755), 0);
    emu_->drive("mon_groups/g", 2'000'000'000, 1'000'000'000, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const uint64_t before = std::stoull(counter("mon_groups/g", 0, "mbm_total_bytes"));
    EXPECT_GT(before, 100'000'000u); // 1 GB/s on each of the 2 domains, for 200 ms
    const std::string f = p("mon_groups/g/mbm_L3_assignments");
    ASSERT_EQ(writeErr(f, "mbm_total_bytes:0=_\n"), 0);
    ASSERT_EQ(writeErr(f, "mbm_total_bytes:0=e\n"), 0);
    const uint64_t after = std::stoull(counter("mon_groups/g", 0, "mbm_total_bytes"));
    EXPECT_LT(after, before / 2) << "counted on across an assignment";
    // Domain 1 kept its counter: its count goes on.
    EXPECT_GT(std::stoull(counter("mon_groups/g", 1, "mbm_total_bytes")), before);
}

TEST_F(Assign, ACtrlMonGroupSumsOnlyWhatHoldsCountersAndIsUnassignedWithoutAny) {
    mount("mbm_event", 8);
    ASSERT_EQ(::mkdir(p("c1").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(p("c1/mon_groups/m").c_str(), 0755), 0);
    ASSERT_EQ(writeErr(p("c1/mbm_L3_assignments"), "mbm_total_bytes:*=_\n"), 0);
    ASSERT_EQ(writeErr(p("c1/mon_groups/m/mbm_L3_assignments"), "mbm_total_bytes:*=_\n"), 0);
    EXPECT_EQ(counter("c1", 0, "mbm_total_bytes"), "Unassigned\n");
    EXPECT_NE(counter("c1", 0, "mbm_local_bytes"), "Unassigned\n");
    emu_->drive("c1", 1'000'000'000, 0, 0);
    emu_->drive("c1/mon_groups/m", 4'000'000'000, 0, 0);
    ASSERT_EQ(writeErr(p("c1/mon_groups/m/mbm_L3_assignments"), "mbm_total_bytes:0=e\n"), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    // c1's own RMID holds no counter: its sum is m's alone (2 GB/s on domain 0).
    const uint64_t ctrl = std::stoull(counter("c1", 0, "mbm_total_bytes"));
    const uint64_t mon = std::stoull(counter("c1/mon_groups/m", 0, "mbm_total_bytes"));
    EXPECT_GE(ctrl, mon - mon / 10);
    EXPECT_LE(ctrl, mon + mon / 10);
}

TEST_F(Assign, AssignOnMkdirOffLeavesNewGroupsWithout) {
    mount("mbm_event", 8);
    EXPECT_EQ(writeErr(p("info/L3_MON/mbm_assign_on_mkdir"), "0\n"), 0);
    EXPECT_EQ(info("mbm_assign_on_mkdir"), "0\n");
    EXPECT_EQ(writeErr(p("info/L3_MON/mbm_assign_on_mkdir"), "maybe\n"), EINVAL);
    ASSERT_EQ(::mkdir(p("mon_groups/g").c_str(), 0755), 0);
    EXPECT_EQ(readFile(p("mon_groups/g/mbm_L3_assignments")), kAllOff);
    EXPECT_EQ(info("available_mbm_cntrs"), "0=6;1=6\n");
}

TEST_F(Assign, DefaultModeRefusesTheAssignmentFilesAndASwitchResetsEverything) {
    mount("default", 4);
    EXPECT_EQ(info("mbm_assign_mode"), "mbm_event\n[default]\n");
    EXPECT_EQ(info("num_mbm_cntrs"), "0=4;1=4\n");
    std::string out;
    EXPECT_EQ(readErr(p("mbm_L3_assignments"), out), EINVAL);
    EXPECT_EQ(lastCmd(), "mbm_event mode is not enabled\n");
    EXPECT_EQ(readErr(p("info/L3_MON/available_mbm_cntrs"), out), EINVAL);
    EXPECT_EQ(readErr(p("info/L3_MON/mbm_assign_on_mkdir"), out), EINVAL);
    EXPECT_EQ(writeErr(p("mbm_L3_assignments"), "mbm_total_bytes:0=e\n"), EINVAL);
    ASSERT_EQ(::mkdir(p("mon_groups/g").c_str(), 0755), 0);
    emu_->drive("mon_groups/g", 2'000'000'000, 0, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const uint64_t before = std::stoull(counter("mon_groups/g", 0, "mbm_total_bytes"));
    EXPECT_GT(before, 100'000'000u);

    // To mbm_event: every count restarts, no group holds a counter, auto-assign is on.
    ASSERT_EQ(writeErr(p("info/L3_MON/mbm_assign_mode"), "mbm_event\n"), 0);
    EXPECT_EQ(info("mbm_assign_mode"), "[mbm_event]\ndefault\n");
    EXPECT_EQ(info("available_mbm_cntrs"), "0=4;1=4\n");
    EXPECT_EQ(info("mbm_assign_on_mkdir"), "1\n");
    EXPECT_EQ(readFile(p("mon_groups/g/mbm_L3_assignments")), kAllOff);
    EXPECT_EQ(counter("mon_groups/g", 0, "mbm_total_bytes"), "Unassigned\n");
    ASSERT_EQ(writeErr(p("mon_groups/g/mbm_L3_assignments"), "mbm_total_bytes:0=e\n"), 0);
    EXPECT_LT(std::stoull(counter("mon_groups/g", 0, "mbm_total_bytes")), before / 2);
    // And back: numbers again, from 0.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const uint64_t assigned = std::stoull(counter("mon_groups/g", 0, "mbm_total_bytes"));
    ASSERT_EQ(writeErr(p("info/L3_MON/mbm_assign_mode"), "default\n"), 0);
    EXPECT_LT(std::stoull(counter("mon_groups/g", 0, "mbm_total_bytes")), assigned / 2);
    EXPECT_NE(counter("mon_groups/g", 1, "mbm_total_bytes"), "Unassigned\n");
    EXPECT_EQ(writeErr(p("info/L3_MON/mbm_assign_mode"), "bogus\n"), EINVAL);
    EXPECT_EQ(lastCmd(), "Unsupported assign mode\n");
}

TEST_F(Assign, ArmFixedModeCannotLeaveMbmEventAndItsFiltersAreReadOnly) {
    mount("fixed", 4);
    EXPECT_EQ(info("mbm_assign_mode"), "[mbm_event]\n");
    EXPECT_EQ(writeErr(p("info/L3_MON/mbm_assign_mode"), "default\n"), EINVAL);
    EXPECT_EQ(lastCmd(), "Counter assignment mode is not configurable\n");
    EXPECT_EQ(writeErr(p("info/L3_MON/mbm_assign_mode"), "mbm_event\n"), 0);
    EXPECT_EQ(info("available_mbm_cntrs"), "0=2;1=2\n"); // nothing was reset
    const std::string filter = p("info/L3_MON/event_configs/mbm_total_bytes/event_filter");
    struct stat st {};
    ASSERT_EQ(::stat(filter.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0444u);
    EXPECT_EQ(writeErr(filter, "local_reads\n"), EACCES);
}

TEST_F(Assign, AnEventFilterChangeRestartsThatEventsCounts) {
    mount("mbm_event", 8);
    EXPECT_EQ(readFile(p("info/L3_MON/event_configs/mbm_local_bytes/event_filter")),
              "local_reads,local_non_temporal_writes,local_reads_slow_memory\n");
    ASSERT_EQ(::mkdir(p("mon_groups/g").c_str(), 0755), 0);
    emu_->drive("mon_groups/g", 2'000'000'000, 2'000'000'000, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const uint64_t total = std::stoull(counter("mon_groups/g", 0, "mbm_total_bytes"));
    const uint64_t local = std::stoull(counter("mon_groups/g", 0, "mbm_local_bytes"));
    const std::string f = p("info/L3_MON/event_configs/mbm_total_bytes/event_filter");
    EXPECT_EQ(writeErr(f, "local_reads,teleport\n"), EINVAL);
    EXPECT_EQ(lastCmd(), "Unsupported event config\n");
    ASSERT_EQ(writeErr(f, "local_reads,remote_reads\n"), 0);
    EXPECT_EQ(readFile(f), "local_reads,remote_reads\n");
    EXPECT_LT(std::stoull(counter("mon_groups/g", 0, "mbm_total_bytes")), total / 2);
    EXPECT_GT(std::stoull(counter("mon_groups/g", 0, "mbm_local_bytes")), local);
    EXPECT_EQ(entries(p("info/L3_MON/event_configs")),
              (std::set<std::string>{"mbm_local_bytes", "mbm_total_bytes"}));
}

} // namespace
