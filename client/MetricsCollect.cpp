#include "MetricsCollect.h"

#include <algorithm>
#include <set>

namespace rdtmon::client {

namespace {

// The labels and origin of each container of the coverage that the snapshot lacks: those
// waiting for an RMID (usually none), from one GetManagedObjects however many they are.
void addWaiting(BusClient& bus, MetricsInput& in) {
    if (!in.coverage) {
        return;
    }
    std::set<std::string> read;
    for (const GroupCounters& g : in.snapshot.groups) {
        read.insert(g.id);
    }
    std::set<std::string> missing;
    for (const GroupCoverage& c : *in.coverage) {
        if (read.count(c.id) == 0) {
            missing.insert(c.id);
        }
    }
    if (missing.empty()) {
        return;
    }
    for (GroupInfo& g : bus.groupObjects()) {
        if (missing.count(g.id) != 0) {
            const std::string id = g.id;
            in.notRead.emplace(id, std::move(g));
        }
    }
}

} // namespace

MetricsInput collectMetrics(BusClient& bus, std::string* why) {
    MetricsInput in;
    try {
        in.status = bus.status();
        if (in.status.supported) {
            try {
                // Prometheus takes the rates and handles resets itself: no generations,
                // and GetAllCounters' smaller reply, unless the node has decimal telemetry
                // values (core_energy), which only GetAllValues serves.
                const bool decimals = std::find(in.status.telemetryFeatures.begin(),
                                                in.status.telemetryFeatures.end(),
                                                kCoreEnergy) != in.status.telemetryFeatures.end();
                in.snapshot = bus.allCounters(decimals);
                in.coverage = bus.allCoverage();
                in.counters = bus.counterAssignment();
                addWaiting(bus, in);
            } catch (const ClientError& e) {
                // resctrl went away between the two calls: supported no longer.
                if (e.kind() != ClientErrorKind::Unsupported) {
                    throw;
                }
                in.status.supported = false;
            }
        }
        in.up = true;
    } catch (const ClientError& e) {
        if (e.kind() != ClientErrorKind::NotRunning) {
            throw;
        }
        if (why != nullptr) {
            *why = e.what();
        }
        return MetricsInput{};
    }
    return in;
}

MetricsInput collectMetrics(std::string* why) {
    try {
        BusClient bus;
        return collectMetrics(bus, why);
    } catch (const ClientError& e) {
        if (e.kind() != ClientErrorKind::NotRunning) {
            throw;
        }
        if (why != nullptr) {
            *why = e.what();
        }
        return MetricsInput{};
    }
}

} // namespace rdtmon::client
