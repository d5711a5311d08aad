#pragma once

// Debian's prometheus (PROMETHEUS_BIN) run by a test on 127.0.0.1: its own storage in a
// temp dir, a config written here that scrapes the given targets every second (with
// honor_labels, as docs/monitoring.md advises) and evaluates the given rule files every
// second, and its HTTP query API. Stopped by its destructor.

#include "TempDir.h"

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/types.h>
#include <utility>
#include <vector>

namespace rdtmon::test {

class PrometheusProcess {
public:
    // ruleFiles: absolute paths, loaded as they are (rule_files).
    explicit PrometheusProcess(const std::vector<std::string>& targets,
                               const std::vector<std::string>& ruleFiles = {});
    // The entries of scrape_configs as YAML (each "  - job_name: ..." indented by two),
    // for what the plain targets above do not say: file_sd, https, basic auth.
    struct ScrapeConfigs {
        explicit ScrapeConfigs(std::string y) : yaml(std::move(y)) {}
        std::string yaml;
    };
    PrometheusProcess(const ScrapeConfigs& scrape, const std::vector<std::string>& ruleFiles);
    ~PrometheusProcess();
    PrometheusProcess(const PrometheusProcess&) = delete;
    PrometheusProcess& operator=(const PrometheusProcess&) = delete;

    // GET /api/v1/query?query=expr: the whole JSON reply ({"status": ..., "data": ...});
    // throws when Prometheus does not answer with JSON.
    nlohmann::json query(const std::string& expr) const;
    // GET of an API path ("/api/v1/targets"): the whole JSON reply; throws when Prometheus
    // does not answer with JSON.
    nlohmann::json api(const std::string& path) const;
    // GET /api/v1/rules: every rule group loaded, each rule's health and last error.
    nlohmann::json rules() const;
    // GET /api/v1/alerts: the alerts pending and firing now.
    nlohmann::json alerts() const;
    const std::string& url() const { return url_; }
    std::string log() const;

private:
    void start(unsigned port);
    void stop();

    TempDir dir_;
    std::string url_;
    pid_t pid_ = -1;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then closed).
unsigned freeLoopbackPort();

} // namespace rdtmon::test
