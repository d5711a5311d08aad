// rdtmon-bench-counters: rotating the assignable counters (docs/architecture.md, "Rotating
// the counters") at 1,000 containers on an emulated mbm_event node with 2 L3 domains and 32
// counters per domain, every container driven at a rate of its own. Prints:
//   - the time until every container has a bandwidth figure, and the cycle (targets:
//     within the first cycle; the cycle <= 60 s);
//   - the error of each container's rate over two cycles against its driven rate, steady
//     loads (target: <= 2 %);
//   - the same for bursty loads (on and off, each at its own period): the documented error;
//   - rdtmond's CPU while the turns go on and nobody reads (target: <= 2 % of one core);
//   - GetAllCounters at 1,000 groups in rotation (target: <= 50 ms), and GetAllValues.
// Exits 77 where it cannot run (not root, no /dev/fuse), 1 on an error, never on a number.
//   usage: rdtmon-bench-counters [--quick] [--json FILE]

#include "EmulatorMount.h"
#include "PrivateBus.h"
#include "Proc.h"
#include "RdtmonClient.h"
#include "RdtmondProcess.h"
#include "Subprocess.h"
#include "TestUtil.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace rdtmon::test;

namespace {

constexpr int kExitSkip = 77;

struct Settings {
    int groups = 1000;
    unsigned counters = 32;
    int bursty = 100; // of the groups, the last ones are driven on and off
    int cycleSeconds = 50;
};

using Clock = std::chrono::steady_clock;

double percentile(std::vector<double> v, double p) {
    if (v.empty()) {
        return 0;
    }
    std::sort(v.begin(), v.end());
    const std::size_t i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v.at(std::min(i, v.size() - 1));
}

std::string name(int i) {
    std::string n = "ctr-";
    n += std::to_string(i);
    return n;
}

// Every container's MBM total count summed over the domains, and whether each has one.
struct Reading {
    uint64_t usec = 0;
    std::map<std::string, uint64_t> total;
    double callMs = 0;
};

// In-process, as a client that times the call would.
Reading readAll(RdtmonClient& client) {
    const auto t0 = Clock::now();
    const AllValues v = client.allValues();
    Reading out;
    out.callMs = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    out.usec = v.monotonicUsec;
    for (const auto& [key, value] : v.values) {
        const auto& [id, domain, event] = key;
        if (event == "mbm_total_bytes" && domain.find('/') == std::string::npos) {
            out.total[id] += value.count;
        }
    }
    return out;
}

// Percent errors of each container's rate between two readings against expected[id].
std::vector<double> errors(const Reading& a, const Reading& b,
                           const std::map<std::string, double>& expected) {
    std::vector<double> out;
    const double seconds = static_cast<double>(b.usec - a.usec) / 1e6;
    for (const auto& [id, want] : expected) {
        const auto x = a.total.find(id);
        const auto y = b.total.find(id);
        if (x == a.total.end() || y == b.total.end() || y->second < x->second) {
            out.push_back(100); // no figure, or one that went down: as wrong as it gets
            continue;
        }
        const double rate = static_cast<double>(y->second - x->second) / seconds;
        out.push_back(100 * std::fabs(rate - want) / want);
    }
    return out;
}

int run(const Settings& s, const std::string& jsonPath) {
    EmulatorMount emu(EmulatorOptions{.numRmids = static_cast<unsigned>(s.groups) + 50,
                                      .l3Domains = 2,
                                      .mbmAssign = "mbm_event",
                                      .numMbmCntrs = s.counters});
    PrivateBus bus;
    Rdtmond daemon(bus, {.resctrl = emu.path(),
                         .configJson = R"({"containerSources": [], "counters": {"cycleSeconds": )" +
                                       std::to_string(s.cycleSeconds) + "}}"});
    Sleepers inits(static_cast<std::size_t>(s.groups));
    RdtmonClient client(bus.address());
    std::map<std::string, double> steady, bursty; // id -> expected MBM total, bytes/s
    const auto made = Clock::now();
    for (int i = 0; i < s.groups; ++i) {
        Pidfd pidfd(inits.pid(static_cast<std::size_t>(i)));
        const CallResult r = client.createContainerGroup(name(i), pidfd.get(), {});
        if (!r.ok()) {
            throw std::runtime_error("CreateContainerGroup " + name(i) + ": " + r.message);
        }
        // 10 MB/s to 1 GB/s, a rate of its own each (half per domain).
        const double bps = 10e6 + 990e6 * static_cast<double>(i) / s.groups;
        emu.drive("mon_groups/" + name(i), static_cast<uint64_t>(bps),
                  static_cast<uint64_t>(bps / 4), 1 << 20);
        (i >= s.groups - s.bursty ? bursty : steady)[name(i)] = bps;
    }
    const auto filled = Clock::now();
    const double fillSeconds = std::chrono::duration<double>(filled - made).count();

    // Every container with a figure.
    Reading first;
    const auto all = Clock::now();
    while (true) {
        first = readAll(client);
        if (static_cast<int>(first.total.size()) >= s.groups) {
            break;
        }
        if (Clock::now() - all > std::chrono::minutes(10)) {
            throw std::runtime_error("not every container got a figure in 10 minutes");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    const double allSeconds = std::chrono::duration<double>(Clock::now() - filled).count();
    const double cycle = static_cast<double>(client.property<uint64_t>("CounterCycleUsec")) / 1e6;
    const uint32_t rotating = client.property<uint32_t>("CountersRotating");

    // Bursty loads from now: each on and off at a period of its own (3 to 9 s), so that
    // their phases drift against the turns; expected is the average, half the rate.
    std::atomic<bool> stop{false};
    std::thread toggler([&] {
        std::map<std::string, double> period;
        int k = 0;
        for (const auto& [id, bps] : bursty) {
            period[id] =
                3.0 + 6.0 * static_cast<double>(k++) / std::max<std::size_t>(1, bursty.size());
        }
        std::map<std::string, bool> on;
        const auto t0 = Clock::now();
        while (!stop) {
            const double t = std::chrono::duration<double>(Clock::now() - t0).count();
            for (const auto& [id, bps] : bursty) {
                const bool want = std::fmod(t, period[id]) < period[id] / 2;
                if (on[id] != want || t < 0.05) {
                    const double r = want ? bps : 0;
                    emu.drive("mon_groups/" + id, static_cast<uint64_t>(r),
                              static_cast<uint64_t>(r / 4), 1 << 20);
                    on[id] = want;
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    });
    for (auto& [id, bps] : bursty) {
        bps /= 2;
    }

    // Let a whole cycle pass with the bursty loads on, then two cycles quiet for the CPU.
    std::this_thread::sleep_for(std::chrono::duration<double>(cycle));
    const Reading a = readAll(client);
    const double cpu0 = cpuMs(daemon.pid());
    const auto w0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(2 * cycle));
    const double cpuPct = (cpuMs(daemon.pid()) - cpu0) /
                          std::chrono::duration<double, std::milli>(Clock::now() - w0).count() *
                          100;
    const Reading b = readAll(client);
    stop = true;
    toggler.join();

    // Each call in a pass of its own; rdtmond's CPU per call, to tell its part from the
    // client's (both decode or encode every value's variant).
    std::vector<double> calls, countersCalls;
    double valuesCpu = 0, countersCpu = 0;
    for (int i = 0; i < 10; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(520));
        double c0 = cpuMs(daemon.pid());
        calls.push_back(readAll(client).callMs);
        valuesCpu += cpuMs(daemon.pid()) - c0;
        std::this_thread::sleep_for(std::chrono::milliseconds(520));
        c0 = cpuMs(daemon.pid());
        const auto t0 = Clock::now();
        client.allCountersLabels();
        countersCalls.push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        countersCpu += cpuMs(daemon.pid()) - c0;
    }

    const std::vector<double> steadyErr = errors(a, b, steady);
    const std::vector<double> burstyErr = errors(a, b, bursty);
    double load[3] = {0, 0, 0};
    ::getloadavg(load, 3);
    char buf[256];
    std::printf("rdtmon-bench-counters: %d containers, %u counters per L3 domain, 2 domains, "
                "load average %.2f at the end\n",
                s.groups, s.counters, load[0]);
    std::printf("%-62s %s\n", "row", "value");
    std::vector<std::pair<std::string, std::string>> rows;
    std::snprintf(buf, sizeof buf, "%.1f s (all made in %.1f s; target: within the first cycle)",
                  allSeconds, fillSeconds);
    rows.emplace_back("every container has a figure, after the last create", buf);
    std::snprintf(buf, sizeof buf, "%.1f s, %u groups take turns (target <= 60 s)", cycle,
                  rotating);
    rows.emplace_back("cycle (CounterCycleUsec)", buf);
    std::snprintf(buf, sizeof buf, "median %.2f %%, p90 %.2f %%, max %.2f %% (target <= 2 %%)",
                  percentile(steadyErr, 0.5), percentile(steadyErr, 0.9),
                  percentile(steadyErr, 1.0));
    rows.emplace_back("steady loads: rate over 2 cycles vs driven", buf);
    std::snprintf(buf, sizeof buf, "median %.1f %%, p90 %.1f %%, max %.1f %% (documented)",
                  percentile(burstyErr, 0.5), percentile(burstyErr, 0.9),
                  percentile(burstyErr, 1.0));
    rows.emplace_back("bursty loads (on/off 3-9 s): rate over 2 cycles vs average", buf);
    std::snprintf(buf, sizeof buf, "%.2f %% of one core (target <= 2 %%)", cpuPct);
    rows.emplace_back("rdtmond CPU while the turns go on, no reader", buf);
    std::snprintf(buf, sizeof buf, "median %.1f ms, max %.1f ms (target <= 50 ms); rdtmond %.1f ms",
                  percentile(countersCalls, 0.5), percentile(countersCalls, 1.0), countersCpu / 10);
    rows.emplace_back("GetAllCounters in rotation, in-process", buf);
    std::snprintf(buf, sizeof buf, "median %.1f ms, max %.1f ms; rdtmond %.1f ms CPU per call",
                  percentile(calls, 0.5), percentile(calls, 1.0), valuesCpu / 10);
    rows.emplace_back("GetAllValues in rotation, in-process", buf);
    nlohmann::json j = {{"groups", s.groups},
                        {"countersPerDomain", s.counters},
                        {"loadAverage", load[0]},
                        {"firstFigureSeconds", allSeconds},
                        {"cycleSeconds", cycle},
                        {"rotating", rotating},
                        {"steadyErrorPct",
                         {{"median", percentile(steadyErr, 0.5)},
                          {"p90", percentile(steadyErr, 0.9)},
                          {"max", percentile(steadyErr, 1.0)}}},
                        {"burstyErrorPct",
                         {{"median", percentile(burstyErr, 0.5)},
                          {"p90", percentile(burstyErr, 0.9)},
                          {"max", percentile(burstyErr, 1.0)}}},
                        {"cpuPctOfOneCore", cpuPct},
                        {"getAllCountersMs",
                         {{"median", percentile(countersCalls, 0.5)},
                          {"max", percentile(countersCalls, 1.0)},
                          {"rdtmondCpu", countersCpu / 10}}},
                        {"getAllValuesMs",
                         {{"median", percentile(calls, 0.5)},
                          {"max", percentile(calls, 1.0)},
                          {"rdtmondCpu", valuesCpu / 10}}}};
    for (const auto& [row, value] : rows) {
        std::printf("%-62s %s\n", row.c_str(), value.c_str());
    }
    if (!jsonPath.empty()) {
        std::ofstream(jsonPath) << j.dump(2) << "\n";
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    Settings s;
    std::string jsonPath;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--quick") {
            // Few groups for few counters: the same turns, a cycle of a few seconds.
            s = Settings{.groups = 40, .counters = 8, .bursty = 10, .cycleSeconds = 5};
        } else if (a == "--json" && i + 1 < argc) {
            jsonPath = argv[++i];
        } else {
            std::cerr << "usage: rdtmon-bench-counters [--quick] [--json FILE]\n";
            return 2;
        }
    }
    if (::geteuid() != 0 || ::access("/dev/fuse", R_OK | W_OK) != 0) {
        std::cerr << "rdtmon-bench-counters: SKIP: needs root and /dev/fuse\n";
        return kExitSkip;
    }
    try {
        return run(s, jsonPath);
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::cerr << "rdtmon-bench-counters: ERROR: " << e.what() << "\n";
        return 1;
    }
}
