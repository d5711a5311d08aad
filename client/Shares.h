#pragma once

// Judgement from one interval's rates, without a bus: containers summed into pods, and each
// whole L3 domain's load (total, local and remote bandwidth, cache occupied) with each
// consumer's share of it. What rdtmonctl top --by pod|domain shows.

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
};

struct DomainLoad {
    std::string domain; // a whole L3 domain, mon_L3_00
    // The domain as a whole: the sum of every CLOS's own reading (every RMID on it). Its MBM
    // is absent while any container takes turns at the assignable counters (a CLOS's reading
    // then counts only the groups that hold them).
    Figures total;
    std::optional<double> remoteBytesPerSec; // total - local: traffic to other nodes' memory
    std::vector<Share> consumers;            // every entry of the report on this domain
    std::vector<Share> outside;              // per CLOS, what ran outside its containers
};

// One load per whole L3 domain of the report, in domain order; its consumers are the
// report's pods (byPod), in id order, and its outside shares come from the containers
// (closOf knows containers, not pods).
std::vector<DomainLoad> domainLoads(const RateReport& report, const ClosOf& closOf);

} // namespace rdtmon::client
