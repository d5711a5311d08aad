// rdtmon-exporter as a process, run as nobody against rdtmond on a private bus (strict
// policy) and the emulator: what /metrics shows with and without rdtmond, and how it stops.

#include "DaemonOnEmulator.h"
#include "EmulatorMount.h"
#include "ExporterProcess.h"
#include "Http.h"
#include "PrivateBus.h"
#include "Proc.h"
#include "RdtmonClient.h"
#include "RdtmondProcess.h"
#include "Subprocess.h"
#include "TestUtil.h"
#include "WebTestFiles.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <vector>

using namespace rdtmon::test;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

namespace {

// No container source: nothing is ever collected, so the test's groups (whose ids no
// runtime knows) stay however long the test runs.
constexpr const char* kNoCollection = R"({"containerSources": []})";

// The sample lines of a Prometheus text (no comments, no blank lines).
std::vector<std::string> samples(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.front() != '#') {
            out.push_back(line);
        }
    }
    return out;
}

// Scrapes until the body contains `want` (rdtmond's state changes are seen at the next
// scrape, but the bus may take a moment to notice a process that is gone).
HttpReply scrapeUntil(const ExporterProcess& exporter, const std::string& want) {
    const auto deadline =
        std::chrono::steady_clock::now() + scaledDeadline(std::chrono::seconds(30));
    HttpReply r;
    do {
        r = httpGet(exporter.metricsUrl());
        if (r.body.find(want) != std::string::npos) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    } while (std::chrono::steady_clock::now() < deadline);
    return r;
}

TEST(Exporter, WithoutRdtmondItAnswers200WithUpZeroOnly) {
    PrivateBus bus;
    ExporterProcess exporter({.busAddress = bus.address(), .extraArgs = {"--timeout", "2"}});
    HttpReply r = httpGet(exporter.metricsUrl());
    EXPECT_EQ(r.status, 200) << r.error;
    EXPECT_EQ(r.contentType, "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_EQ(samples(r.body), std::vector<std::string>{"rdtmon_up 0"}) << r.body;

    std::optional<int> st = exporter.stop();
    ASSERT_TRUE(st.has_value()) << "did not stop on SIGTERM\n" << exporter.log();
    EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << *st << "\n" << exporter.log();
}

class ExporterWithDaemon : public ::testing::Test, protected DaemonOnEmulator {
protected:
    ExporterWithDaemon()
        : DaemonOnEmulator(EmulatorOptions{.numRmids = 32, .l3Domains = 2}, kNoCollection) {}

    void createPodGroup(const std::string& id, pid_t pid) {
        RdtmonClient client(bus_.address());
        Pidfd pidfd(pid);
        CallResult r = client.createContainerGroup(
            id, pidfd.get(), {{"pod", "web-7d9f"}, {"namespace", "shop"}, {"container", "nginx"}});
        ASSERT_TRUE(r.ok()) << r.error << ": " << r.message;
    }
};

TEST_F(ExporterWithDaemon, ShowsContainersWithTheirPodLabelsAndTheClosGroups) {
    ChildProcess sleeper(spawnSleeper());
    createPodGroup("web-1", sleeper.pid());
    ExporterProcess exporter({.busAddress = bus_.address()});
    HttpReply r = httpGet(exporter.metricsUrl());
    ASSERT_EQ(r.status, 200) << r.error;
    EXPECT_THAT(r.body, HasSubstr("\nrdtmon_up 1\n"));
    EXPECT_THAT(r.body, HasSubstr("\nrdtmon_supported 1\n"));
    EXPECT_THAT(r.body, HasSubstr("\nrdtmon_groups 1\n"));
    EXPECT_THAT(r.body, HasSubstr("\nrdtmon_rmids 32\n"));
    EXPECT_THAT(r.body, HasSubstr("# TYPE rdtmon_llc_size_bytes gauge\n"
                                  "rdtmon_llc_size_bytes{domain=\"mon_L3_00\"} 33554432\n"
                                  "rdtmon_llc_size_bytes{domain=\"mon_L3_01\"} 33554432\n"));
    EXPECT_THAT(r.body, HasSubstr("# TYPE rdtmon_mbm_total_bytes_total counter\n"));
    EXPECT_THAT(r.body, HasSubstr("# TYPE rdtmon_llc_occupancy_bytes gauge\n"));
    for (const char* domain : {"mon_L3_00", "mon_L3_01"}) {
        const std::string labels = concat(
            "{container_id=\"web-1\",pod=\"web-7d9f\",",
            "namespace=\"shop\",container=\"nginx\",origin=\"hook\",domain=\"", domain, "\"} ");
        for (const char* family : {"rdtmon_llc_occupancy_bytes", "rdtmon_mbm_total_bytes_total",
                                   "rdtmon_mbm_local_bytes_total"}) {
            EXPECT_THAT(r.body, HasSubstr(concat("\n", family, labels))) << r.body;
        }
        EXPECT_THAT(r.body, HasSubstr(concat("\nrdtmon_clos_mbm_total_bytes_total{clos=\"/\",",
                                             "domain=\"", domain, "\"} ")));
    }
}

// The series (name and labels, without the value) of a Prometheus text, comments included.
std::vector<std::string> seriesOf(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (!line.empty()) {
            out.push_back(line.front() == '#' ? line : line.substr(0, line.rfind(' ')));
        }
    }
    return out;
}

TEST_F(ExporterWithDaemon, ServesWhatRdtmonctlMetricsPrints) {
    ChildProcess sleeper(spawnSleeper());
    createPodGroup("web-1", sleeper.pid());
    ExporterProcess exporter({.busAddress = bus_.address()});
    HttpReply r = httpGet(exporter.metricsUrl());
    ASSERT_EQ(r.status, 200) << r.error;
    CommandResult ctl = runCommand({RDTMONCTL_BIN, "metrics"}, {.env = {bus_.envEntry()}});
    ASSERT_EQ(ctl.exitCode, 0) << ctl.err;
    // The counters move between the two reads; everything else is the same text.
    EXPECT_EQ(seriesOf(ctl.out), seriesOf(r.body));
    EXPECT_GT(seriesOf(r.body).size(), 20u);
}

// Each --listen address is served by its own libmicrohttpd thread, and both ask rdtmond
// through one bus connection: scrapes on the two at once must each get a whole answer.
TEST_F(ExporterWithDaemon, TwoListenersScrapedAtOnceEachGetAWholeAnswer) {
    ChildProcess sleeper(spawnSleeper());
    createPodGroup("web-1", sleeper.pid());
    ExporterProcess exporter(
        {.busAddress = bus_.address(), .listen = {"127.0.0.1:0", "127.0.0.1:0"}});
    ASSERT_EQ(exporter.addresses().size(), 2u) << exporter.log();
    constexpr int kRounds = 60;
    std::vector<std::string> bad[2];
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
        threads.emplace_back([&, t] {
            const std::string url = "http://" + exporter.addresses()[t] + "/metrics";
            for (int i = 0; i < kRounds; ++i) {
                HttpReply r = httpGet(url);
                if (r.status != 200 || r.body.find("\nrdtmon_up 1\n") == std::string::npos ||
                    r.body.find("container_id=\"web-1\"") == std::string::npos) {
                    bad[t].push_back(concat("status ", std::to_string(r.status), ": ", r.error,
                                            r.body.substr(0, 200)));
                }
            }
        });
    }
    for (std::thread& th : threads) {
        th.join();
    }
    EXPECT_THAT(bad[0], IsEmpty()) << exporter.log();
    EXPECT_THAT(bad[1], IsEmpty()) << exporter.log();
    EXPECT_EQ(kill(exporter.pid(), 0), 0) << "the exporter died\n" << exporter.log();
}

TEST_F(ExporterWithDaemon, FollowsRdtmondGoingAwayAndComingBack) {
    ExporterProcess exporter({.busAddress = bus_.address(), .extraArgs = {"--timeout", "2"}});
    EXPECT_THAT(scrapeUntil(exporter, "\nrdtmon_up 1\n").body, HasSubstr("\nrdtmon_up 1\n"));
    daemon_.stop();
    HttpReply down = scrapeUntil(exporter, "rdtmon_up 0");
    EXPECT_EQ(down.status, 200);
    EXPECT_EQ(samples(down.body), std::vector<std::string>{"rdtmon_up 0"}) << down.body;
    daemon_.start();
    EXPECT_THAT(scrapeUntil(exporter, "\nrdtmon_up 1\n").body, HasSubstr("\nrdtmon_up 1\n"))
        << exporter.log();
}

TEST_F(ExporterWithDaemon, SigintStopsItCleanly) {
    ExporterProcess exporter({.busAddress = bus_.address()});
    ASSERT_EQ(httpGet(exporter.metricsUrl()).status, 200);
    std::optional<int> st = exporter.stop(SIGINT);
    ASSERT_TRUE(st.has_value()) << exporter.log();
    EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << *st;
    EXPECT_THAT(exporter.log(), HasSubstr("stopping"));
    EXPECT_THAT(exporter.log(), Not(HasSubstr("rror")));
}

// Intel's telemetry: the exporter serves each container's energy per package as a counter in
// joules that grows at the power the emulator drives.
class ExporterOnTelemetry : public ::testing::Test, protected DaemonOnEmulator {
protected:
    ExporterOnTelemetry()
        : DaemonOnEmulator(EmulatorOptions{.numRmids = 32, .l3Domains = 2, .perfPkgs = 2},
                           kNoCollection) {}
};

// The sum over the packages of web-1's rdtmon_core_energy_joules_total, or -1 without one.
double joulesOf(const std::string& text) {
    double sum = -1;
    for (const std::string& line : samples(text)) {
        if (line.rfind("rdtmon_core_energy_joules_total{container_id=\"web-1\"", 0) == 0) {
            sum = std::max(sum, 0.0) + std::stod(line.substr(line.rfind(' ') + 1));
        }
    }
    return sum;
}

TEST_F(ExporterOnTelemetry, EnergyIsACounterInJoulesThatGrowsAtTheDrivenPower) {
    ChildProcess sleeper(spawnSleeper());
    RdtmonClient client(bus_.address());
    ASSERT_TRUE(client.createGroup("web-1", static_cast<uint32_t>(sleeper.pid())).ok());
    emu_.energy("mon_groups/web-1", 20);
    ExporterProcess exporter({.busAddress = bus_.address()});
    const HttpReply a = httpGet(exporter.metricsUrl());
    ASSERT_EQ(a.status, 200) << a.error;
    EXPECT_THAT(a.body, HasSubstr("# TYPE rdtmon_core_energy_joules_total counter\n"));
    for (const char* pkg : {"mon_PERF_PKG_00", "mon_PERF_PKG_01"}) {
        EXPECT_THAT(a.body, HasSubstr(concat("origin=\"hook\",domain=\"", pkg, "\"} ")));
    }
    const auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(2));
    const HttpReply b = httpGet(exporter.metricsUrl());
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_GE(joulesOf(a.body), 0) << a.body;
    // Wide: the two reads are rdtmond's passes, not the scrapes' instants.
    EXPECT_NEAR((joulesOf(b.body) - joulesOf(a.body)) / seconds, 20, 0.4 * 20) << b.body;
}

TEST(ExporterCommandLine, ABadAddressIsRefusedByName) {
    CommandResult r = runCommand({RDTMON_EXPORTER_BIN, "--listen", "localhost:10036"});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_THAT(r.err, HasSubstr("localhost:10036"));
    CommandResult bad = runCommand({RDTMON_EXPORTER_BIN, "--no-such-option"});
    EXPECT_EQ(bad.exitCode, 2);
    CommandResult version = runCommand({RDTMON_EXPORTER_BIN, "--version"});
    EXPECT_EQ(version.exitCode, 0);
    EXPECT_THAT(version.out, HasSubstr("rdtmon-exporter "));
}

// --web.config.file on the real process, run as nobody as the unit's dynamic user: HTTPS
// with a required client certificate and basic auth, refusals logged once, and every bad
// configuration a start-up error (exit 1) that names what is wrong.
TEST(ExporterWebConfig, ServesHttpsWithBasicAuthAndLogsRefusalsOnce) {
    TempDir dir("rdtmon-exporter-web");
    const WebConfigFiles web = makeWebConfig(dir.path(), {}, {{"prometheus", "s3cret"}},
                                             {.clientAuthType = "RequireAndVerifyClientCert"});
    PrivateBus bus;
    ExporterProcess exporter(
        {.busAddress = bus.address(),
         .extraArgs = {"--timeout", "2", "--web.config.file", web.configFile}});
    EXPECT_TRUE(exporter.https());
    EXPECT_THAT(exporter.log(),
                HasSubstr("serving https://" + exporter.address() + "/metrics (basic auth)\n"));
    const HttpOptions scraper = {.caFile = web.certs.caCert,
                                 .certFile = web.certs.clientCert,
                                 .keyFile = web.certs.clientKey,
                                 .user = "prometheus",
                                 .password = readFile(web.passwordFiles.at("prometheus"))};
    HttpReply r = httpGet(exporter.metricsUrl(), scraper);
    EXPECT_EQ(r.status, 200) << r.error << exporter.log();
    EXPECT_EQ(samples(r.body), std::vector<std::string>{"rdtmon_up 0"}) << r.body;

    HttpOptions wrong = scraper;
    wrong.password = "guess";
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(httpGet(exporter.metricsUrl(), wrong).status, 401);
    }
    HttpOptions noCert = scraper;
    noCert.certFile.clear();
    EXPECT_EQ(httpGet(exporter.metricsUrl(), noCert).status, 0);
    EXPECT_EQ(httpGet("http://" + exporter.address() + "/metrics").status, 0);

    std::optional<int> st = exporter.stop();
    ASSERT_TRUE(st.has_value()) << exporter.log();
    EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << *st;
    const std::string log = exporter.log();
    const std::string refused =
        "<4>rdtmon-exporter: 401 for 127.0.0.1: wrong password for user \"prometheus\"";
    // One line at the first, and at the stop the last with the count of the others.
    EXPECT_THAT(log, HasSubstr(refused + "\n")) << log;
    EXPECT_THAT(log, HasSubstr(refused + " (1 more since the last line)\n")) << log;
    std::size_t lines401 = 0;
    for (std::size_t at = log.find("401 for"); at != std::string::npos;
         at = log.find("401 for", at + 1)) {
        ++lines401;
    }
    EXPECT_EQ(lines401, 2u) << log;
    EXPECT_THAT(log, HasSubstr("<4>rdtmon-exporter: a TLS handshake failed")) << log;
    EXPECT_THAT(log, Not(HasSubstr("guess")));
    EXPECT_THAT(log, Not(HasSubstr("s3cret")));
}

TEST(ExporterWebConfig, EveryBadConfigurationIsAStartUpErrorNamingIt) {
    TempDir dir("rdtmon-exporter-web");
    const WebConfigFiles web = makeWebConfig(dir.path(), {}, {{"prometheus", "s3cret"}});
    auto start = [&](const std::string& config) {
        return runCommand(
            {RDTMON_EXPORTER_BIN, "--listen", "127.0.0.1:0", "--web.config.file", config},
            {.timeout = std::chrono::seconds(20)});
    };
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"tls_server_config:\n  cert_file: server.crt\n  key_file: missing.key\n",
         ": cannot read key_file " + dir.file("missing.key") + ": No such file or directory"},
        {"tls_server_config:\n  cert_file: server.crt\n  key_file: client.key\n",
         ": cert_file " + dir.file("server.crt") + " with key_file " + dir.file("client.key")},
        {"tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
         "  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
         ": tls_server_config.cipher_suites is not supported by rdtmon-exporter"},
        {"basic_auth_users:\n  alice: plaintext\n", ": basic_auth_users.alice: not a bcrypt hash"},
        {"basic_auth:\n  alice: x\n", ": unknown key basic_auth"},
    };
    for (const auto& [yaml, want] : cases) {
        writeFile(dir.file("bad.yml"), yaml);
        CommandResult r = start(dir.file("bad.yml"));
        EXPECT_EQ(r.exitCode, 1) << yaml << r.err;
        EXPECT_THAT(r.err,
                    HasSubstr("<3>rdtmon-exporter: web config file " + dir.file("bad.yml") + want))
            << yaml;
        EXPECT_THAT(r.err, Not(HasSubstr("serving"))) << yaml;
    }
    CommandResult missing = start(dir.file("nope.yml"));
    EXPECT_EQ(missing.exitCode, 1);
    EXPECT_THAT(missing.err, HasSubstr("<3>rdtmon-exporter: cannot read web config file " +
                                       dir.file("nope.yml") + ": No such file or directory"));
    // The option without a file is a bad command line.
    CommandResult none = runCommand({RDTMON_EXPORTER_BIN, "--web.config.file"});
    EXPECT_EQ(none.exitCode, 2) << none.err;
}

} // namespace
