#pragma once

// One reading for the Prometheus text: the Manager's status and, when monitoring is
// supported, the bulk counters. rdtmonctl metrics and rdtmon-exporter both read this way.

#include "BusClient.h"
#include "MetricsText.h"

#include <string>

namespace rdtmon::client {

// up is false (and why is set) when rdtmond did not answer or the bus is gone; an
// unsupported node is up with no counters. Any other failure throws ClientError.
MetricsInput collectMetrics(BusClient& bus, std::string* why = nullptr);

// The same with a connection of its own, made for this reading (a missing bus is up=0).
MetricsInput collectMetrics(std::string* why = nullptr);

} // namespace rdtmon::client
