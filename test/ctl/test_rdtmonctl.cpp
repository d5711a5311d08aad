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
#include "TestCgroup.h"
#include "TestUtil.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sdbus-c++/sdbus-c++.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <vector>

using namespace rdtmon::test;
using nlohmann::json;
using ::testing::AllOf;
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

// Field 22 of /proc/PID/stat (start time, clock ticks after boot); 0 when unreadable.
uint64_t startTimeOf(pid_t pid) {
    const std::string stat = readFile(concat("/proc/", pid, "/stat"));
    const std::size_t close = stat.rfind(')');
    if (close == std::string::npos) {
        return 0;
    }
    std::istringstream rest(stat.substr(close + 2)); // from field 3, the state
    std::string field;
    for (int i = 3; i <= 22 && rest >> field; ++i) {
    }
    return std::stoull(field);
}

// The JSON entry of a list with this id, or null.
json entryIn(const json& list, const std::string& id) {
    for (const json& g : list) {
        if (g.at("container_id") == id) {
            return g;
        }
    }
    return nullptr;
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
    // The emulator's cacheinfo: 32 MiB per L3 cache.
    EXPECT_THAT(text.out, HasSubstr("L3 caches:     mon_L3_00 32.0 MiB, mon_L3_01 32.0 MiB\n"));

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
    EXPECT_EQ(s.at("l3_cache_bytes"), json({{"mon_L3_00", 32u << 20}, {"mon_L3_01", 32u << 20}}));
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
                                 "namespace=\"\",container=\"\",origin=\"hook\",where="
                                 "\"group\"} 1\n"));
    EXPECT_THAT(m.out, HasSubstr("rdtmon_container_tasks{container_id=\"second\",pod=\"\","
                                 "namespace=\"\",container=\"\",origin=\"hook\",where="
                                 "\"group\"} 0\n"));

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

// A container rdtmond adopts (found running without a group) while no RMID is free: it
// waits, and list and metrics say "adopted" for it though no counters carry its origin yet.
TEST(RdtmonctlWaiting, AnAdoptedContainerWaitingSaysAdopted) {
    if (!TestCgroup::available()) {
        GTEST_SKIP() << "needs root and a cgroup mount";
    }
    TempDir root("rdtmonctl-runc");
    EmulatorMount emu(EmulatorOptions{.numRmids = 2, .l3Domains = 1});
    PrivateBus bus;
    json cfg;
    cfg["gc"] = {{"intervalSeconds", 3600}, {"graceSeconds", 0}};
    cfg["containerSources"] = {{{"stateDirs", {root.path()}}}};
    Rdtmond daemon(bus, Rdtmond::Options{.resctrl = emu.path(), .configJson = cfg.dump()});
    RdtmonClient client(bus.address());
    // "first" takes the one RMID the default group leaves (its directory keeps it listed).
    ASSERT_EQ(::mkdir(root.file("first").c_str(), 0755), 0);
    ChildProcess first(spawnSleeper());
    {
        Pidfd pidfd(first.pid());
        ASSERT_TRUE(client.createContainerGroup("first", pidfd.get(), {}).ok());
    }
    // "late" as runc leaves a container: its init in a cgroup of its own, its state.json.
    TestCgroup cg;
    ChildProcess init(spawnSleeper());
    cg.add(init.pid());
    json st;
    st["id"] = "late";
    st["init_process_pid"] = init.pid();
    st["init_process_start"] = startTimeOf(init.pid());
    st["cgroup_paths"] = {{"", cg.dir()}};
    st["config"]["labels"] = {"io.kubernetes.cri.container-name=app"};
    ASSERT_EQ(::mkdir(root.file("late").c_str(), 0755), 0);
    writeFile(root.file("late") + "/state.json", st.dump());
    const CommandResult g = ctl(bus, {"gc"});
    ASSERT_EQ(g.exitCode, 0) << g.err;

    json late;
    ASSERT_TRUE(waitUntil(
        [&] {
            late = entryIn(json::parse(ctl(bus, {"list", "--json"}).out), "late");
            return late.is_object() && late.at("state") == "waiting";
        },
        scaledDeadline(std::chrono::milliseconds(10000))))
        << late.dump() << daemon.log();
    EXPECT_EQ(late.at("origin"), "adopted");
    const CommandResult m = ctl(bus, {"metrics"});
    EXPECT_THAT(m.out, HasSubstr("\nrdtmon_containers_waiting 1\n"));
    EXPECT_THAT(m.out, HasSubstr("rdtmon_container_tasks{container_id=\"late\",pod=\"\","
                                 "namespace=\"\",container=\"app\",origin=\"adopted\","
                                 "where=\"group\"} 0\n"));
    EXPECT_THAT(m.out, HasSubstr("rdtmon_container_tasks{container_id=\"first\",pod=\"\","
                                 "namespace=\"\",container=\"\",origin=\"hook\",where="
                                 "\"group\"} 1\n"));
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

// --by pod sums a pod's containers; --by domain gives each domain's load and the pod's
// share of it, through the real binary against rdtmond.
TEST_F(RdtmonctlTest, TopByPodAndByDomain) {
    const LabelMap nginx = kPodLabels;
    LabelMap php = kPodLabels;
    php["container"] = "php";
    makeGroup("web-1", nginx);
    makeGroup("web-2", php);
    drive("web-1", kTotalBps, kLocalBps, kLlcBytes);
    drive("web-2", kTotalBps, kLocalBps, kLlcBytes);
    const CommandResult j = ctl(bus_, {"top", "--json", "-n", "1", "-d", "1", "--by", "pod"});
    ASSERT_EQ(j.exitCode, 0) << j.err;
    const json frame = json::parse(j.out);
    ASSERT_EQ(frame.at("pods").size(), 1u) << j.out;
    const json& pod = frame.at("pods")[0];
    EXPECT_EQ(pod.at("name"), "shop/web-7d9f");
    EXPECT_EQ(pod.at("containers"), 2);
    EXPECT_NEAR(pod.at("mbm_total_bytes_per_second").get<double>(), 2 * kTotalBps,
                0.10 * 2 * kTotalBps);

    const CommandResult d = ctl(bus_, {"top", "--json", "-n", "1", "-d", "1", "--by", "domain"});
    ASSERT_EQ(d.exitCode, 0) << d.err;
    const json domains = json::parse(d.out).at("domains");
    ASSERT_EQ(domains.size(), 2u) << d.out;
    for (const json& dom : domains) {
        ASSERT_TRUE(dom.at("mbm_total_bytes_per_second").is_number()) << d.out;
        const double total = dom.at("mbm_total_bytes_per_second").get<double>();
        const json& web = dom.at("pods")[0];
        EXPECT_EQ(web.at("name"), "shop/web-7d9f");
        // The pod's share is its bandwidth over everything the domain's CLOS counted.
        EXPECT_NEAR(web.at("bandwidth_share").get<double>(),
                    web.at("mbm_total_bytes_per_second").get<double>() / total, 0.05);
        EXPECT_GT(web.at("bandwidth_share").get<double>(), 0.0);
        EXPECT_LE(web.at("bandwidth_share").get<double>(), 1.0);
        // Its cache against the whole L3's 32 MiB: both containers' driven occupancy.
        EXPECT_EQ(dom.at("llc_size_bytes"), 32u << 20);
        EXPECT_NEAR(
            web.at("cache_size_share").get<double>(),
            static_cast<double>(web.at("llc_occupancy_bytes").get<uint64_t>()) / (32u << 20), 1e-9);
        EXPECT_GT(web.at("cache_size_share").get<double>(), 0.0);
    }
    const CommandResult text = ctl(bus_, {"top", "-n", "1", "-d", "0.5", "--by", "domain"});
    ASSERT_EQ(text.exitCode, 0) << text.err;
    EXPECT_THAT(text.out, HasSubstr("mon_L3_00: total "));
    EXPECT_THAT(text.out, HasSubstr(" of 32.0 MiB ("));
    EXPECT_THAT(text.out, HasSubstr("shop/web-7d9f"));
    EXPECT_THAT(text.out, HasSubstr("outside (/)"));
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
                                 "7d9f\",namespace=\"shop\",container=\"nginx\",origin=\"hook\","
                                 "domain=\"mon_L3_01\"} "));
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

namespace {

// The runc state root rdtmond lists containers from; made before rdtmond starts.
struct RuncRoot {
    TempDir root_{"rdtmonctl-runc"};
};

// rdtmond listing the containers of a runc state root, and a container monitored by its
// runtime: a MON group of its id made as runc makes one (not by rdtmond), which every view
// shows with origin runtime and never as one of rdtmond's own.
class RdtmonctlRuntimeGroup : public ::testing::Test,
                              protected RuncRoot,
                              protected DaemonOnEmulator {
protected:
    static std::string config(const std::string& root) {
        json cfg;
        cfg["gc"] = {{"intervalSeconds", 3600}, {"graceSeconds", 0}};
        cfg["containerSources"] = {{{"stateDirs", {root}}}};
        return cfg.dump();
    }
    RdtmonctlRuntimeGroup()
        : DaemonOnEmulator(EmulatorOptions{.numRmids = 32, .l3Domains = 2}, config(root_.path())),
          client_(bus_.address()) {}

    // A container of the root, with a group made over the bus (the hook's way).
    void hooked(const std::string& id) {
        ASSERT_EQ(::mkdir(root_.file(id).c_str(), 0755), 0); // listed: not collected
        procs_.emplace_back(spawnSleeper());
        Pidfd pidfd(procs_.back().pid());
        const CallResult r = client_.createContainerGroup(id, pidfd.get(), kPodLabels);
        ASSERT_TRUE(r.ok()) << r.error << ": " << r.message;
    }
    // A container whose runtime monitors it: state.json as runc writes it, and the MON group
    // of its id with its init in it, made here as runc makes it.
    void monitoredByRuntime(const std::string& id) {
        procs_.emplace_back(spawnSleeper());
        const pid_t pid = procs_.back().pid();
        const std::string group = emu_.path() + "/mon_groups/" + id;
        ASSERT_EQ(::mkdir(group.c_str(), 0755), 0);
        writeFile(group + "/tasks", concat(pid));
        json st;
        st["id"] = id;
        st["init_process_pid"] = pid;
        st["init_process_start"] = startTimeOf(pid);
        st["cgroup_paths"] = {{"", root_.file("cgroup-" + id)}};
        st["config"]["labels"] = {
            "io.kubernetes.cri.container-name=app", "io.kubernetes.cri.sandbox-name=pod1",
            "io.kubernetes.cri.sandbox-namespace=ns1", "bundle=/run/bundles/" + id};
        st["config"]["intel_rdt"] = {{"closID", ""}, {"enableMonitoring", true}};
        ASSERT_EQ(::mkdir(root_.file(id).c_str(), 0755), 0);
        writeFile(root_.file(id) + "/state.json", st.dump());
    }
    // The runtime deletes the container's group (its init back in the default group).
    void runtimeRemoves(const std::string& id) {
        const std::string group = emu_.path() + "/mon_groups/" + id;
        for (pid_t p : tasksOf(group)) {
            writeFile(emu_.path() + "/tasks", concat(p));
        }
        ASSERT_EQ(::rmdir(group.c_str()), 0);
    }
    void gc() {
        const CommandResult r = ctl(bus_, {"gc"});
        ASSERT_EQ(r.exitCode, 0) << r.err;
        EXPECT_EQ(r.out, "removed 0 groups\n"); // never one of ours, never removed by us
    }
    void drive(const std::string& id, double total, double local, double llc) {
        emu_.control(concat("drive mon_groups/", id, " ", static_cast<uint64_t>(total), " ",
                            static_cast<uint64_t>(local), " ", static_cast<uint64_t>(llc)));
    }

    RdtmonClient client_;
    std::vector<ChildProcess> procs_;
};

const LabelMap kRuntimeLabels = {{"container", "app"}, {"pod", "pod1"}, {"namespace", "ns1"}};

} // namespace

TEST_F(RdtmonctlRuntimeGroup, ListShowsItWithOriginRuntimeUntilItsRuntimeRemovesIt) {
    hooked("web-1");
    monitoredByRuntime("native-1");
    gc();

    const CommandResult j = ctl(bus_, {"list", "--json"});
    ASSERT_EQ(j.exitCode, 0) << j.err;
    const json arr = json::parse(j.out);
    ASSERT_EQ(arr.size(), 2u) << arr.dump();
    const json native = entryIn(arr, "native-1");
    ASSERT_FALSE(native.is_null()) << arr.dump();
    EXPECT_EQ(native.at("origin"), "runtime");
    EXPECT_EQ(native.at("state"), "active");
    EXPECT_EQ(native.at("labels"), json(kRuntimeLabels));
    EXPECT_EQ(native.at("resctrl_path"), emu_.path() + "/mon_groups/native-1");
    EXPECT_EQ(native.at("pid"), procs_[1].pid());
    EXPECT_GT(native.at("created_usec").get<uint64_t>(), 1'600'000'000'000'000u);
    EXPECT_TRUE(native.at("object_path").is_null()) << native.dump();
    EXPECT_TRUE(native.at("tasks_in_group").is_null()) << native.dump();
    EXPECT_TRUE(native.at("tasks_outside").is_null()) << native.dump();
    const json web = entryIn(arr, "web-1");
    EXPECT_EQ(web.at("origin"), "hook");
    EXPECT_EQ(web.at("object_path"), "/org/rdtmon1/group/web_2d1");
    // Shown, not owned: not one of rdtmond's groups.
    EXPECT_EQ(client_.listedIds(), std::set<std::string>{"web-1"});
    EXPECT_EQ(json::parse(ctl(bus_, {"status", "--json"}).out).at("group_count"), 1);

    const CommandResult text = ctl(bus_, {"list"});
    ASSERT_EQ(text.exitCode, 0) << text.err;
    const auto lines = linesOf(text.out);
    ASSERT_EQ(lines.size(), 3u) << text.out;
    EXPECT_THAT(lines[0], HasSubstr("CONTAINER  ORIGIN   STATE"));
    EXPECT_THAT(lines[1], HasSubstr("native-1"));
    EXPECT_THAT(lines[1], HasSubstr("ns1"));
    EXPECT_THAT(lines[1], HasSubstr("pod1"));
    EXPECT_THAT(lines[1], HasSubstr("runtime  active  -      -"));
    EXPECT_THAT(lines[2], HasSubstr("hook     active  1      0"));
    // Open to everyone, as the rest of list (ListRuntimeGroups is, by its contract).
    CommandOptions nobody;
    nobody.uid = 65534;
    const CommandResult asNobody = ctl(bus_, {"list", "--json"}, nobody);
    ASSERT_EQ(asNobody.exitCode, 0) << asNobody.err;
    const json seen = entryIn(json::parse(asNobody.out), "native-1");
    EXPECT_TRUE(seen.is_object() && seen.at("origin") == "runtime")
        << asNobody.out << "\nListRuntimeGroups as nobody: " << [&] {
               const CommandResult r =
                   runCommand({"busctl", "--address=" + bus_.address(), "call", "org.rdtmon1",
                               "/org/rdtmon1", "org.rdtmon1.Manager", "ListRuntimeGroups"},
                              nobody);
               return r.out + r.err;
           }();

    // Its counters, as for a group of rdtmond's.
    const CommandResult c = ctl(bus_, {"counters", "native-1", "--json"});
    ASSERT_EQ(c.exitCode, 0) << c.err;
    const json counters = json::parse(c.out);
    EXPECT_EQ(counters.at("container_id"), "native-1");
    ASSERT_EQ(counters.at("domains").size(), 2u) << c.out;
    EXPECT_TRUE(counters.at("domains").at("mon_L3_00").contains("mbm_total_bytes")) << c.out;

    runtimeRemoves("native-1");
    gc();
    const json after = json::parse(ctl(bus_, {"list", "--json"}).out);
    ASSERT_EQ(after.size(), 1u) << after.dump();
    EXPECT_EQ(after[0].at("container_id"), "web-1");
    EXPECT_EQ(ctl(bus_, {"counters", "native-1"}).exitCode, kExitNoSuchGroup);
}

TEST_F(RdtmonctlRuntimeGroup, TopRatesItAndMarksIt) {
    hooked("web-1");
    monitoredByRuntime("native-1");
    gc();
    drive("native-1", kTotalBps, kLocalBps, kLlcBytes);
    drive("web-1", 1e6, 1e6, 4096);
    // The default group's own RMID at a known rate: the share outside the containers.
    constexpr double kOutsideBps = 10e6;
    emu_.control(concat("drive / ", static_cast<uint64_t>(kOutsideBps), " 0 1048576"));
    const CommandResult j = ctl(bus_, {"top", "--json", "-n", "2", "-d", "1"});
    ASSERT_EQ(j.exitCode, 0) << j.err;
    const auto frames = linesOf(j.out);
    ASSERT_EQ(frames.size(), 2u) << j.out;
    for (const std::string& line : frames) {
        const json frame = json::parse(line);
        const json& native = containerIn(frame, "native-1");
        EXPECT_EQ(native.at("origin"), "runtime");
        EXPECT_EQ(native.at("name"), "ns1/pod1/app");
        EXPECT_EQ(native.at("labels"), json(kRuntimeLabels));
        EXPECT_NEAR(native.at("mbm_total_bytes_per_second").get<double>(), kTotalBps,
                    0.10 * kTotalBps);
        EXPECT_NEAR(native.at("mbm_local_bytes_per_second").get<double>(), kLocalBps,
                    0.10 * kLocalBps);
        EXPECT_NEAR(native.at("llc_occupancy_bytes").get<double>(), kLlcBytes, 0.10 * kLlcBytes);
        EXPECT_EQ(frame.at("containers")[0].at("container_id"), "native-1");
        EXPECT_EQ(containerIn(frame, "web-1").at("origin"), "hook");
        EXPECT_EQ(containerIn(frame, "web-1").at("labels"), json(kPodLabels));
        // The CLOS's numbers include it, and the share outside the containers does not:
        // its rate is subtracted as an owned group's is.
        ASSERT_EQ(frame.at("outside").size(), 1u) << line;
        EXPECT_NEAR(frame.at("outside")[0].at("mbm_total_bytes_per_second").get<double>(),
                    kOutsideBps, 0.05 * kTotalBps)
            << line;
    }

    const CommandResult text = ctl(bus_, {"top", "-n", "1", "-d", "1", "--sort", "name"});
    ASSERT_EQ(text.exitCode, 0) << text.err;
    const auto rows = linesOf(text.out);
    ASSERT_EQ(rows.size(), 5u) << text.out;
    EXPECT_THAT(rows[0], HasSubstr("2 containers, 1 made by its runtime (*), interval"));
    EXPECT_THAT(rows[2], HasSubstr("ns1/pod1/app *"));
    std::istringstream row(rows[2].substr(rows[2].find("MiB") + 3));
    double total = 0;
    row >> total;
    EXPECT_NEAR(total, kTotalBps / 1e6, 0.10 * kTotalBps / 1e6) << rows[2];
    EXPECT_THAT(rows[3], HasSubstr("shop/web-7d9f/nginx"));
    EXPECT_THAT(rows[3], Not(HasSubstr("*")));

    runtimeRemoves("native-1");
    gc();
    const CommandResult gone = ctl(bus_, {"top", "--json", "-n", "1", "-d", "0.5"});
    ASSERT_EQ(gone.exitCode, 0) << gone.err;
    const json frame = json::parse(gone.out);
    ASSERT_EQ(frame.at("containers").size(), 1u) << gone.out;
    EXPECT_EQ(frame.at("containers")[0].at("container_id"), "web-1");
    EXPECT_THAT(ctl(bus_, {"top", "-n", "1", "-d", "0.5"}).out,
                AllOf(HasSubstr("1 container, interval"), Not(HasSubstr("*"))));
}

TEST_F(RdtmonctlRuntimeGroup, MetricsLabelItsSeriesWithOriginRuntime) {
    hooked("web-1");
    monitoredByRuntime("native-1");
    gc();
    const CommandResult m = ctl(bus_, {"metrics"});
    ASSERT_EQ(m.exitCode, 0) << m.err;
    for (const char* domain : {"mon_L3_00", "mon_L3_01"}) {
        for (const char* family : {"rdtmon_llc_occupancy_bytes", "rdtmon_mbm_total_bytes_total",
                                   "rdtmon_mbm_local_bytes_total"}) {
            EXPECT_THAT(m.out, HasSubstr(concat("\n", family,
                                                "{container_id=\"native-1\",pod=\"pod1\","
                                                "namespace=\"ns1\",container=\"app\",origin="
                                                "\"runtime\",domain=\"",
                                                domain, "\"} ")));
            EXPECT_THAT(m.out, HasSubstr(concat("\n", family,
                                                "{container_id=\"web-1\",pod=\"web-7d9f\","
                                                "namespace=\"shop\",container=\"nginx\","
                                                "origin=\"hook\",domain=\"",
                                                domain, "\"} ")));
        }
    }
    // Its tasks are not rdtmond's to count; the CLOS series stay as they were.
    EXPECT_THAT(m.out, HasSubstr("rdtmon_container_tasks{container_id=\"web-1\",pod=\"web-"
                                 "7d9f\",namespace=\"shop\",container=\"nginx\",origin="
                                 "\"hook\",where=\"group\"} 1\n"));
    EXPECT_THAT(m.out, Not(HasSubstr("rdtmon_container_tasks{container_id=\"native-1\"")));
    EXPECT_THAT(m.out,
                HasSubstr("\nrdtmon_clos_llc_occupancy_bytes{clos=\"/\",domain=\"mon_L3_00\"} "));
    EXPECT_THAT(m.out, HasSubstr("\nrdtmon_groups 1\n"));
    CommandOptions opts;
    opts.stdinText = m.out;
    const CommandResult check = runCommand({"/usr/bin/promtool", "check", "metrics"}, opts);
    EXPECT_EQ(check.exitCode, 0) << check.out << check.err;
    EXPECT_EQ(check.out + check.err, "");

    runtimeRemoves("native-1");
    gc();
    const CommandResult after = ctl(bus_, {"metrics"});
    ASSERT_EQ(after.exitCode, 0) << after.err;
    EXPECT_THAT(after.out, Not(HasSubstr("native-1")));
    EXPECT_THAT(after.out, HasSubstr("container_id=\"web-1\""));
}

namespace {

// An rdtmond from before origins on a private bus: one group "old-1" (its object without
// Origin), GetAllCounters without "origin" labels, and no ListRuntimeGroups nor
// GetAllCoverage (sd-bus answers UnknownMethod). Each GetAllCounters is one second later
// on CLOCK_MONOTONIC and 5 MB more of MBM total: a rate of exactly 5.0 MB/s.
class OlderRdtmond {
public:
    explicit OlderRdtmond(const PrivateBus& bus)
        : conn_(sdbus::createSessionBusConnectionWithAddress(bus.address())) {
        conn_->requestName("org.rdtmon1");
        manager_ = sdbus::createObject(*conn_, "/org/rdtmon1");
        constexpr const char* kManager = "org.rdtmon1.Manager";
        manager_->registerProperty("Version").onInterface(kManager).withGetter(
            [] { return std::string("0.9"); });
        manager_->registerProperty("Supported").onInterface(kManager).withGetter([] {
            return true;
        });
        manager_->registerProperty("ResctrlPath").onInterface(kManager).withGetter([] {
            return std::string("/sys/fs/resctrl");
        });
        manager_->registerProperty("MonFeatures").onInterface(kManager).withGetter([] {
            return std::vector<std::string>{"llc_occupancy", "mbm_total_bytes"};
        });
        manager_->registerProperty("NumRmids").onInterface(kManager).withGetter([] {
            return uint32_t{32};
        });
        manager_->registerProperty("GroupCount").onInterface(kManager).withGetter([] {
            return uint32_t{1};
        });
        manager_->registerMethod("ListGroups").onInterface(kManager).implementedAs([] {
            return std::vector<
                sdbus::Struct<std::string, std::string, uint32_t, uint64_t, sdbus::ObjectPath>>{
                {"old-1", "/sys/fs/resctrl/mon_groups/old-1", 42u, uint64_t{1'700'000'000'000'000},
                 sdbus::ObjectPath(kPath)}};
        });
        using Entry = sdbus::Struct<std::string, std::map<std::string, std::string>,
                                    std::map<std::string, std::map<std::string, uint64_t>>>;
        manager_->registerMethod("GetAllCounters").onInterface(kManager).implementedAs([this] {
            const uint64_t n = ++reads_;
            std::map<std::string, std::map<std::string, uint64_t>> c{
                {"mon_L3_00", {{"llc_occupancy", 4096}, {"mbm_total_bytes", n * 5'000'000}}}};
            return std::make_tuple(n * 1'000'000,
                                   std::vector<Entry>{{"old-1", kPodLabels, c}, {"/", {}, c}});
        });
        manager_->addObjectManager();
        group_ = sdbus::createObject(*conn_, kPath);
        constexpr const char* kGroup = "org.rdtmon1.Group";
        group_->registerProperty("ContainerId").onInterface(kGroup).withGetter([] {
            return std::string("old-1");
        });
        group_->registerProperty("Labels").onInterface(kGroup).withGetter(
            [] { return kPodLabels; });
        group_->registerProperty("ResctrlPath").onInterface(kGroup).withGetter([] {
            return std::string("/sys/fs/resctrl/mon_groups/old-1");
        });
        group_->registerProperty("Pid").onInterface(kGroup).withGetter([] { return 42u; });
        manager_->finishRegistration();
        group_->finishRegistration();
        conn_->enterEventLoopAsync();
    }
    ~OlderRdtmond() {
        group_.reset();
        manager_.reset();
        conn_->leaveEventLoop();
    }
    OlderRdtmond(const OlderRdtmond&) = delete;
    OlderRdtmond& operator=(const OlderRdtmond&) = delete;

private:
    static constexpr const char* kPath = "/org/rdtmon1/group/old_2d1";
    std::unique_ptr<sdbus::IConnection> conn_;
    std::unique_ptr<sdbus::IObject> manager_;
    std::unique_ptr<sdbus::IObject> group_;
    std::atomic<uint64_t> reads_{0};
};

} // namespace

// Against an rdtmond older than origins: its groups are the hook's, and there are no
// runtime-made ones, whoever asks (its bus policy denies ListRuntimeGroups to others than
// root, which the service itself would answer with UnknownMethod).
TEST(RdtmonctlOlderDaemon, EveryGroupSaysHookAndNoneIsRuntimeMade) {
    PrivateBus bus;
    OlderRdtmond old(bus);
    CommandOptions nobody;
    nobody.uid = 65534;
    for (const CommandOptions& as : {CommandOptions{}, nobody}) {
        const CommandResult j = ctl(bus, {"list", "--json"}, as);
        ASSERT_EQ(j.exitCode, 0) << j.err;
        const json arr = json::parse(j.out);
        ASSERT_EQ(arr.size(), 1u) << arr.dump();
        EXPECT_EQ(arr[0].at("container_id"), "old-1");
        EXPECT_EQ(arr[0].at("origin"), "hook");
        EXPECT_EQ(arr[0].at("labels"), json(kPodLabels));
        EXPECT_EQ(arr[0].at("object_path"), "/org/rdtmon1/group/old_2d1");
        EXPECT_TRUE(arr[0].at("tasks_in_group").is_null());
        const auto lines = linesOf(ctl(bus, {"list"}, as).out);
        ASSERT_EQ(lines.size(), 2u);
        EXPECT_THAT(lines[1], HasSubstr("nginx      hook    active  -"));
    }

    const CommandResult top = ctl(bus, {"top", "--json", "-n", "1", "-d", "0.1"});
    ASSERT_EQ(top.exitCode, 0) << top.err;
    const json frame = json::parse(top.out);
    ASSERT_EQ(frame.at("containers").size(), 1u) << top.out;
    const json& c = frame.at("containers")[0];
    EXPECT_EQ(c.at("origin"), "hook");
    EXPECT_EQ(c.at("labels"), json(kPodLabels)); // no "origin" key among the labels
    EXPECT_EQ(c.at("mbm_total_bytes_per_second"), 5e6);
    const CommandResult text = ctl(bus, {"top", "-n", "1", "-d", "0.1"});
    EXPECT_THAT(text.out, HasSubstr("1 container, interval 1.0 s\n"));
    EXPECT_THAT(text.out, Not(HasSubstr("*")));

    const CommandResult m = ctl(bus, {"metrics"});
    ASSERT_EQ(m.exitCode, 0) << m.err;
    EXPECT_THAT(m.out, HasSubstr("\nrdtmon_mbm_total_bytes_total{container_id=\"old-1\",pod=\"web-"
                                 "7d9f\",namespace=\"shop\",container=\"nginx\",origin=\"hook\","
                                 "domain=\"mon_L3_00\"} "));
    EXPECT_THAT(m.out, HasSubstr("\nrdtmon_clos_mbm_total_bytes_total{clos=\"/\",domain=\"mon_"
                                 "L3_00\"} "));
    EXPECT_THAT(m.out, Not(HasSubstr("rdtmon_container_tasks")));
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
