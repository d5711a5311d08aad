// Three nodes and one Prometheus, the way a cluster runs rdtmon: each node in its own network
// namespace with its own resctrl emulator, private system bus, rdtmond and rdtmon-exporter
// (TLS and basic auth from one --web.config.file), and Debian's Prometheus outside them
// scraping all three over https through file_sd, each target with a node label, with the
// shipped rules loaded (their `for:` shortened, the busy-domain floor lowered: see below).
// The emulator drives a noisy pod on node-a and quiet pods everywhere: the noisy-neighbour
// alert fires naming that pod and that node and no alert names anything else, a
// cluster-wide topk gives the driven order, and a scrape with a wrong password is refused.

#include "EmulatorMount.h"
#include "ExporterProcess.h"
#include "Http.h"
#include "NetworkNamespace.h"
#include "PrivateBus.h"
#include "Proc.h"
#include "PrometheusProcess.h"
#include "RdtmonClient.h"
#include "RdtmondProcess.h"
#include "Subprocess.h"
#include "TempDir.h"
#include "TestUtil.h"
#include "WebTestFiles.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace rdtmon::test;
using nlohmann::json;

namespace {

constexpr const char* kNoCollection = R"({"containerSources": []})";
constexpr const char* kUser = "prometheus";
constexpr const char* kPassword = "correct horse battery staple";
constexpr unsigned kPort = 10036;
// Each emulated L3 domain moves 4000 MB/s at most; the host's own tasks (undriven, in the
// root group) take 400 of it.
constexpr unsigned kDomainMbps = 4000;

struct PodSpec {
    const char* node;
    const char* ns;
    const char* pod;
    double bytesPerSecond; // over both L3 domains together (the emulator splits it evenly)
};
// node-a's noisy pod takes 1200 of its domains' 1650 MB/s (73 %); every other pod takes
// less than a third of its domain; node-b's domains are not busy at all by the shipped
// 10 GB/s floor, nor by this test's. The driven order across the cluster: as listed.
const PodSpec kPods[] = {
    {"node-a", "shop", "noisy", 2400e6},  {"node-b", "data", "db-b", 600e6},
    {"node-b", "data", "cache-b", 300e6}, {"node-c", "web", "front-c", 200e6},
    {"node-a", "shop", "quiet-a", 100e6},
};

// One node: its namespace first, so that it goes last, after every process started in it.
struct Node {
    Node(std::string name, unsigned index, const std::string& webConfig)
        : name(std::move(name)),
          net(concat("rdtmt", ::getpid() % 10000, "n", index), concat("198.18.", index, ".1"),
              concat("198.18.", index, ".2")) {
        NetworkNamespace::Inside inside(net);
        emu = std::make_unique<EmulatorMount>(
            EmulatorOptions{.numRmids = 32, .l3Domains = 2, .domainMbps = kDomainMbps});
        bus = std::make_unique<PrivateBus>();
        rdtmond = std::make_unique<Rdtmond>(
            *bus, Rdtmond::Options{.resctrl = emu->path(), .configJson = kNoCollection});
        exporter = std::make_unique<ExporterProcess>(
            ExporterProcess::Options{.busAddress = bus->address(),
                                     .listen = {concat(net.nodeAddress(), ":", kPort)},
                                     .extraArgs = {"--web.config.file", webConfig}});
    }

    void startPod(const PodSpec& p) {
        const std::string id = concat(p.pod, "-c");
        pods.push_back(std::make_unique<ChildProcess>(spawnSleeper()));
        RdtmonClient client(bus->address());
        Pidfd pidfd(pods.back()->pid());
        const CallResult r = client.createContainerGroup(
            id, pidfd.get(), {{"pod", p.pod}, {"namespace", p.ns}, {"container", "app"}});
        if (!r.ok()) {
            throw std::runtime_error(concat(name, ": CreateContainerGroup ", id, ": ", r.error));
        }
        const auto bps = static_cast<uint64_t>(p.bytesPerSecond);
        emu->drive(concat("mon_groups/", id), bps, bps / 2, 2u << 20);
    }

    std::string target() const { return concat(net.nodeAddress(), ":", kPort); }

    std::string name;
    NetworkNamespace net;
    std::unique_ptr<EmulatorMount> emu;
    std::unique_ptr<PrivateBus> bus;
    std::unique_ptr<Rdtmond> rdtmond;
    std::unique_ptr<ExporterProcess> exporter;
    std::vector<std::unique_ptr<ChildProcess>> pods;
};

// The shipped rule files as the test loads them: every `for:` 3 s instead of minutes, and
// the thresholds file with the busy-domain floor at 100 MB/s instead of 10 GB/s. rate()
// over the rules' 2 m window divides by the whole window, so in a test's first seconds
// every rate reads a small part of itself; the shares (both sides alike) do not.
std::vector<std::string> testRuleFiles(const TempDir& dir) {
    std::string rules = readFile(RDTMON_SOURCE_DIR "/contrib/prometheus/rdtmon.rules.yml");
    std::size_t fors = 0;
    for (std::size_t at = 0; (at = rules.find("\n    for: ", at)) != std::string::npos; ++fors) {
        const std::size_t end = rules.find('\n', at + 1);
        rules.replace(at, end - at, "\n    for: 3s");
        at = at + 1;
    }
    EXPECT_GE(fors, 8u) << "every alert has its for: line";
    std::string thresholds =
        readFile(RDTMON_SOURCE_DIR "/contrib/prometheus/rdtmon-thresholds.rules.yml");
    const std::string floor = "rdtmon:threshold_busy_domain_bytes_per_second\n    expr: vector(";
    const std::size_t at = thresholds.find(floor);
    EXPECT_NE(at, std::string::npos) << "the busy-domain threshold rule";
    if (at != std::string::npos) {
        const std::size_t value = at + floor.size();
        thresholds.replace(value, thresholds.find(')', value) - value, "100e6");
    }
    writeFile(dir.file("rdtmon.rules.yml"), rules);
    writeFile(dir.file("rdtmon-thresholds.rules.yml"), thresholds);
    return {dir.file("rdtmon.rules.yml"), dir.file("rdtmon-thresholds.rules.yml")};
}

// label -> value of an alert or a sample's metric.
std::string labelOf(const json& labels, const char* name) {
    return labels.contains(name) ? labels[name].get<std::string>() : std::string();
}

} // namespace

TEST(ThreeNodeCluster, TheNoisyPodsAlertNamesItsNodeTopkIsTheDrivenOrderAWrongPasswordIsRefused) {
    if (::geteuid() != 0 || runCommand({"ip", "-V"}).exitCode != 0) {
        GTEST_SKIP() << "needs root and the ip command (iproute2) for the network namespaces";
    }
    TempDir dir("rdtmon-cluster");
    // One certificate for the three nodes' addresses, one user: as a cluster's secret is.
    const WebConfigFiles web = makeWebConfig(dir.path(), {"198.18.1.2", "198.18.2.2", "198.18.3.2"},
                                             {{kUser, kPassword}}, {.bcryptCost = 10});
    std::vector<std::unique_ptr<Node>> nodes;
    for (unsigned i = 0; i < 3; ++i) {
        nodes.push_back(std::make_unique<Node>(std::string("node-") + static_cast<char>('a' + i),
                                               i + 1, web.configFile));
    }
    auto nodeNamed = [&](const std::string& name) -> Node& {
        for (auto& n : nodes) {
            if (n->name == name) {
                return *n;
            }
        }
        throw std::runtime_error("no node " + name);
    };
    for (const PodSpec& p : kPods) {
        nodeNamed(p.node).startPod(p);
    }

    // The exporter on a node address answers only with the right password.
    const Node& c = nodeNamed("node-c");
    HttpOptions right{.caFile = web.certs.caCert, .user = kUser, .password = kPassword};
    HttpOptions wrong = right;
    wrong.password = "Tr0ub4dor&3";
    EXPECT_EQ(httpGet(c.exporter->metricsUrl(), right).status, 200) << c.exporter->log();
    EXPECT_EQ(httpGet(c.exporter->metricsUrl(), wrong).status, 401);
    EXPECT_EQ(httpGet(c.exporter->metricsUrl(), {.caFile = web.certs.caCert}).status, 401);

    // Prometheus: the three nodes through file_sd with their node label, and an "intruder"
    // job scraping node-c with a wrong password, which must fail with a 401.
    json targets = json::array();
    for (const auto& n : nodes) {
        targets.push_back({{"targets", {n->target()}}, {"labels", {{"node", n->name}}}});
    }
    writeFile(dir.file("targets.json"), targets.dump());
    writeFile(dir.file("wrong-password"), "Tr0ub4dor&3");
    const std::string tls = concat("    scheme: https\n"
                                   "    tls_config:\n"
                                   "      ca_file: '",
                                   web.certs.caCert, "'\n");
    const std::string scrape =
        concat("  - job_name: rdtmon\n"
               "    honor_labels: true\n",
               tls,
               "    basic_auth:\n"
               "      username: ",
               kUser, "\n      password_file: '", web.passwordFiles.at(kUser),
               "'\n"
               "    file_sd_configs:\n"
               "      - files: ['",
               dir.file("targets.json"),
               "']\n"
               "        refresh_interval: 1s\n"
               "  - job_name: intruder\n",
               tls,
               "    basic_auth:\n"
               "      username: ",
               kUser, "\n      password_file: '", dir.file("wrong-password"),
               "'\n"
               "    static_configs:\n"
               "      - targets: ['",
               c.target(), "']\n");
    PrometheusProcess prom(PrometheusProcess::ScrapeConfigs{scrape}, testRuleFiles(dir));

    // The noisy-neighbour alert fires (past its `for:`) for node-a's noisy pod.
    json firing;
    const auto deadline =
        std::chrono::steady_clock::now() + scaledDeadline(std::chrono::seconds(120));
    for (;;) {
        const json alerts = prom.alerts();
        ASSERT_EQ(alerts["status"], "success") << alerts.dump();
        firing = json::array();
        for (const json& a : alerts["data"]["alerts"]) {
            if (a["labels"]["alertname"] == "RdtmonNoisyNeighbour" && a["state"] == "firing") {
                firing.push_back(a);
            }
        }
        if (!firing.empty() || std::chrono::steady_clock::now() > deadline) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    ASSERT_FALSE(firing.empty()) << "no noisy-neighbour alert fired:\n"
                                 << prom.alerts().dump() << "\n"
                                 << prom.api("/api/v1/targets").dump() << "\n"
                                 << prom.log();
    // Every alert now, pending or firing, of every rule: only the noisy pod on node-a, on
    // its domains.
    const json all = prom.alerts()["data"]["alerts"];
    std::set<std::string> domains;
    for (const json& a : all) {
        const json& l = a["labels"];
        EXPECT_EQ(labelOf(l, "alertname"), "RdtmonNoisyNeighbour") << a.dump();
        EXPECT_EQ(labelOf(l, "pod"), "noisy") << a.dump();
        EXPECT_EQ(labelOf(l, "namespace"), "shop") << a.dump();
        EXPECT_EQ(labelOf(l, "node"), "node-a") << a.dump();
        EXPECT_EQ(labelOf(l, "instance"), nodeNamed("node-a").target()) << a.dump();
        EXPECT_THAT(a["annotations"]["summary"].get<std::string>(),
                    ::testing::HasSubstr("shop/noisy"))
            << a.dump();
        EXPECT_THAT(a["annotations"]["summary"].get<std::string>(),
                    ::testing::HasSubstr("node node-a"))
            << a.dump();
        domains.insert(labelOf(l, "domain"));
    }
    EXPECT_EQ(domains, (std::set<std::string>{"mon_L3_00", "mon_L3_01"}));

    // The cluster's top pods by memory bandwidth, from the shipped recording rule: the
    // driven order, each on its node.
    const json top = prom.query("sort_desc(topk(5, sum without (domain) "
                                "(namespace_pod_domain:rdtmon_mbm_total_bytes:rate2m)))");
    ASSERT_EQ(top["status"], "success") << top.dump();
    std::vector<std::string> order;
    for (const json& s : top["data"]["result"]) {
        order.push_back(concat(labelOf(s["metric"], "node"), "/", labelOf(s["metric"], "namespace"),
                               "/", labelOf(s["metric"], "pod")));
    }
    std::vector<std::string> driven;
    for (const PodSpec& p : kPods) {
        driven.push_back(concat(p.node, "/", p.ns, "/", p.pod));
    }
    EXPECT_EQ(order, driven) << top.dump();

    // The intruder's scrapes were refused: its target is down with a 401.
    const json t = prom.api("/api/v1/targets");
    bool sawIntruder = false;
    for (const json& target : t["data"]["activeTargets"]) {
        if (target["labels"]["job"] == "intruder") {
            sawIntruder = true;
            EXPECT_EQ(target["health"], "down") << target.dump();
            EXPECT_THAT(target["lastError"].get<std::string>(), ::testing::HasSubstr("401"))
                << target.dump();
        } else {
            EXPECT_EQ(target["health"], "up") << target.dump();
        }
    }
    EXPECT_TRUE(sawIntruder) << t.dump();
    // And node-c's exporter said so in its log, naming the user.
    EXPECT_THAT(c.exporter->log(), ::testing::HasSubstr(kUser));
}
