// rdtmon-exporter proven against a real Prometheus (Debian's /usr/bin/prometheus): the
// emulator drives one container's memory bandwidth at a known rate, Prometheus scrapes the
// exporter every second, and its rate() over the container's counter must come out within
// 10 % of the driven rate, with the pod labels kept (honor_labels). promtool must find
// nothing to say about the exporter's text, and every expression of the Grafana dashboard
// must use only metrics the exporter emits and run on this Prometheus with a result. The
// same Prometheus loads the shipped rules (contrib/prometheus): each must evaluate without
// error on the exporter's real series, and the cluster dashboard's expressions may use
// what they record too. Then
// the same on a node whose counters are too few for its containers (mbm_event mode): while
// their groups take turns, each container's rate() is its driven rate, from one series per
// container and domain.

#include "EmulatorMount.h"
#include "ExporterProcess.h"
#include "Http.h"
#include "PrivateBus.h"
#include "Proc.h"
#include "PrometheusProcess.h"
#include "RdtmonClient.h"
#include "RdtmondProcess.h"
#include "Subprocess.h"
#include "TestUtil.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace rdtmon::test;
using nlohmann::json;

namespace {

// No container source: nothing is ever collected, so the test's groups (whose ids no
// runtime knows) stay however long the test runs.
constexpr const char* kNoCollection = R"({"containerSources": []})";

constexpr const char* kContainer = "web-1";
// What the emulator drives for the container's group, over all L3 domains together:
// memory bandwidth in bytes/s (total, and the local part of it) and LLC occupancy.
constexpr double kDrivenBytesPerSecond = 200.0 * 1000 * 1000;
constexpr double kDrivenLocalBytesPerSecond = 150.0 * 1000 * 1000;
constexpr uint64_t kDrivenLlcBytes = 8 * 1024 * 1024;

// The metric families in a Prometheus text, from its "# TYPE name type" lines.
std::set<std::string> familiesIn(const std::string& text) {
    std::set<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        std::istringstream words(line);
        std::string hash, type, name;
        if (words >> hash >> type >> name && hash == "#" && type == "TYPE") {
            out.insert(name);
        }
    }
    return out;
}

// The rdtmon metric names an expression uses: every PromQL name outside a quoted string
// that has "rdtmon" in it, the exporter's (rdtmon_up) and the recording rules'
// (domain:rdtmon_clos_mbm_total_bytes:rate2m, rdtmon:threshold_cache_hog_share) alike.
// (No std::regex: in the sanitizer build GCC 12 warns inside its automaton, a false
// positive, and warnings fail CI.)
std::set<std::string> metricNamesIn(const std::string& expr) {
    std::set<std::string> out;
    auto isNameStart = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    };
    auto isNameChar = [&](char c) { return isNameStart(c) || (c >= '0' && c <= '9'); };
    for (std::size_t at = 0; at < expr.size();) {
        const char c = expr[at];
        if (c == '"' || c == '\'' || c == '`') { // a string: label values, regexes
            std::size_t end = at + 1;
            while (end < expr.size() && expr[end] != c) {
                end += (expr[end] == '\\' && c != '`') ? 2 : 1;
            }
            at = end + 1;
        } else if (isNameStart(c)) {
            std::size_t end = at;
            while (end < expr.size() && isNameChar(expr[end])) {
                ++end;
            }
            const std::string name = expr.substr(at, end - at);
            if (name.find("rdtmon") != std::string::npos) {
                out.insert(name);
            }
            at = end;
        } else if (c >= '0' && c <= '9') { // a number or a duration (2m, 10e9)
            while (at < expr.size() && (isNameChar(expr[at]) || expr[at] == '.')) {
                ++at;
            }
        } else {
            ++at;
        }
    }
    return out;
}

// label_values(SELECTOR, label) split into SELECTOR and label; nullopt for another query.
std::optional<std::pair<std::string, std::string>> labelValuesArgs(const std::string& q) {
    const std::string head = "label_values(";
    if (q.rfind(head, 0) != 0 || q.size() <= head.size() || q.back() != ')') {
        return std::nullopt;
    }
    const std::string inner = q.substr(head.size(), q.size() - head.size() - 1);
    const std::size_t comma = inner.rfind(',');
    if (comma == std::string::npos) {
        return std::nullopt;
    }
    std::string label = inner.substr(comma + 1);
    label.erase(0, label.find_first_not_of(' '));
    if (label.empty() ||
        label.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") != std::string::npos) {
        return std::nullopt;
    }
    return std::make_pair(inner.substr(0, comma), label);
}

// The dashboard's variables set as a user would leave them: every node, namespace and pod,
// the default top-N, and a rate interval that holds several 1 s scrapes.
std::string withVariables(std::string expr) {
    const std::pair<const char*, const char*> values[] = {{"$__rate_interval", "10s"},
                                                          {"$instance", ".*"},
                                                          {"$namespace", ".*"},
                                                          {"$pod", ".*"},
                                                          {"$topn", "10"}};
    for (const auto& [var, value] : values) {
        for (std::size_t at; (at = expr.find(var)) != std::string::npos;) {
            expr.replace(at, std::string(var).size(), value);
        }
    }
    return expr;
}

// The rule files shipped in contrib/prometheus, as Prometheus loads them.
std::vector<std::string> shippedRuleFiles() {
    return {RDTMON_SOURCE_DIR "/contrib/prometheus/rdtmon.rules.yml",
            RDTMON_SOURCE_DIR "/contrib/prometheus/rdtmon-thresholds.rules.yml"};
}

// Every expression and variable query of a Grafana dashboard, checked against a running
// Prometheus: each metric it names is in `known`, each variable's label_values selector
// finds series with that label, and each panel expression runs with `status: success` and
// returns data, except where mayBeEmpty(expr) says that none is fine.
void checkDashboard(const PrometheusProcess& prom, const std::string& file,
                    const std::set<std::string>& known,
                    const std::function<bool(const std::string&)>& mayBeEmpty) {
    SCOPED_TRACE(file);
    const json dash = json::parse(readFile(file));
    std::vector<std::string> exprs;
    for (const json& panel : dash["panels"]) {
        for (const json& target : panel["targets"]) {
            exprs.push_back(target["expr"].get<std::string>());
        }
    }
    ASSERT_GE(exprs.size(), 5u);
    std::set<std::string> used;
    for (const json& var : dash["templating"]["list"]) {
        if (var["type"] != "query") {
            continue;
        }
        // label_values(SELECTOR, label): the selector is PromQL; the label must be on it.
        const std::string q = var["query"]["query"].get<std::string>();
        const auto args = labelValuesArgs(q);
        ASSERT_TRUE(args.has_value()) << q;
        json r = prom.query(withVariables(args->first));
        ASSERT_EQ(r["status"], "success") << q << "\n" << r.dump();
        ASSERT_FALSE(r["data"]["result"].empty()) << q;
        EXPECT_TRUE(r["data"]["result"][0]["metric"].contains(args->second)) << q << r.dump();
        for (const std::string& n : metricNamesIn(q)) {
            used.insert(n);
        }
    }
    for (const std::string& e : exprs) {
        for (const std::string& n : metricNamesIn(e)) {
            used.insert(n);
        }
        json r = prom.query(withVariables(e));
        EXPECT_EQ(r["status"], "success") << e << "\n" << r.dump();
        if (!mayBeEmpty(e)) {
            EXPECT_FALSE(r["data"]["result"].empty()) << "no data for " << withVariables(e);
        }
    }
    for (const std::string& n : used) {
        EXPECT_TRUE(known.count(n))
            << "the dashboard uses " << n << ", which neither the exporter nor a rule makes";
    }
}

// The shipped rules as a Prometheus that loaded shippedRuleFiles() reports them: all there,
// and each evaluated without error on the series it has (a join that matches many-to-many,
// say, is an error here, not an empty result). Rules are evaluated every second from the
// start, so after a few seconds each has been. Returns each recording rule's expression by
// its name.
std::map<std::string, std::string> shippedRulesHealthy(const PrometheusProcess& prom) {
    std::map<std::string, std::string> recorded;
    std::size_t alerts = 0;
    json rules = prom.rules();
    EXPECT_EQ(rules["status"], "success") << rules.dump();
    for (const json& group : rules["data"]["groups"]) {
        for (const json& rule : group["rules"]) {
            EXPECT_EQ(rule["health"], "ok")
                << group["name"] << ": " << rule["name"] << ": " << rule.value("lastError", "");
            if (rule["type"] == "recording") {
                recorded[rule["name"].get<std::string>()] = rule["query"].get<std::string>();
            } else {
                ++alerts;
            }
        }
    }
    EXPECT_TRUE(recorded.count("namespace_pod_domain:rdtmon_domain_bandwidth_share:ratio_rate2m"))
        << rules.dump();
    EXPECT_TRUE(recorded.count("rdtmon:threshold_busy_domain_bytes_per_second")) << rules.dump();
    EXPECT_GE(alerts, 8u) << rules.dump();
    return recorded;
}

// Polls a scalar-valued query (an instant vector of one sample) until pred holds.
std::optional<double> pollValue(const PrometheusProcess& prom, const std::string& expr,
                                const std::function<bool(double)>& pred,
                                std::chrono::seconds limit) {
    std::optional<double> last;
    const auto deadline = std::chrono::steady_clock::now() + scaledDeadline(limit);
    while (std::chrono::steady_clock::now() < deadline) {
        json r = prom.query(expr);
        if (r["status"] == "success" && !r["data"]["result"].empty()) {
            last = std::stod(r["data"]["result"][0]["value"][1].get<std::string>());
            if (pred(*last)) {
                return last;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    return last;
}

class RealPrometheus : public ::testing::Test {
protected:
    RealPrometheus()
        : emu_(EmulatorOptions{.numRmids = 32, .l3Domains = 2}), bus_(),
          daemon_(bus_, Rdtmond::Options{.resctrl = emu_.path(), .configJson = kNoCollection}),
          sleeper_(spawnSleeper()) {
        RdtmonClient client(bus_.address());
        Pidfd pidfd(sleeper_.pid());
        CallResult r = client.createContainerGroup(
            kContainer, pidfd.get(),
            {{"pod", "web-7d9f"}, {"namespace", "shop"}, {"container", "nginx"}});
        if (!r.ok()) {
            throw std::runtime_error("CreateContainerGroup: " + r.error + ": " + r.message);
        }
        driveRate();
    }

    void driveRate();

    EmulatorMount emu_;
    PrivateBus bus_;
    Rdtmond daemon_;
    ChildProcess sleeper_;
};

void RealPrometheus::driveRate() {
    emu_.drive(concat("mon_groups/", kContainer), static_cast<uint64_t>(kDrivenBytesPerSecond),
               static_cast<uint64_t>(kDrivenLocalBytesPerSecond), kDrivenLlcBytes);
}

TEST_F(RealPrometheus, RateOfTheDrivenContainerPromtoolTheDashboardsAndTheRules) {
    ExporterProcess exporter({.busAddress = bus_.address()});

    // promtool reads the text on stdin and says nothing when it has nothing to complain of.
    HttpReply scrape = httpGet(exporter.metricsUrl());
    ASSERT_EQ(scrape.status, 200) << scrape.error;
    CommandResult lint = runCommand({PROMTOOL_BIN, "check", "metrics"}, {.stdinText = scrape.body});
    EXPECT_EQ(lint.exitCode, 0) << lint.out << lint.err;
    EXPECT_EQ(lint.out + lint.err, "") << scrape.body;

    PrometheusProcess prom(std::vector<std::string>{exporter.address()}, shippedRuleFiles());
    const std::string series =
        concat("rdtmon_mbm_total_bytes_total{container_id=\"", kContainer, "\"}");
    // rate() divides by the whole window, so a series younger than its window reads low:
    // wait until every domain's series has 15 s of history (15 scrapes), then assert the
    // rate over the last 10 s, once, exactly.
    std::optional<double> filled = pollValue(
        prom, "min(count_over_time(" + series + "[30s]))", [](double n) { return n >= 15; },
        std::chrono::seconds(90));
    ASSERT_TRUE(filled && *filled >= 15) << "too few scrapes: " << filled.value_or(-1) << "\n"
                                         << prom.log() << exporter.log();
    json rate = prom.query("sum(rate(" + series + "[10s]))");
    ASSERT_EQ(rate["status"], "success") << rate.dump();
    ASSERT_EQ(rate["data"]["result"].size(), 1u) << rate.dump();
    const double measured = std::stod(rate["data"]["result"][0]["value"][1].get<std::string>());
    EXPECT_NEAR(measured, kDrivenBytesPerSecond, 0.10 * kDrivenBytesPerSecond);
    std::cout << "rate(mbm_total) through Prometheus: " << measured << " B/s, driven "
              << kDrivenBytesPerSecond << " B/s\n";
    json local = prom.query(
        concat("sum(rate(rdtmon_mbm_local_bytes_total{container_id=\"", kContainer, "\"}[10s]))"));
    ASSERT_EQ(local["data"]["result"].size(), 1u) << local.dump();
    EXPECT_NEAR(std::stod(local["data"]["result"][0]["value"][1].get<std::string>()),
                kDrivenLocalBytesPerSecond, 0.10 * kDrivenLocalBytesPerSecond);
    // Occupancy is a gauge: what was driven, exactly.
    json llc =
        prom.query(concat("sum(rdtmon_llc_occupancy_bytes{container_id=\"", kContainer, "\"})"));
    ASSERT_EQ(llc["data"]["result"].size(), 1u) << llc.dump();
    EXPECT_EQ(llc["data"]["result"][0]["value"][1], std::to_string(kDrivenLlcBytes));

    // The pod identity and the group's origin arrive in Prometheus as they left the exporter.
    json raw = prom.query(series);
    ASSERT_EQ(raw["status"], "success");
    ASSERT_EQ(raw["data"]["result"].size(), 2u) << raw.dump(); // two L3 domains
    for (const json& s : raw["data"]["result"]) {
        EXPECT_EQ(s["metric"]["pod"], "web-7d9f") << s.dump();
        EXPECT_EQ(s["metric"]["namespace"], "shop") << s.dump();
        EXPECT_EQ(s["metric"]["container"], "nginx") << s.dump();
        EXPECT_EQ(s["metric"]["origin"], "hook") << s.dump(); // asked for over the bus
    }

    // The dashboard: every metric it names is one the exporter emits (the names come from
    // the exporter's own output), and every panel's expression runs and finds data.
    const std::set<std::string> emitted = familiesIn(httpGet(exporter.metricsUrl()).body);
    ASSERT_TRUE(emitted.count("rdtmon_mbm_total_bytes_total")) << "no container families";
    ASSERT_NO_FATAL_FAILURE(checkDashboard(prom, RDTMON_SOURCE_DIR "/contrib/grafana/rdtmon.json",
                                           emitted, [](const std::string&) { return false; }));

    // The shipped rules: all loaded, and each evaluated without error on these series.
    const std::map<std::string, std::string> recorded = shippedRulesHealthy(prom);

    // The cluster dashboard: its names are the exporter's or the rules', and each
    // expression finds data, except the list of firing alerts (none fires here).
    ASSERT_TRUE(emitted.count("rdtmon_llc_size_bytes")) << "the cache-share rules need it";
    std::set<std::string> known = emitted;
    for (const auto& [name, query] : recorded) {
        known.insert(name);
    }
    auto mayBeEmpty = [](const std::string& e) { return e.find("ALERTS") != std::string::npos; };
    ASSERT_NO_FATAL_FAILURE(checkDashboard(
        prom, RDTMON_SOURCE_DIR "/contrib/grafana/rdtmon-cluster.json", known, mayBeEmpty));
}

// Five containers, counters for two: all five take turns (cycle 1.5 s), and Prometheus'
// rate() over each is its driven rate, with no series but the two domains' per container.
// The shipped rules are loaded here too and must evaluate without error.
TEST(RealPrometheusInTurns, EachContainersRateIsItsDrivenRate) {
    EmulatorMount emu(EmulatorOptions{
        .numRmids = 32, .l3Domains = 2, .mbmAssign = "mbm_event", .numMbmCntrs = 6});
    PrivateBus bus;
    Rdtmond daemon(bus,
                   {.resctrl = emu.path(),
                    .configJson = R"({"containerSources": [], "counters": {"cycleSeconds": 1}})"});
    RdtmonClient client(bus.address());
    std::vector<std::unique_ptr<ChildProcess>> sleepers;
    std::map<std::string, double> driven;
    for (const auto& [id, bps] : {std::pair<const char*, double>{"t1", 100e6},
                                  {"t2", 200e6},
                                  {"t3", 300e6},
                                  {"t4", 400e6},
                                  {"t5", 500e6}}) {
        sleepers.push_back(std::make_unique<ChildProcess>(spawnSleeper()));
        Pidfd pidfd(sleepers.back()->pid());
        ASSERT_TRUE(client.createContainerGroup(id, pidfd.get(), {{"namespace", "turns"}}).ok());
        emu.drive(concat("mon_groups/", id), static_cast<uint64_t>(bps),
                  static_cast<uint64_t>(bps / 2), kDrivenLlcBytes);
        driven[id] = bps;
    }
    ASSERT_TRUE(waitUntil([&] { return client.property<uint32_t>("CountersRotating") == 5; },
                          std::chrono::seconds(10)));
    ExporterProcess exporter({.busAddress = bus.address()});
    PrometheusProcess prom(std::vector<std::string>{exporter.address()}, shippedRuleFiles());
    const std::string series = "rdtmon_mbm_total_bytes_total{namespace=\"turns\"}";
    // 15 s of history for every series (about ten cycles), then the rate over the last 10 s.
    std::optional<double> filled = pollValue(
        prom, "min(count_over_time(" + series + "[30s]))", [](double n) { return n >= 15; },
        std::chrono::seconds(90));
    ASSERT_TRUE(filled && *filled >= 15) << prom.log() << exporter.log();
    json rate = prom.query("sum by (container_id) (rate(" + series + "[10s]))");
    ASSERT_EQ(rate["status"], "success") << rate.dump();
    ASSERT_EQ(rate["data"]["result"].size(), driven.size()) << rate.dump();
    for (const json& r : rate["data"]["result"]) {
        const std::string id = r["metric"]["container_id"].get<std::string>();
        const double measured = std::stod(r["value"][1].get<std::string>());
        EXPECT_NEAR(measured, driven.at(id), 0.10 * driven.at(id)) << id;
        std::cout << "rate(mbm_total) of " << id << " in turns: " << measured << " B/s, driven "
                  << driven.at(id) << " B/s\n";
    }
    // One series per container and domain over the whole time: none came with a turn.
    json series30 = prom.query("count by (container_id) (count_over_time(" + series + "[30s]))");
    ASSERT_EQ(series30["data"]["result"].size(), driven.size()) << series30.dump();
    for (const json& r : series30["data"]["result"]) {
        EXPECT_EQ(r["value"][1], "2") << r.dump();
    }
    json turns = prom.query("rdtmon_mbm_schedule_groups{schedule=\"turns\"}");
    ASSERT_EQ(turns["data"]["result"].size(), 1u) << turns.dump();
    EXPECT_EQ(turns["data"]["result"][0]["value"][1], "5");
    // The rules evaluate on a node in turns too (the cycle's alert has its series here).
    shippedRulesHealthy(prom);
    json cycle = prom.query("rdtmon_mbm_turns_cycle_seconds");
    ASSERT_EQ(cycle["data"]["result"].size(), 1u) << cycle.dump();
}

} // namespace
