// rdtmon-bench-adopt: how fast rdtmond adopts the running containers that never got a
// group, and whether it still answers the bus meanwhile.
//
//   rdtmon-bench-adopt [--quick] [--rounds K] [--json FILE] [--poll-ms MS] [--verbose]
//
// N running containers (N = 200, --quick 50) as runc leaves them in a state root: each an
// init sleeper (with one extra thread) and a child sleeper in a real cgroup of its own,
// <root>/<id>/state.json with the init's pid, its start time, its cgroup and CRI labels.
// rdtmond is started with that root as its one containerSources stateDirs; the clock starts
// before it is spawned. Measured per round:
//   ready        until org.rdtmon1 is owned (an in-process NameHasOwner poll, every 1 ms)
//   first group  until the first mon_groups/<id> appears
//   all adopted  until every thread of both of a container's processes shows its group in
//                its cpu_resctrl_groups (polled every ~10 ms; the tasks files are checked to
//                agree afterwards, untimed)
//   ListGroups   from ready until all adopted, a second thread calls ListGroups on its own
//                connection back-to-back with 5 ms pauses: count, p50, p99, max latency.
// Targets (printed, never enforced): all adopted within 5 s; ListGroups <= 50 ms meanwhile.
// The emulator answers a tasks read after any change by scanning every thread of the host in
// /proc: on a host with thousands of threads that scan, not rdtmond, would set the pace of
// whatever reads tasks files, so neither rdtmond's adoption nor this poll does. Each round
// prints the host's thread count (its own containers' included) and the CPU time rdtmond
// and the emulator used until all were adopted beside its numbers.
// Full mode runs 3 rounds (--rounds K), each with a fresh emulator, bus, rdtmond and set of
// containers. On a private bus with resctrl-emu; never touches the host's bus or resctrl.
// Fails on an error only (a container not adopted in 60 s, a failed call, a wrong
// ListGroups), never on a number. Exit 77 when it cannot run here (not root, no cgroup).
// --poll-ms sets how often the threads' files are read (default 10); --verbose prints rdtmond's
// log of each round to stderr.

#include "EmulatorMount.h"
#include "PrivateBus.h"
#include "Proc.h"
#include "ProcFs.h"
#include "RdtmonClient.h"
#include "RdtmondProcess.h"
#include "TempDir.h"
#include "TestCgroup.h"
#include "TestUtil.h"

#include <nlohmann/json.hpp>
#include <sdbus-c++/sdbus-c++.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace rdtmon::test;
using Clock = std::chrono::steady_clock;

namespace {

namespace fs = std::filesystem;

constexpr int kExitSkip = 77;
constexpr double kTargetAdoptMs = 5000;
constexpr double kTargetListMs = 50;
constexpr auto kAdoptDeadline = std::chrono::seconds(60);

double msSince(Clock::time_point t0, Clock::time_point t1) {
    return std::chrono::duration<double, std::milli>(t1 - t0).count();
}

// Every thread on the host now: the emulator's tasks reads scan /proc, so its answers (and
// with them every adoption) slow down as the host (a shared machine) has more of them.
std::size_t hostThreads() {
    std::size_t n = 0;
    for (const std::string& p : entries("/proc")) {
        if (!p.empty() && p.find_first_not_of("0123456789") == std::string::npos) {
            n += entries("/proc/" + p + "/task").size();
        }
    }
    return n;
}

// utime + stime of a process (its exited threads included), in seconds; 0 if it is gone.
double cpuSeconds(pid_t pid) {
    const std::string stat = readFile(concat("/proc/", pid, "/stat"));
    const std::size_t close = stat.rfind(')');
    if (close == std::string::npos) {
        return 0;
    }
    std::istringstream in(stat.substr(close + 2));
    std::string field;
    unsigned long long utime = 0;
    unsigned long long stime = 0;
    for (int i = 3; i <= 15 && in >> field; ++i) { // fields 3.. after "pid (comm)"
        if (i == 14) {
            utime = std::stoull(field);
        } else if (i == 15) {
            stime = std::stoull(field);
        }
    }
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) {
        return 0;
    }
    std::sort(v.begin(), v.end());
    const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

// A container as runc leaves it (as test/integration/test_adopt.cpp builds it). The
// processes are declared after the cgroup: they die first, the cgroup is empty when removed.
struct FakeContainer {
    std::string id;
    std::unique_ptr<TestCgroup> cg;
    ChildProcess init;
    ChildProcess child;
    std::set<pid_t> threads; // every thread of both processes: what the group must hold
    bool done = false;
};

struct Round {
    std::size_t hostThreads = 0; // the emulator scans them all for a tasks read after a change
    double daemonCpu = 0;        // rdtmond's CPU time from its spawn until all adopted
    double emuCpu = 0;           // the emulator's over the same time
    double readyMs = 0;
    double firstGroupMs = 0;
    double allAdoptedMs = 0;
    std::vector<double> listMs;
};

// The containers of one round, in a state root of their own.
std::vector<FakeContainer> makeContainers(const TempDir& root, std::size_t n) {
    std::vector<FakeContainer> out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        FakeContainer c;
        c.id = concat("adopt-", i);
        c.cg = std::make_unique<TestCgroup>();
        c.init = ChildProcess(spawnSleeper(1));
        c.child = ChildProcess(spawnSleeper());
        c.cg->add(c.init.pid());
        c.cg->add(c.child.pid());
        for (pid_t p : {c.init.pid(), c.child.pid()}) {
            for (pid_t t : threadsOf(p)) {
                c.threads.insert(t);
            }
        }
        if (c.threads.size() != 3) {
            throw std::runtime_error(
                concat(c.id, ": expected 3 threads, found ", c.threads.size()));
        }
        const std::optional<rdtmon::ProcStat> st = rdtmon::readProcStat(c.init.pid());
        if (!st) {
            throw std::runtime_error(concat(c.id, ": cannot read /proc/", c.init.pid(), "/stat"));
        }
        nlohmann::json j;
        j["id"] = c.id;
        j["init_process_pid"] = c.init.pid();
        j["init_process_start"] = st->startTime;
        j["cgroup_paths"] = {{"", c.cg->dir()}};
        j["config"]["labels"] = {"io.kubernetes.cri.container-name=app",
                                 "io.kubernetes.cri.sandbox-name=pod-" + c.id,
                                 "bundle=/run/bundles/" + c.id};
        fs::create_directories(root.file(c.id));
        std::ofstream(root.file(c.id + "/state.json")) << j.dump();
        out.push_back(std::move(c));
    }
    return out;
}

bool nameOwned(sdbus::IProxy& dbus) {
    bool owned = false;
    dbus.callMethod("NameHasOwner")
        .onInterface("org.freedesktop.DBus")
        .withArguments(std::string("org.rdtmon1"))
        .storeResultsTo(owned);
    return owned;
}

struct Options {
    bool quick = false;
    int rounds = -1; // default: 3, --quick 1
    int pollMs = 10;
    bool verbose = false;
    std::string json;
};

Round runRound(std::size_t n, const Options& opt) {
    EmulatorMount emu(EmulatorOptions{.numRmids = static_cast<unsigned>(n) + 8});
    PrivateBus bus;
    TempDir root("rdtmon-bench-adopt");
    std::vector<FakeContainer> containers = makeContainers(root, n);

    nlohmann::json cfg;
    cfg["gc"] = {{"intervalSeconds", 3600}, {"graceSeconds", 0}};
    cfg["containerSources"] = {{{"stateDirs", {root.path()}}}};
    auto dbusConn = sdbus::createSessionBusConnectionWithAddress(bus.address());
    auto dbus = sdbus::createProxy(*dbusConn, "org.freedesktop.DBus", "/org/freedesktop/DBus");
    const std::string groups = emu.path() + "/mon_groups/";

    Round r;
    r.hostThreads = hostThreads();
    const double emuCpu0 = cpuSeconds(emu.pid());
    const auto t0 = Clock::now();
    Rdtmond daemon(
        bus, Rdtmond::Options{.resctrl = emu.path(), .configJson = cfg.dump(), .waitReady = false});
    // The first group may appear before the name is owned: watch for it here too.
    std::optional<Clock::time_point> firstGroup;
    auto anyGroup = [&] {
        if (!firstGroup && !entries(groups).empty()) {
            firstGroup = Clock::now();
        }
    };
    while (!nameOwned(*dbus)) {
        if (!daemon.running()) {
            throw std::runtime_error(concat("rdtmond exited at start-up (status ",
                                            daemon.lastExitStatus(), "):\n", daemon.log()));
        }
        if (Clock::now() - t0 > std::chrono::seconds(20)) {
            throw std::runtime_error("rdtmond did not take its bus name in 20 s:\n" + daemon.log());
        }
        anyGroup();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    const auto tReady = Clock::now();
    r.readyMs = msSince(t0, tReady);

    // ListGroups, back-to-back with 5 ms pauses, from ready until all are adopted.
    std::atomic<bool> stop{false};
    std::mutex errMu;
    std::string listError;
    std::thread lister([&] {
        try {
            RdtmonClient client(bus.address());
            while (!stop.load()) {
                const auto c0 = Clock::now();
                (void)client.listGroups();
                r.listMs.push_back(msSince(c0, Clock::now()));
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
            }
        } catch (const std::exception& e) {
            std::lock_guard<std::mutex> lock(errMu);
            listError = e.what();
        }
    });

    std::size_t left = containers.size();
    std::string pollError;
    while (left > 0) {
        // One readdir a poll, then the tasks of the groups not yet complete: the poll itself
        // should load the emulator (which rdtmond's writes go through) as little as it can.
        const std::set<std::string> made = entries(groups);
        if (!firstGroup && !made.empty()) {
            firstGroup = Clock::now();
        }
        for (FakeContainer& c : containers) {
            if (c.done || made.count(c.id) == 0) {
                continue;
            }
            // Each thread's cpu_resctrl_groups (the emulator serves it without a scan, as the
            // kernel does): reading the groups' tasks files here would make the emulator walk
            // /proc on every poll, and that walk, not rdtmond, would set the pace.
            const bool all = std::all_of(c.threads.begin(), c.threads.end(), [&](pid_t t) {
                return readFile(emu.path() + "/.proc/" + std::to_string(t) + "/cpu_resctrl_groups")
                           .find("\nmon:" + c.id + "\n") != std::string::npos;
            });
            if (all) {
                c.done = true;
                --left;
            }
        }
        if (left == 0) {
            break;
        }
        if (!daemon.running()) {
            pollError = concat("rdtmond died (status ", daemon.lastExitStatus(), ")");
            break;
        }
        if (Clock::now() - t0 > kAdoptDeadline) {
            pollError = concat(left, " of ", containers.size(), " containers not adopted in 60 s");
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(opt.pollMs));
    }
    const auto tAll = Clock::now();
    r.daemonCpu = cpuSeconds(daemon.pid());
    r.emuCpu = cpuSeconds(emu.pid()) - emuCpu0;
    stop = true;
    lister.join();
    // Untimed: the groups' tasks files agree.
    for (const FakeContainer& c : containers) {
        const std::set<pid_t> in = tasksOf(groups + c.id);
        if (pollError.empty() &&
            !std::includes(in.begin(), in.end(), c.threads.begin(), c.threads.end())) {
            pollError = "mon_groups/" + c.id +
                        "/tasks lacks threads its cpu_resctrl_groups "
                        "showed in the group";
        }
    }
    if (!pollError.empty()) {
        throw std::runtime_error(pollError + ":\n" + daemon.log());
    }
    if (!listError.empty()) {
        throw std::runtime_error("ListGroups during the adoptions: " + listError);
    }
    r.allAdoptedMs = msSince(t0, tAll);
    r.firstGroupMs = firstGroup ? msSince(t0, *firstGroup) : r.allAdoptedMs;

    // What was adopted is what was there: every id listed, nothing refused.
    RdtmonClient client(bus.address());
    std::set<std::string> want;
    for (const FakeContainer& c : containers) {
        want.insert(c.id);
    }
    const std::set<std::string> listed = client.listedIds();
    if (listed != want) {
        throw std::runtime_error(concat("ListGroups has ", listed.size(), " ids after adopting ",
                                        want.size(), " containers"));
    }
    const std::string origin =
        client.groupProperty(containers.back().id, "Origin").get<std::string>();
    if (origin != "adopted") {
        throw std::runtime_error("Origin of " + containers.back().id + " is " + origin);
    }
    const std::string log = daemon.log();
    if (log.find("not adopted") != std::string::npos) {
        throw std::runtime_error("rdtmond refused an adoption:\n" + log);
    }
    if (opt.verbose) {
        std::cerr << "---- rdtmond's log ----\n" << log << "----\n";
    }
    daemon.stop();
    return r;
}

int run(const Options& opt) {
    const std::size_t n = opt.quick ? 50 : 200;
    const int rounds = opt.rounds;
    std::printf("adopting %zu running containers at start-up (init with 1 extra thread + a "
                "child, each in its own cgroup), %d round(s); times from rdtmond's spawn, "
                "tasks polled every %d ms\n",
                n, rounds, opt.pollMs);
    std::printf("%-6s %10s %12s %13s | %-10s %9s %9s %9s | %8s %8s | %s\n", "round", "ready ms",
                "1st group ms", "all adopted", "ListGroups", "p50 ms", "p99 ms", "max ms",
                "rdtmond", "emu", "host threads");
    nlohmann::json out;
    out["containers"] = n;
    out["poll_ms"] = opt.pollMs;
    out["targets"] = {{"all_adopted_ms", kTargetAdoptMs}, {"listgroups_max_ms", kTargetListMs}};
    double worstAll = 0;
    double worstList = 0;
    for (int i = 0; i < rounds; ++i) {
        const Round r = runRound(n, opt);
        const double p50 = percentile(r.listMs, 0.5);
        const double p99 = percentile(r.listMs, 0.99);
        const double mx =
            r.listMs.empty() ? 0 : *std::max_element(r.listMs.begin(), r.listMs.end());
        std::printf("%-6d %10.1f %12.1f %13.1f | %10zu %9.2f %9.2f %9.2f | %6.2f s %6.2f s | %zu\n",
                    i + 1, r.readyMs, r.firstGroupMs, r.allAdoptedMs, r.listMs.size(), p50, p99, mx,
                    r.daemonCpu, r.emuCpu, r.hostThreads);
        std::fflush(stdout);
        worstAll = std::max(worstAll, r.allAdoptedMs);
        worstList = std::max(worstList, mx);
        out["rounds"].push_back(
            {{"host_threads", r.hostThreads},
             {"rdtmond_cpu_seconds", r.daemonCpu},
             {"emulator_cpu_seconds", r.emuCpu},
             {"ready_ms", r.readyMs},
             {"first_group_ms", r.firstGroupMs},
             {"all_adopted_ms", r.allAdoptedMs},
             {"listgroups",
              {{"count", r.listMs.size()}, {"p50_ms", p50}, {"p99_ms", p99}, {"max_ms", mx}}}});
    }
    std::printf("all adopted: worst %.1f ms (target <= %.0f ms: %s); ListGroups meanwhile: worst "
                "%.2f ms (target <= %.0f ms: %s)\n",
                worstAll, kTargetAdoptMs, worstAll <= kTargetAdoptMs ? "met" : "MISSED", worstList,
                kTargetListMs, worstList <= kTargetListMs ? "met" : "MISSED");
    if (!opt.json.empty()) {
        std::ofstream(opt.json) << out.dump(2) << "\n";
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    Options opt;
    auto positive = [](const char* text, int* out) {
        *out = std::atoi(text);
        return *out > 0;
    };
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--quick") {
            opt.quick = true;
        } else if (a == "--json" && i + 1 < argc) {
            opt.json = argv[++i];
        } else if (a == "--verbose") {
            opt.verbose = true;
        } else if (a == "--rounds" && i + 1 < argc && positive(argv[++i], &opt.rounds)) {
        } else if (a == "--poll-ms" && i + 1 < argc && positive(argv[++i], &opt.pollMs)) {
        } else {
            std::cerr << "usage: rdtmon-bench-adopt [--quick] [--rounds K] [--json FILE] "
                         "[--poll-ms MS] [--verbose]\n";
            return 2;
        }
    }
    if (opt.rounds < 0) {
        opt.rounds = opt.quick ? 1 : 3;
    }
    if (!TestCgroup::available()) {
        std::cerr << "rdtmon-bench-adopt: needs root and a cgroup mount\n";
        return kExitSkip;
    }
    try {
        return run(opt);
    } catch (const std::exception& e) {
        std::cerr << "rdtmon-bench-adopt: " << e.what() << "\n";
        return 1;
    }
}
