#pragma once

// GetAllValues as a client sees it (org.rdtmon1.Manager, v1.2): every value with its
// generation, window and time of measurement, keyed by (container id, domain, event). Read
// through busctl's JSON, as the shipped policy's unprivileged caller does, or in-process
// (RdtmonClient::allValues) where the call is timed.

#include "PrivateBus.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <sys/types.h>
#include <tuple>
#include <vector>

namespace rdtmon::test {

struct ServedValue {
    char type = 't';         // the variant's signature: 't' a count, 'd' a decimal value
    uint64_t count = 0;      // when 't'
    double decimal = 0;      // when 'd'
    uint64_t generation = 0; // changes when the count restarts
    uint64_t windowUsec = 0; // 0: read as the kernel counts it; else the turn it was measured in
    uint64_t measuredUsec = 0;
};

struct AllValues {
    std::string signature; // of the reply
    uint64_t monotonicUsec = 0;
    std::vector<std::string> order; // the container ids as served
    std::map<std::tuple<std::string, std::string, std::string>, ServedValue> values;

    bool has(const std::string& id, const std::string& domain, const std::string& event) const {
        return values.count({id, domain, event}) != 0;
    }
    // Throws std::out_of_range when the value is not served.
    const ServedValue& at(const std::string& id, const std::string& domain,
                          const std::string& event) const {
        return values.at({id, domain, event});
    }
};

// busctl --json=short call ... GetAllValues, as uid (nobody by default; nullopt: as the
// caller). Throws std::runtime_error when the call fails, with busctl's message.
AllValues allValuesByBusctl(const PrivateBus& bus, std::optional<uid_t> uid = 65534);

} // namespace rdtmon::test
