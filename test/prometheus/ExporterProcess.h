#pragma once

// rdtmon-exporter run by a test: on a private bus, on 127.0.0.1 with a port the kernel
// picks (read back from its start-up line), optionally as nobody. Stopped by its
// destructor.

#include "TempDir.h"

#include <csignal>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace rdtmon::test {

class ExporterProcess {
public:
    struct Options {
        std::string busAddress;                         // DBUS_SYSTEM_BUS_ADDRESS
        std::vector<std::string> listen{"127.0.0.1:0"}; // --listen, each
        std::vector<std::string> extraArgs;
        bool asNobody = true; // uid/gid 65534, as the unit's DynamicUser= runs it
    };
    explicit ExporterProcess(Options opts);
    ~ExporterProcess();
    ExporterProcess(const ExporterProcess&) = delete;
    ExporterProcess& operator=(const ExporterProcess&) = delete;

    // "127.0.0.1:41234": the first address it serves on.
    const std::string& address() const { return addresses_.front(); }
    const std::vector<std::string>& addresses() const { return addresses_; }
    // http://ADDR/metrics, or https:// when the exporter said it serves TLS.
    std::string metricsUrl() const {
        std::string url = https_ ? "https://" : "http://";
        url += address();
        url += "/metrics";
        return url;
    }
    bool https() const { return https_; }
    // Sends sig (SIGTERM or SIGINT); the wait status, or nullopt when it did not exit within
    // 10 s and had to be killed (or had already been stopped).
    std::optional<int> stop(int sig = SIGTERM);
    std::string log() const;
    pid_t pid() const { return pid_; }

private:
    Options opts_;
    TempDir dir_;
    pid_t pid_ = -1;
    std::vector<std::string> addresses_;
    bool https_ = false;
};

} // namespace rdtmon::test
