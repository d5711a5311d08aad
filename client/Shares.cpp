#include "Shares.h"

#include <algorithm>
#include <map>
#include <set>

namespace rdtmon::client {

namespace {

std::string labelOf(const Labels& labels, const char* key) {
    const auto it = labels.find(key);
    return it == labels.end() ? std::string() : it->second;
}

// a += b for power: absent as soon as one part is.
void addWatts(std::optional<double>& a, const std::optional<double>& b) {
    if (a && b) {
        *a += *b;
    } else {
        a.reset();
    }
}

std::optional<double> ratio(const std::optional<double>& part, const std::optional<double>& whole) {
    if (!part || !whole || *whole <= 0) {
        return std::nullopt;
    }
    return std::min(1.0, *part / *whole);
}

std::optional<double> asDouble(const std::optional<uint64_t>& v) {
    return v ? std::optional<double>(static_cast<double>(*v)) : std::nullopt;
}

// The pod key of a container: "namespace/pod", or its own id without a pod label.
std::string podKey(const GroupRates& c) {
    const std::string pod = labelOf(c.labels, "pod");
    return pod.empty() ? c.id : labelOf(c.labels, "namespace") + "/" + pod;
}

} // namespace

RateReport byPod(const RateReport& report) {
    RateReport out;
    out.intervalSeconds = report.intervalSeconds;
    out.closes = report.closes;
    std::map<std::string, GroupRates> pods;
    for (const GroupRates& c : report.containers) {
        const std::string key = podKey(c);
        auto [it, added] = pods.try_emplace(key);
        GroupRates& p = it->second;
        if (added) {
            if (key == c.id) {
                p = c; // no pod: the container as it is
                continue;
            }
            p.id = key;
            p.labels = {{"namespace", labelOf(c.labels, "namespace")},
                        {"pod", labelOf(c.labels, "pod")}};
            p.origin = c.origin;
            p.total = kZeroFigures;
            p.watts = 0.0;
            for (const auto& [domain, f] : c.domains) {
                p.domains.emplace(domain, kZeroFigures);
            }
        }
        accumulate(p.total, c.total);
        addWatts(p.watts, c.watts);
        // A domain one container lacks leaves the pod's figure there unknown.
        for (auto& [domain, f] : p.domains) {
            const auto d = c.domains.find(domain);
            accumulate(f, d == c.domains.end() ? Figures{} : d->second);
        }
        for (const auto& [domain, f] : c.domains) {
            if (p.domains.count(domain) == 0) {
                p.domains.emplace(domain, Figures{});
            }
        }
        if (p.origin != c.origin) {
            p.origin.clear(); // containers of several origins
        }
        if (c.sampledWindowSeconds) {
            p.sampledWindowSeconds =
                std::max(p.sampledWindowSeconds.value_or(0), *c.sampledWindowSeconds);
            p.sampledAgeSeconds =
                std::max(p.sampledAgeSeconds.value_or(0), c.sampledAgeSeconds.value_or(0));
        }
    }
    for (auto& [key, p] : pods) {
        out.containers.push_back(std::move(p));
    }
    return out;
}

std::map<std::string, std::size_t> podSizes(const RateReport& report) {
    std::map<std::string, std::size_t> out;
    for (const GroupRates& c : report.containers) {
        ++out[podKey(c)];
    }
    return out;
}

CacheSizes cacheSizesOf(const std::map<uint32_t, uint64_t>& byDomainId) {
    CacheSizes out;
    for (const auto& [id, bytes] : byDomainId) {
        out.emplace(l3DomainName(id), bytes);
    }
    return out;
}

std::vector<DomainLoad> domainLoads(const RateReport& report, const ClosOf& closOf,
                                    const CacheSizes& caches) {
    // "mon_L3_00" sorts before "mon_L3_00/mon_sub_L3_00": each domain's SNC nodes follow it.
    std::set<std::string> domains;
    for (const auto* list : {&report.containers, &report.closes}) {
        for (const GroupRates& g : *list) {
            for (const auto& [domain, f] : g.domains) {
                if (isL3Domain(domain)) {
                    domains.insert(domain);
                }
            }
        }
    }
    const bool sampled = std::any_of(report.containers.begin(), report.containers.end(),
                                     [](const GroupRates& c) { return c.sampledWindowSeconds; });
    const std::vector<GroupRates> outside = outsideContainers(report, closOf);
    const RateReport pods = byPod(report);
    std::vector<DomainLoad> out;
    for (const std::string& domain : domains) {
        DomainLoad load;
        load.domain = domain;
        if (const auto c = caches.find(domain); c != caches.end() && c->second > 0) {
            load.cacheBytes = c->second;
        }
        load.total = report.closes.empty() ? Figures{} : kZeroFigures;
        for (const GroupRates& clos : report.closes) {
            const auto d = clos.domains.find(domain);
            accumulate(load.total, d == clos.domains.end() ? Figures{} : d->second);
        }
        if (sampled) {
            load.total.mbmTotalBytesPerSec.reset();
            load.total.mbmLocalBytesPerSec.reset();
        }
        if (load.total.mbmTotalBytesPerSec && load.total.mbmLocalBytesPerSec) {
            load.remoteBytesPerSec =
                std::max(0.0, *load.total.mbmTotalBytesPerSec - *load.total.mbmLocalBytesPerSec);
        }
        auto share = [&](const GroupRates& g, bool isOutside) {
            Share s{g.id, g.labels, isOutside, {}, {}, {}, {}};
            if (const auto d = g.domains.find(domain); d != g.domains.end()) {
                s.figures = d->second;
            }
            s.bandwidthShare = ratio(s.figures.mbmTotalBytesPerSec, load.total.mbmTotalBytesPerSec);
            s.cacheShare = ratio(asDouble(s.figures.llcBytes), asDouble(load.total.llcBytes));
            s.cacheSizeShare = ratio(asDouble(s.figures.llcBytes), asDouble(load.cacheBytes));
            return s;
        };
        for (const GroupRates& p : pods.containers) {
            if (p.domains.count(domain) != 0) {
                load.consumers.push_back(share(p, false));
            }
        }
        for (const GroupRates& o : outside) {
            load.outside.push_back(share(o, true));
        }
        out.push_back(std::move(load));
    }
    return out;
}

} // namespace rdtmon::client
