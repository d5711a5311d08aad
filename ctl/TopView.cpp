#include "TopView.h"

#include "Units.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <tuple>

namespace rdtmon::ctl {

using client::Figures;
using client::GroupRates;
using client::isTopLevelDomain;

namespace {

std::string outsideName(const std::string& clos) {
    return "outside (" + clos + ")";
}

std::optional<double> keyOf(const TopRow& r, SortColumn c) {
    const Figures& f = r.figures;
    switch (c) {
    case SortColumn::Llc:
        return f.llcBytes ? std::optional<double>(static_cast<double>(*f.llcBytes)) : std::nullopt;
    case SortColumn::Total:
        return f.mbmTotalBytesPerSec;
    case SortColumn::Local:
        return f.mbmLocalBytesPerSec;
    case SortColumn::Power:
        return r.watts;
    case SortColumn::Name:
        break;
    }
    return std::nullopt;
}

// Largest first, rows without a figure last; then by name, id and domain so that the
// order is the same on every run.
bool sortsBefore(const TopRow& a, const TopRow& b, SortColumn c) {
    if (c != SortColumn::Name) {
        const auto ka = keyOf(a, c);
        const auto kb = keyOf(b, c);
        if (ka.has_value() != kb.has_value()) {
            return ka.has_value();
        }
        if (ka && *ka != *kb) {
            return *ka > *kb;
        }
    }
    return std::tie(a.name, a.containerId, a.domain) < std::tie(b.name, b.containerId, b.domain);
}

void sortRows(std::vector<TopRow>& rows, SortColumn c) {
    std::stable_sort(rows.begin(), rows.end(),
                     [c](const TopRow& a, const TopRow& b) { return sortsBefore(a, b, c); });
}

void addRows(std::vector<TopRow>& rows, const GroupRates& g, const std::string& name,
             const std::string& id, bool perDomain) {
    const bool sampled = g.sampledWindowSeconds.has_value();
    if (!perDomain) {
        rows.push_back(TopRow{name, id, {}, g.total, g.origin, sampled, g.watts});
        return;
    }
    for (const auto& [domain, f] : g.domains) {
        if (isTopLevelDomain(domain)) {
            rows.push_back(TopRow{name, id, domain, f, g.origin, sampled, {}});
        }
    }
}

// The markers after the name of a group its runtime made, and of one that takes turns at
// the assignable counters.
constexpr const char* kRuntimeMarker = " *";
constexpr const char* kSampledMarker = " ~";

nlohmann::json optionalJson(const auto& v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

nlohmann::json figuresJson(const Figures& f) {
    return nlohmann::json{{"llc_occupancy_bytes", optionalJson(f.llcBytes)},
                          {"mbm_total_bytes_per_second", optionalJson(f.mbmTotalBytesPerSec)},
                          {"mbm_local_bytes_per_second", optionalJson(f.mbmLocalBytesPerSec)}};
}

nlohmann::json domainsJson(const GroupRates& g) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& [domain, f] : g.domains) {
        if (isTopLevelDomain(domain)) {
            nlohmann::json d = figuresJson(f);
            d["domain"] = domain;
            out.push_back(std::move(d));
        }
    }
    return out;
}

std::string padded(const std::string& s, std::size_t width, bool right) {
    if (s.size() >= width) {
        return s;
    }
    const std::string pad(width - s.size(), ' ');
    return right ? pad + s : s + pad;
}

} // namespace

std::string containerName(const std::string& id, const client::Labels& labels) {
    auto get = [&](const char* k) {
        const auto it = labels.find(k);
        return it == labels.end() ? std::string() : it->second;
    };
    const std::string ns = get("namespace"), pod = get("pod"), container = get("container");
    if (ns.empty() && pod.empty() && container.empty()) {
        return id.substr(0, 12);
    }
    return ns + "/" + pod + "/" + container;
}

std::string podName(const std::string& id, const client::Labels& labels) {
    const auto pod = labels.find("pod");
    if (pod == labels.end() || pod->second.empty()) {
        return containerName(id, labels);
    }
    const auto ns = labels.find("namespace");
    return (ns == labels.end() ? std::string() : ns->second) + "/" + pod->second;
}

TopFrame buildTop(const client::RateReport& report, const client::ClosOf& closOf,
                  const TopOptions& opts) {
    if (opts.by == TopBy::Pod) {
        TopOptions containers = opts;
        containers.by = TopBy::Container;
        const client::RateReport pods = client::byPod(report);
        TopFrame frame = buildTop(pods, closOf, containers);
        for (TopRow& r : frame.containers) {
            const auto it =
                std::find_if(pods.containers.begin(), pods.containers.end(),
                             [&](const GroupRates& g) { return g.id == r.containerId; });
            r.name = podName(it->id, it->labels);
        }
        sortRows(frame.containers, opts.sort);
        frame.podCount = pods.containers.size();
        frame.containerCount = report.containers.size();
        // What ran outside the containers is the CLOS minus each of its containers, which
        // closOf knows by container id.
        frame.outside.clear();
        for (const GroupRates& o : client::outsideContainers(report, closOf)) {
            addRows(frame.outside, o, outsideName(o.id), {}, opts.perDomain);
        }
        return frame;
    }
    TopFrame frame;
    frame.intervalSeconds = report.intervalSeconds;
    frame.containerCount = report.containers.size();
    for (const GroupRates& g : report.containers) {
        if (g.origin == client::kOriginRuntime) {
            ++frame.runtimeCount;
        }
        if (g.sampledWindowSeconds) {
            ++frame.sampledCount;
        }
        frame.power = frame.power || g.watts.has_value();
        addRows(frame.containers, g, containerName(g.id, g.labels), g.id, opts.perDomain);
    }
    sortRows(frame.containers, opts.sort);
    for (const GroupRates& o : client::outsideContainers(report, closOf)) {
        addRows(frame.outside, o, outsideName(o.id), {}, opts.perDomain);
    }
    return frame;
}

namespace {

std::string percent(const std::optional<double>& share) {
    if (!share) {
        return "-";
    }
    std::array<char, 32> buf{};
    std::snprintf(buf.data(), buf.size(), "%.1f%%", *share * 100);
    return buf.data();
}

// The pods' shares of each domain, sorted as asked (by the figures on that domain).
std::vector<client::DomainLoad> sortedLoads(const client::RateReport& report,
                                            const client::ClosOf& closOf, SortColumn sort,
                                            const client::CacheSizes& caches) {
    std::vector<client::DomainLoad> loads = client::domainLoads(report, closOf, caches);
    for (client::DomainLoad& l : loads) {
        std::stable_sort(l.consumers.begin(), l.consumers.end(),
                         [sort](const client::Share& a, const client::Share& b) {
                             return sortsBefore(
                                 TopRow{podName(a.id, a.labels), a.id, {}, a.figures, {}, {}, {}},
                                 TopRow{podName(b.id, b.labels), b.id, {}, b.figures, {}, {}, {}},
                                 sort);
                         });
    }
    return loads;
}

nlohmann::json shareJson(const client::Share& s) {
    nlohmann::json j = figuresJson(s.figures);
    if (s.outside) {
        j["clos"] = s.id;
    } else {
        j["name"] = podName(s.id, s.labels);
        j["labels"] = s.labels;
    }
    j["bandwidth_share"] = optionalJson(s.bandwidthShare);
    j["cache_share"] = optionalJson(s.cacheShare);
    j["cache_size_share"] = optionalJson(s.cacheSizeShare);
    return j;
}

} // namespace

std::string domainText(const client::RateReport& report, const client::ClosOf& closOf,
                       const TopOptions& opts, const client::CacheSizes& caches) {
    std::string out;
    std::array<char, 96> head{};
    std::snprintf(head.data(), head.size(), "%zu container%s, interval %.1f s\n",
                  report.containers.size(), report.containers.size() == 1 ? "" : "s",
                  report.intervalSeconds);
    out += head.data();
    for (const client::DomainLoad& l : sortedLoads(report, closOf, opts.sort, caches)) {
        out += "\n" + l.domain + ": total " + megabytesPerSecond(l.total.mbmTotalBytesPerSec) +
               " MB/s (local " + megabytesPerSecond(l.total.mbmLocalBytesPerSec) + ", remote " +
               megabytesPerSecond(l.remoteBytesPerSec) + "), LLC " + humanBytes(l.total.llcBytes);
        if (l.cacheBytes) {
            const std::optional<double> full =
                l.total.llcBytes ? std::optional<double>(static_cast<double>(*l.total.llcBytes) /
                                                         static_cast<double>(*l.cacheBytes))
                                 : std::nullopt;
            out += " of " + humanBytes(l.cacheBytes) + " (" + percent(full) + ")";
        }
        out += " occupied\n";
        // OF CACHE: of the cache's size, where it is known; SHARE: of what is occupied.
        std::vector<std::array<std::string, 7>> cells;
        cells.push_back({"NAME", "TOTAL MB/s", "SHARE", "LOCAL MB/s", "LLC", "SHARE", "OF CACHE"});
        for (const auto* list : {&l.consumers, &l.outside}) {
            for (const client::Share& s : *list) {
                cells.push_back({s.outside ? outsideName(s.id) : podName(s.id, s.labels),
                                 megabytesPerSecond(s.figures.mbmTotalBytesPerSec),
                                 percent(s.bandwidthShare),
                                 megabytesPerSecond(s.figures.mbmLocalBytesPerSec),
                                 humanBytes(s.figures.llcBytes), percent(s.cacheShare),
                                 percent(s.cacheSizeShare)});
            }
        }
        std::array<std::size_t, 7> width{};
        for (const auto& row : cells) {
            for (std::size_t i = 0; i < row.size(); ++i) {
                width[i] = std::max(width[i], row[i].size());
            }
        }
        for (const auto& row : cells) {
            std::string line = "  " + padded(row[0], width[0], false);
            for (std::size_t i = 1; i < row.size(); ++i) {
                line += "  " + padded(row[i], width[i], true);
            }
            out += line + "\n";
        }
    }
    return out;
}

nlohmann::json domainJson(const client::RateReport& report, const client::ClosOf& closOf,
                          const TopOptions& opts, uint64_t monotonicUsec,
                          const client::CacheSizes& caches) {
    nlohmann::json domains = nlohmann::json::array();
    for (const client::DomainLoad& l : sortedLoads(report, closOf, opts.sort, caches)) {
        nlohmann::json d = figuresJson(l.total);
        d["domain"] = l.domain;
        d["mbm_remote_bytes_per_second"] = optionalJson(l.remoteBytesPerSec);
        d["llc_size_bytes"] = l.cacheBytes ? nlohmann::json(*l.cacheBytes) : nlohmann::json();
        nlohmann::json consumers = nlohmann::json::array();
        for (const client::Share& s : l.consumers) {
            consumers.push_back(shareJson(s));
        }
        nlohmann::json outside = nlohmann::json::array();
        for (const client::Share& s : l.outside) {
            outside.push_back(shareJson(s));
        }
        d["pods"] = std::move(consumers);
        d["outside"] = std::move(outside);
        domains.push_back(std::move(d));
    }
    return nlohmann::json{{"monotonic_usec", monotonicUsec},
                          {"interval_seconds", report.intervalSeconds},
                          {"domains", std::move(domains)}};
}

std::string topText(const TopFrame& frame, bool perDomain) {
    // Power only where the node counts it, and on rows summed over domains.
    const bool power = frame.power && !perDomain;
    std::vector<std::array<std::string, 6>> cells;
    cells.push_back({"NAME", "DOMAIN", "LLC", "TOTAL MB/s", "LOCAL MB/s", "POWER W"});
    for (const auto* rows : {&frame.containers, &frame.outside}) {
        for (const TopRow& r : *rows) {
            std::string name = r.name;
            if (r.origin == client::kOriginRuntime) {
                name += kRuntimeMarker;
            }
            if (r.sampled) {
                name += kSampledMarker;
            }
            cells.push_back({name, r.domain, humanBytes(r.figures.llcBytes),
                             megabytesPerSecond(r.figures.mbmTotalBytesPerSec),
                             megabytesPerSecond(r.figures.mbmLocalBytesPerSec), watts(r.watts)});
        }
    }
    std::array<std::size_t, 6> width{};
    for (const auto& row : cells) {
        for (std::size_t i = 0; i < row.size(); ++i) {
            width[i] = std::max(width[i], row[i].size());
        }
    }
    std::string made;
    if (frame.runtimeCount > 0) {
        made = ", " + std::to_string(frame.runtimeCount) + " made by " +
               (frame.runtimeCount == 1 ? "its runtime" : "their runtimes") + " (*)";
    }
    if (frame.sampledCount > 0) {
        made += ", ";
        made += std::to_string(frame.sampledCount);
        made += " measured in turns (~)";
    }
    std::string pods;
    if (frame.podCount) {
        pods = std::to_string(*frame.podCount);
        pods += *frame.podCount == 1 ? " pod of " : " pods of ";
    }
    std::array<char, 200> head{};
    std::snprintf(head.data(), head.size(), "%s%zu container%s%s, interval %.1f s\n", pods.c_str(),
                  frame.containerCount, frame.containerCount == 1 ? "" : "s", made.c_str(),
                  frame.intervalSeconds);
    std::string out;
    for (const auto& row : cells) {
        std::string line = padded(row[0], width[0], false);
        if (perDomain) {
            line += "  " + padded(row[1], width[1], false);
        }
        for (std::size_t i = 2; i < row.size() - (power ? 0 : 1); ++i) {
            line += "  " + padded(row[i], width[i], true);
        }
        out += line + "\n";
    }
    return std::string(head.data()) + out;
}

nlohmann::json topJson(const client::RateReport& report, const client::ClosOf& closOf,
                       const TopOptions& opts, uint64_t monotonicUsec,
                       const client::CacheSizes& caches) {
    // The same order as the text: sort the summed rows, then emit groups in that order.
    if (opts.by == TopBy::Domain) {
        return domainJson(report, closOf, opts, monotonicUsec, caches);
    }
    TopOptions summed = opts;
    summed.perDomain = false;
    const TopFrame frame = buildTop(report, closOf, summed);
    const bool pods = opts.by == TopBy::Pod;
    const client::RateReport podReport = pods ? client::byPod(report) : client::RateReport{};
    const std::map<std::string, std::size_t> sizes =
        pods ? client::podSizes(report) : std::map<std::string, std::size_t>{};
    std::map<std::string, const GroupRates*> byId;
    for (const GroupRates& g : (pods ? podReport : report).containers) {
        byId.emplace(g.id, &g);
    }
    nlohmann::json containers = nlohmann::json::array();
    for (const TopRow& r : frame.containers) {
        const GroupRates& g = *byId.at(r.containerId);
        nlohmann::json c = figuresJson(g.total);
        if (pods) {
            c["pod"] = g.labels.count("pod") != 0 ? nlohmann::json(g.labels.at("pod"))
                                                  : nlohmann::json(nullptr);
            c["namespace"] = g.labels.count("namespace") != 0
                                 ? nlohmann::json(g.labels.at("namespace"))
                                 : nlohmann::json(nullptr);
            c["containers"] = sizes.at(g.id);
            if (g.labels.count("pod") == 0) {
                c["container_id"] = g.id; // a container outside any pod
            }
        } else {
            c["container_id"] = g.id;
        }
        c["name"] = r.name;
        c["labels"] = g.labels;
        c["origin"] = g.origin;
        c["domains"] = domainsJson(g);
        c["power_watts"] = optionalJson(g.watts);
        c["sampled"] = g.sampledWindowSeconds
                           ? nlohmann::json{{"window_seconds", *g.sampledWindowSeconds},
                                            {"age_seconds", g.sampledAgeSeconds.value_or(0)}}
                           : nlohmann::json(nullptr);
        containers.push_back(std::move(c));
    }
    nlohmann::json outside = nlohmann::json::array();
    for (const GroupRates& o : client::outsideContainers(report, closOf)) {
        nlohmann::json j = figuresJson(o.total);
        j["clos"] = o.id;
        j["domains"] = domainsJson(o);
        outside.push_back(std::move(j));
    }
    return nlohmann::json{{"monotonic_usec", monotonicUsec},
                          {"interval_seconds", report.intervalSeconds},
                          {pods ? "pods" : "containers", std::move(containers)},
                          {"outside", std::move(outside)}};
}

} // namespace rdtmon::ctl
