// rdtmonctl selftest end to end: the real binary against rdtmond on a private bus and the
// resctrl emulator. Every behaviour check passes there and the load checks say the emulator
// sees no memory traffic; a run cut short by SIGINT, or by rdtmond's death (and its next
// start), leaves no group, no record and no process behind.

#include "DaemonOnEmulator.h"
#include "Subprocess.h"
#include "TempDir.h"
#include "TestUtil.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <dirent.h>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace rdtmon::test;
using nlohmann::json;
using ::testing::HasSubstr;

namespace {

constexpr int kExitAccessDenied = 5;
constexpr int kExitChecksFailed = 7;
constexpr const char* kPrefix = "rdtmon-selftest-";

CommandResult ctl(const PrivateBus& bus, std::vector<std::string> args, CommandOptions opts = {}) {
    args.insert(args.begin(), RDTMONCTL_BIN);
    opts.env.push_back(bus.envEntry());
    opts.timeout = std::chrono::milliseconds(scaledDeadline(std::chrono::seconds(120)));
    return runCommand(args, opts);
}

std::vector<std::string> namesIn(const std::string& dir) {
    std::vector<std::string> out;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (const dirent* e = ::readdir(d)) {
            if (e->d_name[0] != '.') {
                out.emplace_back(e->d_name);
            }
        }
        ::closedir(d);
    }
    return out;
}

// The self-test's groups under every CTRL_MON group of the emulator.
std::vector<std::string> selftestGroups(const std::string& root) {
    std::vector<std::string> out;
    std::vector<std::string> ctrls = {""};
    for (const std::string& n : namesIn(root)) {
        if (n != "info" && n != "mon_groups" && n != "mon_data" &&
            !namesIn(root + "/" + n + "/mon_groups").empty()) {
            ctrls.push_back("/" + n);
        }
    }
    for (const std::string& c : ctrls) {
        for (const std::string& g : namesIn(root + c + "/mon_groups")) {
            if (g.rfind(kPrefix, 0) == 0) {
                out.push_back(c + "/mon_groups/" + g);
            }
        }
    }
    return out;
}

// Children of this process (its subreaper role gives it rdtmonctl's orphans) that are
// rdtmonctl's test processes: comm rdtmonctl (forked, never exec'd) or sleep.
std::vector<std::string> leftoverProcesses() {
    std::vector<std::string> out;
    const pid_t self = ::getpid();
    for (const std::string& n : namesIn("/proc")) {
        if (n.find_first_not_of("0123456789") != std::string::npos) {
            continue;
        }
        const std::string stat = readFile("/proc/" + n + "/stat");
        const auto open = stat.find('(');
        const auto close = stat.rfind(')');
        if (open == std::string::npos || close == std::string::npos) {
            continue;
        }
        const std::string comm = stat.substr(open + 1, close - open - 1);
        std::istringstream rest(stat.substr(close + 2));
        std::string state;
        long ppid = 0;
        rest >> state >> ppid;
        if (ppid == self && (comm == "rdtmonctl" || comm == "sleep")) {
            if (state == "Z") {
                // Ended, and ours to reap (rdtmonctl died before it could).
                ::waitpid(std::stoi(n), nullptr, 0);
                continue;
            }
            out.push_back(n + " " + comm + " " + state);
        }
    }
    return out;
}

const json& checkIn(const json& report, const std::string& name) {
    for (const json& c : report.at("checks")) {
        if (c.at("name") == name) {
            return c;
        }
    }
    static const json none = json::object();
    ADD_FAILURE() << "no check " << name << " in " << report.dump(2);
    return none;
}

class SelftestTest : public ::testing::Test, protected DaemonOnEmulator {
protected:
    // A short exit grace: rdtmonctl killed with -9 leaves groups whose processes died with
    // it, which rdtmond removes as ended containers after that grace.
    explicit SelftestTest(EmulatorOptions emu = EmulatorOptions{.numRmids = 32, .l3Domains = 2})
        : DaemonOnEmulator(emu, R"({"groups": {"exitGraceSeconds": 1}})") {
        // rdtmonctl's orphans, if it left any, become this process's children to find.
        ::prctl(PR_SET_CHILD_SUBREAPER, 1);
        // A second CLOS, as an operator's allocation would make: other-clos-refused runs.
        ::mkdir((emu_.path() + "/clos1").c_str(), 0755);
    }
    ~SelftestTest() override { ::prctl(PR_SET_CHILD_SUBREAPER, 0); }

    void expectNothingLeft() {
        EXPECT_THAT(selftestGroups(emu_.path()), ::testing::IsEmpty());
        const CommandResult list = ctl(bus_, {"list", "--json"});
        ASSERT_EQ(list.exitCode, 0) << list.err;
        EXPECT_THAT(list.out, ::testing::Not(HasSubstr(kPrefix)));
        // Killed processes take a moment to be reaped by their subreaper.
        std::vector<std::string> left;
        const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        do {
            left = leftoverProcesses();
            if (left.empty()) {
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        } while (std::chrono::steady_clock::now() < end);
        EXPECT_THAT(left, ::testing::IsEmpty());
    }
};

// rdtmonctl selftest in the background, its output to a file; killed on destruction.
class BackgroundSelftest {
public:
    explicit BackgroundSelftest(const PrivateBus& bus) : dir_("selftest-bg") {
        pid_ = spawnLogged({RDTMONCTL_BIN, "selftest", "--json"}, mergedEnv({bus.envEntry()}),
                           dir_.file("out"), true);
    }
    ~BackgroundSelftest() {
        if (pid_ > 0) {
            terminate(pid_, std::chrono::seconds(10));
        }
    }
    BackgroundSelftest(const BackgroundSelftest&) = delete;
    BackgroundSelftest& operator=(const BackgroundSelftest&) = delete;
    pid_t pid() const { return pid_; }
    int wait() {
        const auto st = waitForExit(pid_, scaledDeadline(std::chrono::seconds(60)));
        if (!st) {
            return -1;
        }
        pid_ = -1;
        return waitStatusToCode(*st);
    }
    std::string output() const { return readFile(dir_.file("out")); }

private:
    TempDir dir_;
    pid_t pid_ = -1;
};

// Waits until the self-test's load group exists (the load runs for about a second, its
// buffer faulted in before): the middle of the run.
bool waitForLoadGroup(const std::string& root, pid_t pid) {
    const std::string load = std::string("/mon_groups/") + kPrefix + std::to_string(pid) + "-load";
    const auto end = std::chrono::steady_clock::now() + scaledDeadline(std::chrono::seconds(60));
    while (std::chrono::steady_clock::now() < end) {
        for (const std::string& g : selftestGroups(root)) {
            if (g.size() >= load.size() &&
                g.compare(g.size() - load.size(), load.size(), load) == 0) {
                return true;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return false;
}

} // namespace

TEST_F(SelftestTest, EveryBehaviourPassesOnTheEmulatorAndTheLoadIsNotApplicable) {
    const CommandResult r = ctl(bus_, {"selftest", "--json"});
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
    const json report = json::parse(r.out);
    EXPECT_TRUE(report.at("passed").get<bool>());
    EXPECT_TRUE(report.at("node").at("emulated").get<bool>());
    EXPECT_EQ(report.at("node").at("fs_type"), "fuse.resctrl") << report.at("node").dump();
    EXPECT_EQ(report.at("node").at("num_rmids"), 32);
    EXPECT_EQ(report.at("node").at("l3_domains"), json({"mon_L3_00", "mon_L3_01"}));
    EXPECT_EQ(report.at("node").at("closes"), json({"/", "/clos1"}));
    for (const char* name : {"create-group", "threads-moved", "children-inherit",
                             "counters-readable", "other-clos-refused", "remove-group"}) {
        EXPECT_EQ(checkIn(report, name).at("result"), "pass") << checkIn(report, name).dump(2);
    }
    for (const char* name : {"load-bandwidth", "load-other-domains", "load-occupancy"}) {
        const json& c = checkIn(report, name);
        EXPECT_EQ(c.at("result"), "not-applicable") << c.dump(2);
        EXPECT_THAT(c.at("summary").get<std::string>(), HasSubstr("sees no memory traffic"));
    }
    // Not in mbm_event mode: no assignment check.
    for (const json& c : report.at("checks")) {
        EXPECT_NE(c.at("name"), "counter-assignment");
    }
    EXPECT_THAT(checkIn(report, "threads-moved").at("summary").get<std::string>(),
                ::testing::StartsWith("4 of 4 threads of pid "));
    expectNothingLeft();
}

TEST_F(SelftestTest, TheHumanReportNamesEachCheckAndTheResult) {
    const CommandResult r = ctl(bus_, {"selftest"});
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr("resctrl at " + emu_.path() + " (fuse.resctrl, "));
    EXPECT_THAT(r.out, HasSubstr("PASS  create-group"));
    EXPECT_THAT(r.out, HasSubstr("PASS  children-inherit"));
    EXPECT_THAT(r.out, HasSubstr("PASS  other-clos-refused"));
    EXPECT_THAT(r.out, HasSubstr("N/A   load-bandwidth"));
    EXPECT_THAT(r.out, HasSubstr("result: PASS (6 passed, 0 failed, 3 not applicable)"));
    expectNothingLeft();
}

TEST_F(SelftestTest, OnlyRootMayRunIt) {
    CommandOptions nobody;
    nobody.uid = 65534;
    const CommandResult r = ctl(bus_, {"selftest"}, nobody);
    EXPECT_EQ(r.exitCode, kExitAccessDenied) << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr("must run as root"));
    expectNothingLeft();
}

TEST_F(SelftestTest, SigintInTheMiddleRemovesEverything) {
    BackgroundSelftest st(bus_);
    ASSERT_TRUE(waitForLoadGroup(emu_.path(), st.pid())) << st.output();
    ASSERT_EQ(::kill(st.pid(), SIGINT), 0);
    EXPECT_EQ(st.wait(), 128 + SIGINT) << st.output();
    const json report = json::parse(st.output());
    EXPECT_EQ(report.at("stopped"), "interrupted by SIGINT");
    EXPECT_FALSE(report.at("passed").get<bool>());
    EXPECT_EQ(report.at("left_behind"), json::array());
    expectNothingLeft();
}

TEST_F(SelftestTest, RdtmondKilledInTheMiddleLeavesNothingAfterItsNextStart) {
    BackgroundSelftest st(bus_);
    ASSERT_TRUE(waitForLoadGroup(emu_.path(), st.pid())) << st.output();
    daemon_.kill9();
    EXPECT_EQ(st.wait(), kExitChecksFailed) << st.output();
    const json report = json::parse(st.output());
    EXPECT_FALSE(report.at("passed").get<bool>());
    EXPECT_THAT(report.at("stopped").get<std::string>(), HasSubstr("rdtmond"));
    EXPECT_FALSE(report.at("left_behind").empty()) << report.dump(2);
    EXPECT_FALSE(selftestGroups(emu_.path()).empty()); // until rdtmond's next start
    daemon_.start();
    EXPECT_THAT(daemon_.log(), HasSubstr("self-test"));
    expectNothingLeft();
}

TEST_F(SelftestTest, RdtmonctlKilledInTheMiddleLeavesNothingOnceItsProcessesEnded) {
    BackgroundSelftest st(bus_);
    ASSERT_TRUE(waitForLoadGroup(emu_.path(), st.pid())) << st.output();
    ASSERT_EQ(::kill(st.pid(), SIGKILL), 0);
    EXPECT_EQ(st.wait(), 128 + SIGKILL);
    // Its processes died with it (PR_SET_PDEATHSIG); rdtmond removes their groups as ended
    // containers after the exit grace (1 s here).
    const auto end = std::chrono::steady_clock::now() + scaledDeadline(std::chrono::seconds(30));
    while (!selftestGroups(emu_.path()).empty() && std::chrono::steady_clock::now() < end) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_THAT(daemon_.log(), HasSubstr("the container ended"));
    expectNothingLeft();
}

namespace {

// AMD's assignable counters (Linux 6.18+) in mbm_event mode, with SNC: the assignment check
// runs, and the counters are read on every sub-domain too.
class SelftestAssignable : public SelftestTest {
protected:
    SelftestAssignable()
        : SelftestTest(
              EmulatorOptions{.numRmids = 32, .l3Domains = 2, .snc = 2, .mbmAssign = "mbm_event"}) {
    }
};

} // namespace

TEST_F(SelftestAssignable, TheAssignmentCheckPassesAndSubDomainsAreRead) {
    const CommandResult r = ctl(bus_, {"selftest", "--json"});
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
    const json report = json::parse(r.out);
    EXPECT_EQ(report.at("node").at("mbm_assign_mode"), "mbm_event");
    EXPECT_EQ(report.at("node").at("snc_nodes_per_domain"), 2);
    const json& a = checkIn(report, "counter-assignment");
    EXPECT_EQ(a.at("result"), "pass") << a.dump(2);
    const json& c = checkIn(report, "counters-readable");
    EXPECT_EQ(c.at("result"), "pass") << c.dump(2);
    expectNothingLeft();
}
