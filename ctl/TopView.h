#pragma once

// What `rdtmonctl top` shows for one interval, without a bus or a terminal: the rows (one
// per container, or per container and L3 domain), their order, the share of each CLOS
// outside its containers, and the frame as text or as JSON.

#include "Rates.h"
#include "Shares.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace rdtmon::ctl {

enum class SortColumn { Llc, Total, Local, Power, Name };
// A row per container, per pod (its containers summed), or a block per L3 domain with
// its load and each pod's share of it.
enum class TopBy { Container, Pod, Domain };

struct TopOptions {
    SortColumn sort = SortColumn::Total;
    bool perDomain = false; // text only: a row per whole L3 domain instead of their sum
    TopBy by = TopBy::Container;
};

struct TopRow {
    std::string name;        // see containerName(); for the outside share "outside (/)"
    std::string containerId; // empty for the outside share
    std::string domain;      // empty for a row summed over domains
    client::Figures figures;
    std::string origin;   // the group's (hook, adopted, runtime); empty for the outside share
    bool sampled = false; // its MBM figures come from turns at the assignable counters
    // Watts from Intel's telemetry, on a row summed over domains only (power is counted
    // per package, not per L3 domain).
    std::optional<double> watts;
};

struct TopFrame {
    double intervalSeconds = 0;
    std::size_t containerCount = 0;
    std::optional<std::size_t> podCount; // rows are pods (--by pod): how many
    std::size_t runtimeCount = 0;        // of them, groups made by the containers' runtimes
    std::size_t sampledCount = 0;        // of them, groups that take turns at the counters
    bool power = false;                  // some container has a power figure: a column for it
    std::vector<TopRow> containers;      // sorted as asked
    std::vector<TopRow> outside;         // one per CLOS (and domain), by CLOS path
};

// namespace/pod/container when the group has any of those labels, else the first 12
// characters of the id (as docker and crictl shorten ids).
std::string containerName(const std::string& id, const client::Labels& labels);

TopFrame buildTop(const client::RateReport& report, const client::ClosOf& closOf,
                  const TopOptions& opts);

// A pod's name, namespace/pod; an entry without a pod label is named as its container.
std::string podName(const std::string& id, const client::Labels& labels);

// --by domain: per L3 domain (and SNC node) a line with its load (total, local and remote
// MB/s, LLC occupied, of the cache's size where caches has it) and a table of its consumers
// (pods) and each CLOS's outside, with their shares of the domain's bandwidth, of its
// occupied cache and of its whole cache, consumers sorted as asked.
std::string domainText(const client::RateReport& report, const client::ClosOf& closOf,
                       const TopOptions& opts, const client::CacheSizes& caches = {});

// --by domain as JSON: per domain its figures, mbm_remote_bytes_per_second, llc_size_bytes,
// pods and outside, each with bandwidth_share, cache_share and cache_size_share
// (rdtmonctl(1)).
nlohmann::json domainJson(const client::RateReport& report, const client::ClosOf& closOf,
                          const TopOptions& opts, uint64_t monotonicUsec,
                          const client::CacheSizes& caches = {});

// The frame as a table of plain text (no escape codes), ending in a newline. A group made by
// its container's runtime (shown, not owned) has " *" after its name, one that takes turns
// at the assignable counters " ~", and the first line says how many there are of each.
std::string topText(const TopFrame& frame, bool perDomain);

// The interval as one JSON object (rdtmonctl(1) lists its fields); ordered as the text.
nlohmann::json topJson(const client::RateReport& report, const client::ClosOf& closOf,
                       const TopOptions& opts, uint64_t monotonicUsec,
                       const client::CacheSizes& caches = {});

} // namespace rdtmon::ctl
