#pragma once

// Debian's prometheus (PROMETHEUS_BIN) run by a test on 127.0.0.1: its own storage in a
// temp dir, a config written here that scrapes the given targets every second (with
// honor_labels, as docs/monitoring.md advises), and its HTTP query API. Stopped by its
// destructor.

#include "TempDir.h"

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/types.h>
#include <vector>

namespace rdtmon::test {

class PrometheusProcess {
public:
    explicit PrometheusProcess(const std::vector<std::string>& targets);
    ~PrometheusProcess();
    PrometheusProcess(const PrometheusProcess&) = delete;
    PrometheusProcess& operator=(const PrometheusProcess&) = delete;

    // GET /api/v1/query?query=expr: the whole JSON reply ({"status": ..., "data": ...});
    // throws when Prometheus does not answer with JSON.
    nlohmann::json query(const std::string& expr) const;
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
