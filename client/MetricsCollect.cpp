#include "MetricsCollect.h"

namespace rdtmon::client {

MetricsInput collectMetrics(BusClient& bus, std::string* why) {
    MetricsInput in;
    try {
        in.status = bus.status();
        if (in.status.supported) {
            try {
                in.snapshot = bus.allCounters();
                in.coverage = bus.allCoverage();
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
