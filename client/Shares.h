#pragma once

// Judgement from one interval's rates, without a bus: containers summed into pods, and each
// L3 domain's load (total, local and remote bandwidth, cache occupied, against the cache's
// size) with each consumer's share of it, and the same per SNC node. What rdtmonctl top
// --by pod|domain shows.

#include "Rates.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace rdtmon::client {

// The containers of the report summed per pod (the labels namespace and pod): one entry per
// pod, id "namespace/pod", labels namespace and pod only, its figures the sums of its
// containers' (per domain and in total, absent where any container lacks one), its power
// the sum where every container has one, sampled when any container is. A container
// without a pod label is an entry of its own, as it is. Sorted by id; the CLOS entries are
// kept as they are.
RateReport byPod(const RateReport& report);
// How many containers each entry of byPod() sums (by id).
std::map<std::string, std::size_t> podSizes(const RateReport& report);

struct Share {
    std::string id; // as in the report: a container (or, after byPod, a pod); or a CLOS's outside
    Labels labels;
    bool outside = false; // a CLOS's share outside its containers (id is the CLOS path)
    Figures figures;      // on this domain
    std::optional<double> bandwidthShare; // of the domain's MBM total, 0..1
    std::optional<double> cacheShare;     // of the domain's occupied cache, 0..1
    std::optional<double> cacheSizeShare; // of the domain's whole cache (its size), 0..1
};

// Whole L3 domain (mon_L3_00) -> its cache's size in bytes (Status::l3CacheSizes).
using CacheSizes = std::map<std::string, uint64_t>;
CacheSizes cacheSizesOf(const std::map<uint32_t, uint64_t>& byDomainId);

struct DomainLoad {
    // A whole L3 domain (mon_L3_00), or one of its SNC nodes (mon_L3_00/mon_sub_L3_01).
    std::string domain;
    // The size of a whole domain's cache (absent where unknown, and for an SNC node, which
    // shares its L3 with the domain's other nodes).
    std::optional<uint64_t> cacheBytes;
    // The domain as a whole: the sum of every CLOS's own reading (every RMID on it). Its MBM
    // is absent while any container takes turns at the assignable counters (a CLOS's reading
    // then counts only the groups that hold them).
    Figures total;
    std::optional<double> remoteBytesPerSec; // total - local: traffic to other nodes' memory
    std::vector<Share> consumers;            // every entry of the report on this domain
    std::vector<Share> outside;              // per CLOS, what ran outside its containers
};

// One load per L3 domain of the report, in domain order (a domain's SNC nodes right after
// it); its consumers are the report's pods (byPod), in id order, and its outside shares come
// from the containers (closOf knows containers, not pods).
std::vector<DomainLoad> domainLoads(const RateReport& report, const ClosOf& closOf,
                                    const CacheSizes& caches = {});

} // namespace rdtmon::client
