#pragma once

// rdtmond over the system bus (DBUS_SYSTEM_BUS_ADDRESS when set, as sd-bus does), through
// the proxies generated from dbus/*.xml. Every call either returns plain values
// (Snapshot.h) or throws ClientError.

#include "ClientError.h"
#include "Snapshot.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
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
    // ListGroups: the active groups, without labels.
    std::vector<GroupInfo> listGroups();
    // Every group object with all its properties (labels, state, coverage, origin), waiting
    // containers included, in one call (the ObjectManager's GetManagedObjects).
    std::vector<GroupInfo> groupObjects();
    // ListRuntimeGroups: the groups container runtimes made themselves, shown but not owned
    // (origin "runtime", state "active", no object path, no coverage); none from a service
    // older than it (UnknownMethod, or AccessDenied from a bus policy that predates it).
    std::vector<GroupInfo> runtimeGroups();
    Counters counters(const std::string& containerId);
    // GetAllValues (GetAllCounters from a service older than it, without generations), each
    // container's "origin" label moved out of its labels into origin (kOriginHook when the
    // service gives none). Without generations: GetAllCounters, a smaller reply from the same
    // pass, for a reader that takes no rate itself (the exporter: Prometheus does).
    Snapshot allCounters(bool withGenerations = true);
    // GetAllCoverage; nullopt from a service older than it.
    std::optional<std::vector<GroupCoverage>> allCoverage();
    // GetCounterAssignment; nullopt from a service older than it (UnknownMethod, or
    // AccessDenied from a bus policy that predates it).
    std::optional<CounterAssignment> counterAssignment();
    uint32_t garbageCollect();
    // AddContainer for the process pidfd refers to (which the call does not take over): the
    // group's object path and its state, "active" or "waiting".
    std::pair<std::string, std::string> addContainer(const std::string& containerId, int pidfd,
                                                     const Labels& labels);
    // RemoveGroup; NoSuchGroup when rdtmond owns no group of that id.
    void removeGroup(const std::string& containerId);

private:
    class ManagerProxy;
    std::unique_ptr<sdbus::IConnection> conn_;
    std::unique_ptr<ManagerProxy> manager_;
    bool olderThanValues_ = false; // GetAllValues was unknown or denied: GetAllCounters
};

} // namespace rdtmon::client
