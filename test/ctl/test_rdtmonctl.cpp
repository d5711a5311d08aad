// rdtmonctl end to end: the real binary against rdtmond on a private bus and the resctrl
// emulator, which drives a group's bandwidth at a known rate, resets a counter or makes it
// read Unavailable. Also what it says, and exits with, when there is no rdtmond, no
// monitoring, or a bad command line.

#include "DaemonOnEmulator.h"
#include "EmulatorMount.h"
#include "PrivateBus.h"
#include "Proc.h"
#include "RdtmonClient.h"
#include "RdtmondProcess.h"
#include "Subprocess.h"
#include "TempDir.h"
#include "TestUtil.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <map>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <vector>

using namespace rdtmon::test;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

using LabelMap = std::map<std::string, std::string>;

const LabelMap kPodLabels = {
    {"pod", "web-7d9f"}, {"namespace", "shop"}, {"container", "nginx"}, {"pod_uid", "u-1"}};
constexpr double kTotalBps = 200e6; // driven MBM total, bytes/s
constexpr double kLocalBps = 50e6;
constexpr double kLlcBytes = 3 * 1024 * 1024;

// rdtmonctl's exit codes (ctl/ExitCodes.h, rdtmonctl(1)).
constexpr int kExitUsage = 2;
constexpr int kExitNotRunning = 3;
constexpr int kExitUnsupported = 4;
constexpr int kExitAccessDenied = 5;
constexpr int kExitNoSuchGroup = 6;

CommandResult ctl(const PrivateBus& bus, std::vector<std::string> args, CommandOptions opts = {}) {
    args.insert(args.begin(), RDTMONCTL_BIN);
    opts.env.push_back(bus.envEntry());
    return runCommand(args, opts);
}

// The lines of a text, without the newlines.
std::vector<std::string> linesOf(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        out.push_back(line);
    }
    return out;
}

// rdtmonctl running in the background, its stdout and stderr to a file read as it grows;
// SIGTERM and reap on destruction.
class Background {
public:
    Background(const PrivateBus& bus, std::vector<std::string> args) : dir_("ctl-bg") {
        args.insert(args.begin(), RDTMONCTL_BIN);
        pid_ = spawnLogged(args, mergedEnv({bus.envEntry()}), dir_.file("out"), true);
    }
    ~Background() {
        if (pid_ > 0) {
            terminate(pid_, std::chrono::seconds(5));
        }
    }
    Background(const Background&) = delete;
    Background& operator=(const Background&) = delete;

    std::vector<std::string> lines() const { return linesOf(readFile(dir_.file("out"))); }
    // Waits until at least n complete lines were written.
    bool waitForLines(std::size_t n, std::chrono::milliseconds timeout) const {
        const auto end = std::chrono::steady_clock::now() + scaledDeadline(timeout);
        while (std::chrono::steady_clock::now() < end) {
            const std::string text = readFile(dir_.file("out"));
            if (linesOf(text).size() >= n && !text.empty() && text.back() == '\n') {
                return true;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return false;
    }
    // The exit code once it exits on its own (-1 if it does not in time).
    int wait(std::chrono::milliseconds timeout) {
        const auto st = waitForExit(pid_, scaledDeadline(timeout));
        if (!st) {
            return -1;
        }
        pid_ = -1;
        return waitStatusToCode(*st);
    }
    pid_t pid() const { return pid_; }

private:
    TempDir dir_;
    pid_t pid_ = -1;
};

// The JSON of the container with this id in a top frame.
const json& containerIn(const json& frame, const std::string& id) {
    for (const json& c : frame.at("containers")) {
        if (c.at("container_id") == id) {
            return c;
        }
    }
    static const json none;
    ADD_FAILURE() << "no " << id << " in " << frame.dump();
    return none;
}

class RdtmonctlTest : public ::testing::Test, protected DaemonOnEmulator {
protected:
    RdtmonctlTest()
        : DaemonOnEmulator(EmulatorOptions{.numRmids = 32, .l3Domains = 2}),
          client_(bus_.address()) {}

    // A group for a sleeper of its own, with labels through the pidfd call.
    void makeGroup(const std::string& id, const LabelMap& labels) {
        procs_.emplace_back(spawnSleeper());
        Pidfd pidfd(procs_.back().pid());
        const CallResult r = client_.createContainerGroup(id, pidfd.get(), labels);
        ASSERT_TRUE(r.ok()) << r.error << ": " << r.message;
    }
    void drive(const std::string& id, double total, double local, double llc) {
        emu_.control(concat("drive mon_groups/", id, " ", static_cast<uint64_t>(total), " ",
                            static_cast<uint64_t>(local), " ", static_cast<uint64_t>(llc)));
    }

    RdtmonClient client_;
    std::vector<ChildProcess> procs_;
};

} // namespace

TEST_F(RdtmonctlTest, StatusAsTextAndAsJson) {
    makeGroup("web-1", kPodLabels);
    const CommandResult text = ctl(bus_, {"status"});
    ASSERT_EQ(text.exitCode, 0) << text.err;
    EXPECT_EQ(text.err, "");
    EXPECT_THAT(text.out, HasSubstr("supported:     yes\n"));
    EXPECT_THAT(text.out, HasSubstr("RMIDs:         32\n"));
    EXPECT_THAT(text.out, HasSubstr("groups:        1\n"));
    EXPECT_THAT(text.out, HasSubstr(emu_.path()));

    const CommandResult j = ctl(bus_, {"status", "--json"});
    ASSERT_EQ(j.exitCode, 0) << j.err;
    const json s = json::parse(j.out);
    EXPECT_EQ(s.at("supported"), true);
    EXPECT_EQ(s.at("resctrl_path"), emu_.path());
    EXPECT_EQ(s.at("num_rmids"), 32);
    EXPECT_EQ(s.at("group_count"), 1);
    EXPECT_EQ(s.at("version"), client_.property<std::string>("Version"));
    EXPECT_EQ(s.at("mon_features"), json({"llc_occupancy", "mbm_total_bytes", "mbm_local_bytes"}));
    // The default group and ours hold an RMID each.
    ASSERT_TRUE(s.at("free_rmids").is_number()) << s.dump();
    EXPECT_EQ(s.at("free_rmids"), 30);
}

TEST_F(RdtmonctlTest, ListAsTextAndAsJsonWithLabels) {
    makeGroup("web-1", kPodLabels);
    const std::string longId(64, 'a');
    makeGroup(longId, {});
    const CommandResult text = ctl(bus_, {"list"});
    ASSERT_EQ(text.exitCode, 0) << text.err;
    const auto lines = linesOf(text.out);
    ASSERT_EQ(lines.size(), 3u) << text.out;
    EXPECT_THAT(lines[0], HasSubstr("CONTAINER ID"));
    // Sorted by id; a long id is cut to 12 characters, a missing label is "-".
    EXPECT_THAT(lines[1], HasSubstr(std::string(12, 'a') + "  -"));
    EXPECT_EQ(lines[1].find(std::string(13, 'a')), lines[1].find("/mon_groups/") + 12) << lines[1];
    EXPECT_THAT(lines[2], HasSubstr("web-1"));
    EXPECT_THAT(lines[2], HasSubstr("shop"));
    EXPECT_THAT(lines[2], HasSubstr("web-7d9f"));
    EXPECT_THAT(lines[2], HasSubstr("nginx"));
    EXPECT_THAT(ctl(bus_, {"list", "--no-trunc"}).out, HasSubstr(longId));

    const CommandResult j = ctl(bus_, {"list", "--json"});
    ASSERT_EQ(j.exitCode, 0) << j.err;
    const json arr = json::parse(j.out);
    ASSERT_EQ(arr.size(), 2u);
    EXPECT_EQ(arr[0].at("container_id"), longId);
    EXPECT_EQ(arr[0].at("labels"), json::object());
    EXPECT_EQ(arr[1].at("container_id"), "web-1");
    EXPECT_EQ(arr[1].at("labels"), json(kPodLabels));
    EXPECT_EQ(arr[1].at("resctrl_path"), emu_.path() + "/mon_groups/web-1");
    EXPECT_EQ(arr[1].at("object_path"), "/org/rdtmon1/group/web_2d1");
    EXPECT_EQ(arr[1].at("pid"), procs_[0].pid());
    EXPECT_GT(arr[1].at("created_usec").get<uint64_t>(), 1'600'000'000'000'000u);
    // The sleeper shares this test's cgroup, so none is followed; its one thread moved.
    EXPECT_EQ(arr[1].at("state"), "active");
    EXPECT_EQ(arr[1].at("cgroup"), "");
    EXPECT_EQ(arr[1].at("tasks_in_group"), 1);
    EXPECT_EQ(arr[1].at("tasks_outside"), 0);
    EXPECT_THAT(lines[0], HasSubstr("STATE"));
    EXPECT_THAT(lines[2], HasSubstr("active  1"));
}

// Two RMIDs: the default group holds one, so a second container waits for the other.
TEST(RdtmonctlWaiting, AWaitingContainerIsListedAndCountedUntilItGetsItsGroup) {
    EmulatorMount emu(EmulatorOptions{.numRmids = 2, .l3Domains = 1});
    PrivateBus bus;
    Rdtmond daemon(bus, Rdtmond::Options{.resctrl = emu.path()});
    RdtmonClient client(bus.address());
    std::vector<ChildProcess> procs;
    for (const char* id : {"first", "second"}) {
        procs.emplace_back(spawnSleeper());
        Pidfd pidfd(procs.back().pid());
        ASSERT_TRUE(client.createContainerGroup(id, pidfd.get(), {}).ok()) << id;
    }
    const CommandResult j = ctl(bus, {"list", "--json"});
    ASSERT_EQ(j.exitCode, 0) << j.err;
    const json arr = json::parse(j.out);
    ASSERT_EQ(arr.size(), 2u) << arr.dump();
    EXPECT_EQ(arr[0].at("container_id"), "first");
    EXPECT_EQ(arr[0].at("state"), "active");
    EXPECT_EQ(arr[1].at("container_id"), "second");
    EXPECT_EQ(arr[1].at("state"), "waiting");
    EXPECT_EQ(arr[1].at("resctrl_path"), "");
    EXPECT_EQ(arr[1].at("pid"), procs[1].pid());
    const auto text = linesOf(ctl(bus, {"list"}).out);
    ASSERT_EQ(text.size(), 3u);
    EXPECT_THAT(text[2], HasSubstr("waiting"));
    const CommandResult m = ctl(bus, {"metrics"});
    EXPECT_THAT(m.out, HasSubstr("\nrdtmon_containers_waiting 1\n"));
    EXPECT_THAT(m.out, HasSubstr("rdtmon_container_tasks{container_id=\"first\",pod=\"\","
                                 "namespace=\"\",container=\"\",where=\"group\"} 1\n"));

    ASSERT_TRUE(client.removeGroup("first").ok());
    // The removal frees the RMID; the grant runs on rdtmond's loop right after the call.
    const auto deadline =
        std::chrono::steady_clock::now() + scaledDeadline(std::chrono::seconds(10));
    json now;
    do {
        now = json::parse(ctl(bus, {"list", "--json"}).out);
    } while (!(now.size() == 1 && now[0].at("state") == "active") &&
             std::chrono::steady_clock::now() < deadline);
    ASSERT_EQ(now.size(), 1u) << now.dump();
    EXPECT_EQ(now[0].at("container_id"), "second");
    EXPECT_EQ(now[0].at("state"), "active") << now.dump();
    EXPECT_EQ(now[0].at("resctrl_path"), emu.path() + "/mon_groups/second");
    EXPECT_THAT(ctl(bus, {"metrics"}).out, HasSubstr("\nrdtmon_containers_waiting 0\n"));
}

TEST_F(RdtmonctlTest, CountersAsTextAndAsJson) {
    makeGroup("web-1", kPodLabels);
    emu_.control("counter mon_groups/web-1 mbm_local_bytes Unavailable");
    const CommandResult j = ctl(bus_, {"counters", "web-1", "--json"});
    ASSERT_EQ(j.exitCode, 0) << j.err;
    const json c = json::parse(j.out);
    EXPECT_EQ(c.at("container_id"), "web-1");
    ASSERT_EQ(c.at("domains").size(), 2u) << c.dump();
    for (const auto& [domain, events] : c.at("domains").items()) {
        EXPECT_TRUE(events.contains("llc_occupancy")) << domain;
        EXPECT_TRUE(events.contains("mbm_total_bytes")) << domain;
        EXPECT_FALSE(events.contains("mbm_local_bytes")) << domain;
    }
    const CommandResult text = ctl(bus_, {"counters", "web-1"});
    ASSERT_EQ(text.exitCode, 0) << text.err;
    const auto lines = linesOf(text.out);
    ASSERT_EQ(lines.size(), 3u) << text.out;
    EXPECT_THAT(lines[0], HasSubstr("DOMAIN"));
    EXPECT_THAT(lines[0], HasSubstr("mbm_local_bytes"));
    EXPECT_THAT(lines[1], HasSubstr("mon_L3_00"));
    EXPECT_EQ(lines[1].back(), '-'); // the Unavailable event, last column

    const CommandResult none = ctl(bus_, {"counters", "nope"});
    EXPECT_EQ(none.exitCode, kExitNoSuchGroup) << none.out << none.err;
    EXPECT_THAT(none.err, HasSubstr("rdtmonctl: "));
    EXPECT_EQ(linesOf(none.err).size(), 1u) << none.err;
}

TEST_F(RdtmonctlTest, TopShowsTheDrivenRatesWithinTenPercent) {
    makeGroup("web-1", kPodLabels);
    makeGroup("idle-1", {});
    drive("web-1", kTotalBps, kLocalBps, kLlcBytes);
    drive("idle-1", 1e6, 1e6, 4096);
    const CommandResult j = ctl(bus_, {"top", "--json", "-n", "2", "-d", "1"});
    ASSERT_EQ(j.exitCode, 0) << j.err;
    const auto lines = linesOf(j.out);
    ASSERT_EQ(lines.size(), 2u) << j.out;
    for (const std::string& line : lines) {
        const json frame = json::parse(line);
        EXPECT_NEAR(frame.at("interval_seconds").get<double>(), 1.0, 0.5 * kSlowdown);
        const json& web = containerIn(frame, "web-1");
        EXPECT_EQ(web.at("name"), "shop/web-7d9f/nginx");
        EXPECT_EQ(web.at("labels"), json(kPodLabels));
        EXPECT_NEAR(web.at("mbm_total_bytes_per_second").get<double>(), kTotalBps,
                    0.10 * kTotalBps);
        EXPECT_NEAR(web.at("mbm_local_bytes_per_second").get<double>(), kLocalBps,
                    0.10 * kLocalBps);
        EXPECT_NEAR(web.at("llc_occupancy_bytes").get<double>(), kLlcBytes, 0.10 * kLlcBytes);
        ASSERT_EQ(web.at("domains").size(), 2u);
        EXPECT_NEAR(web.at("domains")[0].at("mbm_total_bytes_per_second").get<double>(),
                    kTotalBps / 2, 0.10 * kTotalBps / 2);
        // Sorted by MBM total: the driven group first.
        EXPECT_EQ(frame.at("containers")[0].at("container_id"), "web-1");
        // The default CLOS holds both groups: what is outside them is never negative.
        ASSERT_EQ(frame.at("outside").size(), 1u) << line;
        EXPECT_EQ(frame.at("outside")[0].at("clos"), "/");
        EXPECT_GE(frame.at("outside")[0].at("mbm_total_bytes_per_second").get<double>(), 0.0);
    }

    // The same as a table, sorted by name, on a pipe: no escape codes.
    const CommandResult text = ctl(bus_, {"top", "-n", "1", "-d", "1", "--sort", "name"});
    ASSERT_EQ(text.exitCode, 0) << text.err;
    EXPECT_THAT(text.out, Not(HasSubstr("\033")));
    const auto rows = linesOf(text.out);
    ASSERT_EQ(rows.size(), 5u) << text.out; // summary, header, 2 containers, outside (/)
    EXPECT_THAT(rows[0], HasSubstr("2 containers"));
    EXPECT_THAT(rows[1], HasSubstr("TOTAL MB/s"));
    EXPECT_THAT(rows[2], HasSubstr("idle-1"));
    EXPECT_THAT(rows[3], HasSubstr("shop/web-7d9f/nginx"));
    EXPECT_THAT(rows[3], HasSubstr("3.0 MiB"));
    std::istringstream row(rows[3].substr(rows[3].find("MiB") + 3));
    double total = 0, local = 0;
    row >> total >> local;
    EXPECT_NEAR(total, kTotalBps / 1e6, 0.10 * kTotalBps / 1e6) << rows[3];
    EXPECT_NEAR(local, kLocalBps / 1e6, 0.10 * kLocalBps / 1e6) << rows[3];
    EXPECT_THAT(rows[4], HasSubstr("outside (/)"));

    // Per domain: a row per container and L3 domain.
    const CommandResult per = ctl(bus_, {"top", "-n", "1", "-d", "0.5", "--per-domain"});
    ASSERT_EQ(per.exitCode, 0) << per.err;
    EXPECT_THAT(per.out, HasSubstr("DOMAIN"));
    EXPECT_EQ(linesOf(per.out).size(), 2u + 2 * 2 + 2) << per.out;
}

// After the first interval, the emulator changes something; the second shows no rate for
// what changed and still one for what did not.
class TopSecondInterval : public RdtmonctlTest {
protected:
    // Runs top for two 1 s intervals, calling change() once the first was printed.
    std::vector<json> framesAround(const std::function<void()>& change) {
        Background top(bus_, {"top", "--json", "-n", "2", "-d", concat(kSlowdown)});
        EXPECT_TRUE(top.waitForLines(1, std::chrono::seconds(10)));
        change();
        EXPECT_EQ(top.wait(std::chrono::seconds(10)), 0);
        std::vector<json> frames;
        for (const std::string& line : top.lines()) {
            frames.push_back(json::parse(line));
        }
        EXPECT_EQ(frames.size(), 2u);
        return frames;
    }
    void SetUp() override {
        makeGroup("web-1", kPodLabels);
        makeGroup("web-2", {});
        drive("web-1", kTotalBps, kLocalBps, kLlcBytes);
        drive("web-2", kTotalBps, kLocalBps, kLlcBytes);
    }
};

TEST_F(TopSecondInterval, ACounterResetGivesNoRate) {
    const auto frames =
        framesAround([&] { emu_.control("counter mon_groups/web-1 mbm_total_bytes reset"); });
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_TRUE(containerIn(frames[0], "web-1").at("mbm_total_bytes_per_second").is_number());
    const json& after = containerIn(frames[1], "web-1");
    EXPECT_TRUE(after.at("mbm_total_bytes_per_second").is_null()) << after.dump();
    EXPECT_NEAR(after.at("mbm_local_bytes_per_second").get<double>(), kLocalBps, 0.1 * kLocalBps);
    // The other group is untouched.
    EXPECT_NEAR(containerIn(frames[1], "web-2").at("mbm_total_bytes_per_second").get<double>(),
                kTotalBps, 0.1 * kTotalBps);
    // The share outside containers cannot be known without web-1's rate.
    EXPECT_TRUE(frames[1].at("outside")[0].at("mbm_total_bytes_per_second").is_null());
}

TEST_F(TopSecondInterval, AGroupMadeAnewGivesNoRate) {
    const auto frames = framesAround([&] {
        ASSERT_TRUE(client_.removeGroup("web-1").ok());
        makeGroup("web-1", kPodLabels);
        // Faster than before: its counters are above the old ones by the next read.
        drive("web-1", 1e12, 1e12, kLlcBytes);
    });
    ASSERT_EQ(frames.size(), 2u);
    const json& after = containerIn(frames[1], "web-1");
    EXPECT_TRUE(after.at("mbm_total_bytes_per_second").is_null()) << after.dump();
    EXPECT_TRUE(after.at("mbm_local_bytes_per_second").is_null()) << after.dump();
    EXPECT_TRUE(after.at("llc_occupancy_bytes").is_number()); // needs no history
}

TEST_F(TopSecondInterval, AnUnavailableEventGivesNoRate) {
    const auto frames =
        framesAround([&] { emu_.control("counter mon_groups/web-1 mbm_local_bytes Unavailable"); });
    ASSERT_EQ(frames.size(), 2u);
    const json& after = containerIn(frames[1], "web-1");
    EXPECT_TRUE(after.at("mbm_local_bytes_per_second").is_null()) << after.dump();
    for (const json& d : after.at("domains")) {
        EXPECT_TRUE(d.at("mbm_local_bytes_per_second").is_null()) << d.dump();
    }
    EXPECT_NEAR(after.at("mbm_total_bytes_per_second").get<double>(), kTotalBps, 0.1 * kTotalBps);
}

TEST_F(TopSecondInterval, TheTableShowsADashForNoRate) {
    Background top(bus_, {"top", "-n", "2", "-d", concat(kSlowdown), "--sort", "name"});
    ASSERT_TRUE(top.waitForLines(5, std::chrono::seconds(10)));
    emu_.control("counter mon_groups/web-2 mbm_total_bytes Unavailable");
    EXPECT_EQ(top.wait(std::chrono::seconds(10)), 0);
    const auto lines = top.lines();
    ASSERT_EQ(lines.size(), 11u); // two frames of 5 lines, a blank line between them
    EXPECT_EQ(lines[5], "");
    EXPECT_THAT(lines[9], HasSubstr("web-2"));
    std::istringstream row(lines[9].substr(lines[9].find("MiB") + 3));
    std::string total, local;
    row >> total >> local;
    EXPECT_EQ(total, "-") << lines[9];
    EXPECT_NE(local, "-") << lines[9];
}

TEST_F(RdtmonctlTest, OnATerminalTopClearsTheScreenForEachInterval) {
    makeGroup("web-1", kPodLabels);
    // script(1) runs it on a pseudo-terminal.
    CommandOptions opts;
    opts.env.push_back(bus_.envEntry());
    const CommandResult tty = runCommand(
        {"script", "-qec", concat(RDTMONCTL_BIN, " top -n 2 -d 0.2"), "/dev/null"}, opts);
    ASSERT_EQ(tty.exitCode, 0) << tty.out << tty.err;
    std::size_t clears = 0;
    for (std::size_t at = 0; (at = tty.out.find("\033[H\033[2J", at)) != std::string::npos; ++at) {
        ++clears;
    }
    EXPECT_EQ(clears, 2u) << tty.out;
    EXPECT_THAT(tty.out, HasSubstr("shop/web-7d9f/nginx"));
}

TEST_F(RdtmonctlTest, SigintEndsTopWithZero) {
    makeGroup("web-1", kPodLabels);
    Background top(bus_, {"top", "--json", "-d", "0.2"});
    ASSERT_TRUE(top.waitForLines(1, std::chrono::seconds(10)));
    ASSERT_EQ(::kill(top.pid(), SIGINT), 0);
    EXPECT_EQ(top.wait(std::chrono::seconds(10)), 0);
}

TEST_F(RdtmonctlTest, MetricsPrintsTheFormatterTextWhichPromtoolAccepts) {
    makeGroup("web-1", kPodLabels);
    const CommandResult m = ctl(bus_, {"metrics"});
    ASSERT_EQ(m.exitCode, 0) << m.err;
    EXPECT_THAT(m.out, HasSubstr("\nrdtmon_up 1\n"));
    EXPECT_THAT(m.out, HasSubstr("\nrdtmon_supported 1\n"));
    EXPECT_THAT(m.out, HasSubstr("\nrdtmon_groups 1\n"));
    EXPECT_THAT(m.out, HasSubstr("\nrdtmon_rmids 32\n"));
    EXPECT_THAT(m.out, HasSubstr("rdtmon_mbm_total_bytes_total{container_id=\"web-1\",pod=\"web-"
                                 "7d9f\",namespace=\"shop\",container=\"nginx\",domain=\"mon_L3_"
                                 "01\"} "));
    EXPECT_THAT(m.out,
                HasSubstr("rdtmon_clos_llc_occupancy_bytes{clos=\"/\",domain=\"mon_L3_00\"}"));
    CommandOptions opts;
    opts.stdinText = m.out;
    const CommandResult check = runCommand({"/usr/bin/promtool", "check", "metrics"}, opts);
    EXPECT_EQ(check.exitCode, 0) << check.out << check.err;
    EXPECT_EQ(check.out + check.err, "");
}

TEST_F(RdtmonctlTest, GcIsForRootOnly) {
    const CommandResult root = ctl(bus_, {"gc"});
    EXPECT_EQ(root.exitCode, 0) << root.err;
    EXPECT_EQ(root.out, "removed 0 groups\n");
    CommandOptions nobody;
    nobody.uid = 65534;
    const CommandResult denied = ctl(bus_, {"gc"}, nobody);
    EXPECT_EQ(denied.exitCode, kExitAccessDenied) << denied.out << denied.err;
    EXPECT_THAT(denied.err, HasSubstr("permission denied"));
    // Reads are for everyone.
    EXPECT_EQ(ctl(bus_, {"status"}, nobody).exitCode, 0);
    EXPECT_EQ(ctl(bus_, {"list"}, nobody).exitCode, 0);
}

TEST(RdtmonctlNoDaemon, NotRunningIsExitThreeWithOneClearLine) {
    PrivateBus bus; // nobody owns org.rdtmon1 on it
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {"status"}, {"list"}, {"counters", "x"}, {"top", "-n", "1"}, {"gc"}}) {
        const CommandResult r = ctl(bus, args);
        EXPECT_EQ(r.exitCode, kExitNotRunning) << args[0] << ": " << r.err;
        EXPECT_EQ(r.err, "rdtmonctl: rdtmond is not running (nobody owns org.rdtmon1 on " +
                             bus.address() + ")\n");
        EXPECT_EQ(r.out, "");
    }
    // metrics says so in its text, and exits 0 for a textfile collector job.
    const CommandResult m = ctl(bus, {"metrics"});
    EXPECT_EQ(m.exitCode, 0);
    EXPECT_EQ(m.out, "# HELP rdtmon_up Whether rdtmond answered on the system bus (1) or not "
                     "(0).\n# TYPE rdtmon_up gauge\nrdtmon_up 0\n");
    EXPECT_THAT(m.err, HasSubstr("rdtmond is not running"));
    // No bus at all.
    CommandOptions noBus;
    noBus.env = {"DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent/bus"};
    const CommandResult r = runCommand({RDTMONCTL_BIN, "status"}, noBus);
    EXPECT_EQ(r.exitCode, kExitNotRunning) << r.err;
    EXPECT_THAT(r.err, HasSubstr("rdtmond is not reachable: no system bus at "
                                 "unix:path=/nonexistent/bus"));
}

TEST(RdtmonctlUnsupported, NoMonitoringIsExitFourAndStatusSaysSo) {
    TempDir notResctrl("not-resctrl");
    PrivateBus bus;
    Rdtmond daemon(bus, Rdtmond::Options{.resctrl = notResctrl.path()});
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"top", "-n", "1", "-d", "0.2"},
          std::vector<std::string>{"counters", "abc"}}) {
        const CommandResult r = ctl(bus, args);
        EXPECT_EQ(r.exitCode, kExitUnsupported) << args[0] << ": " << r.out << r.err;
        EXPECT_THAT(r.err, HasSubstr("rdtmonctl: resctrl monitoring is not supported"));
        EXPECT_EQ(linesOf(r.err).size(), 1u) << r.err;
        EXPECT_EQ(r.out, "");
    }
    const CommandResult status = ctl(bus, {"status", "--json"});
    EXPECT_EQ(status.exitCode, 0) << status.err;
    EXPECT_EQ(json::parse(status.out).at("supported"), false);
    const CommandResult m = ctl(bus, {"metrics"});
    EXPECT_EQ(m.exitCode, 0) << m.err;
    EXPECT_THAT(m.out, HasSubstr("\nrdtmon_up 1\n"));
    EXPECT_THAT(m.out, HasSubstr("\nrdtmon_supported 0\n"));
    EXPECT_THAT(m.out, Not(HasSubstr("rdtmon_clos_")));
}

TEST(RdtmonctlUsage, ABadCommandLineIsExitTwoAndHelpIsZero) {
    PrivateBus bus;
    for (const std::vector<std::string>& args :
         std::vector<std::vector<std::string>>{{},
                                               {"bogus"},
                                               {"counters"},
                                               {"top", "-d", "0"},
                                               {"top", "-n", "0"},
                                               {"top", "--sort", "colour"},
                                               {"status", "--yaml"}}) {
        const CommandResult r = ctl(bus, args);
        EXPECT_EQ(r.exitCode, kExitUsage) << (args.empty() ? "" : args[0]) << r.err;
        EXPECT_NE(r.err, "");
    }
    const CommandResult help = ctl(bus, {"top", "--help"});
    EXPECT_EQ(help.exitCode, 0);
    EXPECT_THAT(help.out, HasSubstr("--per-domain"));
    const CommandResult version = ctl(bus, {"--version"});
    EXPECT_EQ(version.exitCode, 0);
    EXPECT_NE(version.out, "");
}
