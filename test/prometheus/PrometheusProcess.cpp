#include "PrometheusProcess.h"

#include "Http.h"
#include "Subprocess.h"
#include "TestUtil.h"
#include "UniqueFd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdexcept>
#include <sys/socket.h>
#include <thread>

namespace rdtmon::test {

unsigned freeLoopbackPort() {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 ||
        ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sin), &len) != 0) {
        throw std::runtime_error("cannot bind a loopback port");
    }
    return ntohs(sin.sin_port);
}

namespace {

PrometheusProcess::ScrapeConfigs staticTargets(const std::vector<std::string>& targets) {
    std::string yaml = "  - job_name: rdtmon\n"
                       "    honor_labels: true\n"
                       "    static_configs:\n"
                       "      - targets: [";
    for (std::size_t i = 0; i < targets.size(); ++i) {
        yaml += (i ? ", '" : "'") + targets[i] + "'";
    }
    yaml += "]\n";
    return PrometheusProcess::ScrapeConfigs(yaml);
}

} // namespace

PrometheusProcess::PrometheusProcess(const std::vector<std::string>& targets,
                                     const std::vector<std::string>& ruleFiles)
    : PrometheusProcess(staticTargets(targets), ruleFiles) {}

PrometheusProcess::PrometheusProcess(const ScrapeConfigs& scrape,
                                     const std::vector<std::string>& ruleFiles)
    : dir_("rdtmon-prometheus") {
    // scrape_timeout must not exceed the 1 s interval; it is the whole interval, so that
    // a slow scrape on a loaded machine still counts.
    std::string config = "global:\n"
                         "  scrape_interval: 1s\n"
                         "  scrape_timeout: 1s\n"
                         "  evaluation_interval: 1s\n"
                         "scrape_configs:\n";
    config += scrape.yaml;
    if (!ruleFiles.empty()) {
        config += "rule_files:\n";
        for (const std::string& f : ruleFiles) {
            config += "  - '";
            config += f;
            config += "'\n";
        }
    }
    writeFile(dir_.file("prometheus.yml"), config);
    // The port is picked free and then handed over, so another process may take it in
    // between: a Prometheus that exits at start is started again on another port.
    for (int attempt = 0; attempt < 5; ++attempt) {
        start(freeLoopbackPort());
        const auto deadline =
            std::chrono::steady_clock::now() + scaledDeadline(std::chrono::seconds(60));
        while (std::chrono::steady_clock::now() < deadline) {
            if (httpGet(url_ + "/-/ready").status == 200) {
                return;
            }
            if (waitForExit(pid_, std::chrono::milliseconds(0))) {
                pid_ = -1;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        stop();
    }
    throw std::runtime_error("prometheus did not become ready:\n" + log());
}

PrometheusProcess::~PrometheusProcess() {
    stop();
}

void PrometheusProcess::start(unsigned port) {
    const std::string listen = concat("127.0.0.1:", port);
    url_ = "http://" + listen;
    pid_ = spawnLogged({PROMETHEUS_BIN, "--config.file=" + dir_.file("prometheus.yml"),
                        "--storage.tsdb.path=" + dir_.file("data"),
                        "--web.listen-address=" + listen, "--web.console.templates=" + dir_.path(),
                        "--web.console.libraries=" + dir_.path(), "--log.level=warn"},
                       mergedEnv({}), dir_.file("prometheus.log"), true);
}

void PrometheusProcess::stop() {
    if (pid_ > 0) {
        terminate(pid_, scaledDeadline(std::chrono::milliseconds(20000)));
        pid_ = -1;
    }
}

nlohmann::json PrometheusProcess::query(const std::string& expr) const {
    HttpReply r = httpRequest("POST", url_ + "/api/v1/query", {{"query", expr}});
    try {
        return nlohmann::json::parse(r.body);
    } catch (const nlohmann::json::exception&) {
        throw std::runtime_error(
            concat("prometheus query '", expr, "': HTTP ", r.status, " ", r.error, r.body));
    }
}

nlohmann::json PrometheusProcess::api(const std::string& path) const {
    HttpReply r = httpGet(url_ + path);
    try {
        return nlohmann::json::parse(r.body);
    } catch (const nlohmann::json::exception&) {
        throw std::runtime_error(
            concat("prometheus ", path, ": HTTP ", r.status, " ", r.error, r.body));
    }
}

nlohmann::json PrometheusProcess::rules() const {
    return api("/api/v1/rules");
}

nlohmann::json PrometheusProcess::alerts() const {
    return api("/api/v1/alerts");
}

std::string PrometheusProcess::log() const {
    return readFile(dir_.file("prometheus.log"));
}

} // namespace rdtmon::test
