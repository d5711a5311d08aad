#pragma once

// rdtmond over the system bus (DBUS_SYSTEM_BUS_ADDRESS when set, as sd-bus does), through
// the proxies generated from dbus/*.xml. Every call either returns plain values
// (Snapshot.h) or throws ClientError.

#include "ClientError.h"
#include "Snapshot.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sdbus {
class IConnection;
}

namespace rdtmon::client {

class BusClient {
public:
    // Connects to the system bus; throws ClientError(NotRunning) when there is none. Each
    // call waits at most `timeout` for its reply.
    explicit BusClient(std::chrono::milliseconds timeout = std::chrono::seconds(10));
    ~BusClient();
    BusClient(const BusClient&) = delete;
    BusClient& operator=(const BusClient&) = delete;

    Status status();
    // ListGroups; with labels, also each group's Labels property (one call per group).
    std::vector<GroupInfo> listGroups(bool withLabels);
    Counters counters(const std::string& containerId);
    Snapshot allCounters();
    uint32_t garbageCollect();

private:
    class ManagerProxy;
    std::unique_ptr<sdbus::IConnection> conn_;
    std::unique_ptr<ManagerProxy> manager_;
};

} // namespace rdtmon::client
