// rdtmon-bench-follow: what following the containers' cgroups costs and how fast it is.
//
//   rdtmon-bench-follow [--quick] [--json FILE]
//
// 1. Exec-capture latency: a followed container (its init alone in a real cgroup); N times
//    a fresh process is written to the cgroup's cgroup.procs (as runc exec does) and the
//    time until the group's tasks list it is taken. Target p99 <= 1 s.
//    The same for processes started straight into the cgroup by clone3(CLONE_INTO_CGROUP),
//    as crun's exec on cgroup v2 does: no cgroup.procs write, so the join poll finds them.
// 2. Idle cost: M followed containers (M real cgroups, one sleeping process each); rdtmond's
//    CPU time and wake-ups (context switches of all its threads) over an idle window, as a
//    share of one core. Target <= 1 % (the join poll wakes it 10 times a second).
// 3. One collection's safety resync of all M groups (GarbageCollect() with no source).
// On a private bus with resctrl-emu; never touches the host's bus or resctrl. Fails on an
// error only, never on a number. Exit 77 when it cannot run here (not root, no cgroup).

#include "EmulatorMount.h"
#include "PrivateBus.h"
#include "Proc.h"
#include "RdtmonClient.h"
#include "RdtmondProcess.h"
#include "TestCgroup.h"
#include "TestUtil.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace rdtmon::test;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kExitSkip = 77;

// CPU time of every live thread of a process, in seconds, to the ns (schedstat): utime and
// stime come in 10 ms ticks, a tenth of the 1 % target over the idle window. Every thread
// of rdtmond lives through the window (the counter worker and its pool are long-lived).
double cpuSeconds(pid_t pid) {
    double ns = 0;
    for (const std::string& t : entries(concat("/proc/", pid, "/task"))) {
        std::istringstream in(readFile(concat("/proc/", pid, "/task/", t, "/schedstat")));
        double v = 0;
        in >> v;
        ns += v;
    }
    return ns / 1e9;
}

// Context switches (voluntary + involuntary) of every thread: each wake-up is one.
unsigned long switches(pid_t pid) {
    unsigned long n = 0;
    for (const std::string& t : entries(concat("/proc/", pid, "/task"))) {
        std::istringstream in(readFile(concat("/proc/", pid, "/task/", t, "/status")));
        for (std::string line; std::getline(in, line);) {
            if (line.rfind("voluntary_ctxt_switches:", 0) == 0 ||
                line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) {
                n += std::stoul(line.substr(line.find(':') + 1));
            }
        }
    }
    return n;
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) {
        return 0;
    }
    std::sort(v.begin(), v.end());
    const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

bool listed(const std::string& tasksFile, pid_t pid) {
    return tasksIn(tasksFile).count(pid) != 0;
}

int run(bool quick, const std::string& jsonPath) {
    const int joins = quick ? 50 : 200;
    const std::size_t containers = quick ? 100 : 1000;
    const int idleSeconds = quick ? 3 : 10;

    EmulatorMount emu(EmulatorOptions{.numRmids = static_cast<unsigned>(containers) + 64});
    PrivateBus bus;
    // No source: nothing is collected; a long interval: the idle window has no timer tick.
    Rdtmond daemon(bus, Rdtmond::Options{.resctrl = emu.path(),
                                         .configJson = R"({"gc":{"intervalSeconds":3600},)"
                                                       R"("containerSources":[]})"});
    RdtmonClient client(bus.address());
    nlohmann::json out;

    // 1. Exec-capture latency.
    std::vector<double> latMs;
    std::vector<double> cloneMs;
    {
        TestCgroup cg;
        ChildProcess init(spawnSleeper());
        cg.add(init.pid());
        CallResult r = client.createGroup("lat", static_cast<uint32_t>(init.pid()));
        if (!r.ok()) {
            throw std::runtime_error("CreateGroup: " + r.error + ": " + r.message);
        }
        const std::string tasks = emu.path() + "/mon_groups/lat/tasks";
        auto capture = [&](std::vector<double>& into, bool byClone3) {
            for (int i = 0; i < joins; ++i) {
                auto t0 = Clock::now();
                ChildProcess p;
                if (byClone3) {
                    p = ChildProcess(cg.spawnInto());
                } else {
                    p = ChildProcess(spawnSleeper());
                    t0 = Clock::now();
                    cg.add(p.pid());
                }
                while (!listed(tasks, p.pid())) {
                    if (Clock::now() - t0 > std::chrono::seconds(30)) {
                        throw std::runtime_error(concat("pid ", p.pid(), " not captured in 30 s"));
                    }
                    std::this_thread::sleep_for(std::chrono::milliseconds(1));
                }
                into.push_back(
                    std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
            }
        };
        capture(latMs, false);
        capture(cloneMs, true);
        client.removeGroup("lat");
    }
    const double p50 = percentile(latMs, 0.5);
    const double p99 = percentile(latMs, 0.99);
    std::printf("exec capture latency over %d joins: p50 %.1f ms, p99 %.1f ms, max %.1f ms "
                "(target p99 <= 1000 ms)\n",
                joins, p50, p99, *std::max_element(latMs.begin(), latMs.end()));
    out["exec_capture"] = {{"joins", joins}, {"p50_ms", p50}, {"p99_ms", p99}};
    const double c50 = percentile(cloneMs, 0.5);
    const double c99 = percentile(cloneMs, 0.99);
    std::printf("clone3(CLONE_INTO_CGROUP) capture latency over %d joins: p50 %.1f ms, p99 "
                "%.1f ms, max %.1f ms (target p99 <= 1000 ms)\n",
                joins, c50, c99, *std::max_element(cloneMs.begin(), cloneMs.end()));
    out["clone3_capture"] = {{"joins", joins}, {"p50_ms", c50}, {"p99_ms", c99}};

    // 2. Idle cost at M followed containers. Sleepers are declared after the cgroups, so they
    // die first and the cgroups are empty when removed.
    std::vector<std::unique_ptr<TestCgroup>> cgroups;
    std::vector<ChildProcess> sleepers;
    const auto setup0 = Clock::now();
    for (std::size_t i = 0; i < containers; ++i) {
        cgroups.push_back(std::make_unique<TestCgroup>());
        sleepers.emplace_back(spawnSleeper());
        cgroups.back()->add(sleepers.back().pid());
        CallResult r =
            client.createGroup(concat("c", i), static_cast<uint32_t>(sleepers.back().pid()));
        if (!r.ok()) {
            throw std::runtime_error("CreateGroup: " + r.error + ": " + r.message);
        }
    }
    const double setupS = std::chrono::duration<double>(Clock::now() - setup0).count();
    std::this_thread::sleep_for(std::chrono::seconds(3)); // the creates' resyncs settle
    const double cpu0 = cpuSeconds(daemon.pid());
    const unsigned long sw0 = switches(daemon.pid());
    const auto t0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(idleSeconds));
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    const double cpu = cpuSeconds(daemon.pid()) - cpu0;
    const unsigned long sw = switches(daemon.pid()) - sw0;
    const double pct = 100.0 * cpu / wall;
    std::printf("idle with %zu followed containers over %.1f s: rdtmond CPU %.3f s = %.2f %% of "
                "one core (target <= 1 %%), %lu wake-ups (context switches) "
                "[setup of %zu creates: %.1f s]\n",
                containers, wall, cpu, pct, sw, containers, setupS);
    out["idle"] = {{"containers", containers},
                   {"seconds", wall},
                   {"cpu_seconds", cpu},
                   {"cpu_percent", pct},
                   {"wakeups", sw}};

    // 3. A collection's safety resync of every followed group.
    const double cpuBefore = cpuSeconds(daemon.pid());
    const auto g0 = Clock::now();
    CallResult gc = client.garbageCollect();
    if (!gc.ok()) {
        throw std::runtime_error("GarbageCollect: " + gc.error + ": " + gc.message);
    }
    // The resync runs on the loop right after the reply: the next call is answered after it.
    (void)client.listGroups();
    const double last = cpuSeconds(daemon.pid());
    const double resyncCpu = last - cpuBefore;
    const double resyncWall = std::chrono::duration<double>(Clock::now() - g0).count();
    std::printf("one collection (safety resync of %zu groups): rdtmond CPU %.3f s, done within "
                "%.1f s\n",
                containers, resyncCpu, resyncWall);
    out["collection_resync"] = {{"containers", containers}, {"cpu_seconds", resyncCpu}};

    sleepers.clear();
    if (!jsonPath.empty()) {
        std::ofstream(jsonPath) << out.dump(2) << "\n";
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    bool quick = false;
    std::string json;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--quick") {
            quick = true;
        } else if (a == "--json" && i + 1 < argc) {
            json = argv[++i];
        } else {
            std::cerr << "usage: rdtmon-bench-follow [--quick] [--json FILE]\n";
            return 2;
        }
    }
    if (!TestCgroup::available()) {
        std::cerr << "rdtmon-bench-follow: needs root and a cgroup mount\n";
        return kExitSkip;
    }
    try {
        return run(quick, json);
    } catch (const std::exception& e) {
        std::cerr << "rdtmon-bench-follow: " << e.what() << "\n";
        return 1;
    }
}
