// rdtmon-bench-exporter: what one Prometheus scrape of rdtmon-exporter costs at 1,000
// groups (target: <= 100 ms), on a private bus with the emulator (2 L3 domains) and
// rdtmond. Each group carries pod labels, so the text has its real size. The scrapes are
// timed by curl (%{time_total}: from the connection to the last byte), not including
// curl's own start. The same over HTTPS with basic auth (--web.config.file, a bcrypt hash
// of cost 10 as htpasswd -nBC 10 makes), a TLS handshake in each scrape: the exporter
// closes each connection after its reply, so Prometheus connects anew for every scrape.
// Prints a table; exits 77 where it cannot run (not root, no /dev/fuse), 1 on an error,
// never on a number.
//   usage: rdtmon-bench-exporter [--quick] [--json FILE]

#include "BusClient.h"
#include "EmulatorMount.h"
#include "MetricsCollect.h"
#include "MetricsText.h"
#include "PrivateBus.h"
#include "Proc.h"
#include "RdtmonClient.h"
#include "RdtmondProcess.h"
#include "Subprocess.h"
#include "TempDir.h"
#include "TestUtil.h"
#include "WebTestFiles.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace rdtmon::test;

namespace {

constexpr int kExitSkip = 77;
constexpr int kGroups = 1000;

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    const std::size_t i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v.at(std::min(i, v.size() - 1));
}

struct Row {
    std::string name;
    std::vector<double> ms;
    std::string note;
};

void printRow(const Row& r) {
    std::printf("%-56s %6.1f ms %6.1f ms %6.1f ms  %s\n", r.name.c_str(), percentile(r.ms, 0.5),
                percentile(r.ms, 0.9), *std::max_element(r.ms.begin(), r.ms.end()), r.note.c_str());
}

double msSince(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// The exporters the benchmark started, stopped by its destructor.
struct Exporters {
    std::vector<pid_t> pids;
    ~Exporters() {
        for (pid_t pid : pids) {
            terminate(pid, std::chrono::seconds(10));
        }
    }
};

// Starts rdtmon-exporter on a free loopback port with args; its URL, from the start-up
// line "serving http(s)://ADDR/metrics" (no std::regex: GCC 12's sanitizer build warns
// inside it).
std::string startExporter(Exporters& exporters, const PrivateBus& bus, const TempDir& dir,
                          const std::string& name, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {RDTMON_EXPORTER_BIN, "--listen", "127.0.0.1:0"};
    argv.insert(argv.end(), args.begin(), args.end());
    const std::string logFile = dir.file(name + ".log");
    exporters.pids.push_back(spawnLogged(argv, mergedEnv({bus.envEntry()}), logFile, true));
    const std::string kServing = "serving http";
    for (int i = 0; i < 1000; ++i) {
        const std::string log = readFile(logFile);
        if (const std::size_t at = log.find(kServing); at != std::string::npos) {
            const std::size_t start = at + std::string("serving ").size();
            const std::size_t end = log.find_first_of(" \n", start);
            const std::string word =
                log.substr(start, end == std::string::npos ? std::string::npos : end - start);
            if (word.ends_with("/metrics")) {
                return word;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    throw std::runtime_error("rdtmon-exporter did not start:\n" + readFile(logFile));
}

int run(int scrapes, const std::string& jsonPath) {
    EmulatorMount emu(EmulatorOptions{.numRmids = kGroups + 50, .l3Domains = 2});
    PrivateBus bus;
    // No container source: nothing is collected while the benchmark runs.
    Rdtmond daemon(bus, {.resctrl = emu.path(), .configJson = R"({"containerSources": []})"});
    Sleepers inits(kGroups);
    RdtmonClient client(bus.address());
    for (int i = 0; i < kGroups; ++i) {
        Pidfd pidfd(inits.pid(static_cast<std::size_t>(i)));
        const std::string n = std::to_string(i);
        CallResult r = client.createContainerGroup(
            concat("ctr-", i), pidfd.get(),
            {{"pod", "web-" + n},
             {"namespace", "bench"},
             {"container", "app"},
             {"pod_uid", "3f1c2a9e-0b1d-4c7e-9a55-" + std::string(12 - n.size(), '0') + n}});
        if (!r.ok()) {
            throw std::runtime_error("CreateContainerGroup ctr-" + n + ": " + r.error + ": " +
                                     r.message);
        }
    }

    TempDir dir("rdtmon-bench-exporter");
    Exporters exporters;
    const std::string url = startExporter(exporters, bus, dir, "plain", {});
    // The same exporter with TLS and basic auth.
    TempDir webDir("rdtmon-bench-exporter-web");
    const WebConfigFiles web =
        makeWebConfig(webDir.path(), {}, {{"prometheus", "bench-s3cret"}}, {.bcryptCost = 10});
    const std::string tlsUrl =
        startExporter(exporters, bus, dir, "tls", {"--web.config.file", web.configFile});
    const std::vector<std::string> tlsArgs = {"--cacert", web.certs.caCert, "--user",
                                              "prometheus:bench-s3cret"};

    // One warm-up scrape of each, checked: every group is in it.
    const std::string wantGroups = concat("\nrdtmon_groups ", kGroups, "\n");
    for (const auto& [u, extra] :
         {std::pair{url, std::vector<std::string>{}}, std::pair{tlsUrl, tlsArgs}}) {
        std::vector<std::string> argv = {"curl", "-sS", "--noproxy", "*"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        argv.push_back(u);
        CommandResult first = runCommand(argv);
        if (first.exitCode != 0 || first.out.find(wantGroups) == std::string::npos ||
            first.out.find("container_id=\"ctr-999\"") == std::string::npos) {
            throw std::runtime_error(u + ": the first scrape does not show " +
                                     std::to_string(kGroups) + " groups: " + first.err +
                                     first.out.substr(0, 2000));
        }
    }
    // Scrapes and in-process readings take turns, so that both meet the same load. rdtmond
    // starts a counter pass at most every 500 ms (CountersReader::kMinInterval): each call
    // comes 520 ms after the last, so the rows time a pass, as Prometheus' scrapes every
    // 15 s or more meet it, not the wait for one.
    auto spaced = [last = std::chrono::steady_clock::time_point{}]() mutable {
        std::this_thread::sleep_until(last + std::chrono::milliseconds(520));
        last = std::chrono::steady_clock::now();
    };
    ::setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address().c_str(), 1);
    rdtmon::client::BusClient reader;
    Row scrape{"rdtmon-exporter: GET /metrics, 1000 groups x 2 domains", {}, ""};
    Row read{"  of which: properties + GetAllCounters (client library)", {}, ""};
    Row format{"  of which: formatMetrics (the Prometheus text)", {}, ""};
    Row tlsNew{"the same over HTTPS + basic auth", {}, ""};
    double bytes = 0;
    // One scrape with curl: its time, and the size of what it got.
    auto timedScrape = [&bytes](const std::string& u, const std::vector<std::string>& extra) {
        std::vector<std::string> argv = {
            "curl", "-sS",       "--noproxy", "*",
            "-o",   "/dev/null", "-w",        "%{time_total} %{size_download} %{http_code}"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        argv.push_back(u);
        CommandResult timed = runCommand(argv);
        std::istringstream in(timed.out);
        double seconds = 0;
        int status = 0;
        if (timed.exitCode != 0 || !(in >> seconds >> bytes >> status) || status != 200) {
            throw std::runtime_error("curl " + u + ": " + timed.err + timed.out);
        }
        return seconds * 1000.0;
    };
    for (int i = 0; i < scrapes; ++i) {
        spaced();
        scrape.ms.push_back(timedScrape(url, {}));
        spaced();
        tlsNew.ms.push_back(timedScrape(tlsUrl, tlsArgs));

        spaced();
        auto t0 = std::chrono::steady_clock::now();
        rdtmon::client::MetricsInput metrics = rdtmon::client::collectMetrics(reader);
        read.ms.push_back(msSince(t0));
        t0 = std::chrono::steady_clock::now();
        const std::string text = rdtmon::client::formatMetrics(metrics);
        format.ms.push_back(msSince(t0));
        if (!metrics.up || text.size() < 1000) {
            throw std::runtime_error("the in-process reading failed");
        }
    }
    char note[128];
    std::snprintf(note, sizeof note, "%d scrapes, %.0f KiB each, target <= 100 ms", scrapes,
                  bytes / 1024.0);
    scrape.note = note;
    tlsNew.note = "TLS 1.3 handshake each, bcrypt cost 10; target <= 100 ms";
    std::vector<Row> rows;
    rows.push_back(std::move(scrape));
    rows.push_back(std::move(read));
    rows.push_back(std::move(format));
    rows.push_back(std::move(tlsNew));

    double load[1] = {0};
    ::getloadavg(load, 1);
    std::printf("rdtmon-bench-exporter: load average %.2f at the end\n", load[0]);
    std::printf("%-56s %9s %9s %9s  %s\n", "row", "median", "p90", "max", "note");
    nlohmann::json j = {{"loadAverage", load[0]}, {"rows", nlohmann::json::array()}};
    for (const Row& r : rows) {
        printRow(r);
        j["rows"].push_back({{"name", r.name},
                             {"unit", "ms"},
                             {"median", percentile(r.ms, 0.5)},
                             {"p90", percentile(r.ms, 0.9)},
                             {"max", *std::max_element(r.ms.begin(), r.ms.end())},
                             {"samples", r.ms},
                             {"note", r.note}});
    }
    if (!jsonPath.empty()) {
        std::ofstream(jsonPath) << j.dump(2) << "\n";
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    int scrapes = 50;
    std::string jsonPath;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--quick") {
            scrapes = 10;
        } else if (a == "--json" && i + 1 < argc) {
            jsonPath = argv[++i];
        } else {
            std::cerr << "usage: rdtmon-bench-exporter [--quick] [--json FILE]\n";
            return 2;
        }
    }
    if (::geteuid() != 0 || ::access("/dev/fuse", R_OK | W_OK) != 0) {
        std::cerr << "rdtmon-bench-exporter: SKIP: needs root and /dev/fuse\n";
        return kExitSkip;
    }
    try {
        return run(scrapes, jsonPath);
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::cerr << "rdtmon-bench-exporter: ERROR: " << e.what() << "\n";
        return 1;
    }
}
