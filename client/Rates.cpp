#include "Rates.h"

#include <algorithm>

namespace rdtmon::client {

namespace {

std::optional<uint64_t> valueOf(const Counters& c, const std::string& domain, const char* event) {
    const auto d = c.find(domain);
    if (d == c.end()) {
        return std::nullopt;
    }
    const auto e = d->second.find(event);
    if (e == d->second.end()) {
        return std::nullopt;
    }
    return e->second;
}

std::optional<double> rateOf(const GroupCounters* prev, const GroupCounters& cur,
                             const std::string& domain, const char* event, double seconds) {
    if (prev == nullptr || seconds <= 0) {
        return std::nullopt;
    }
    const auto before = valueOf(prev->counters, domain, event);
    const auto after = valueOf(cur.counters, domain, event);
    if (!before || !after || *after < *before) {
        return std::nullopt;
    }
    // The kernel's count restarted between the reads, though it did not go down.
    const auto genBefore = valueOf(prev->generations, domain, event);
    const auto genAfter = valueOf(cur.generations, domain, event);
    if (genBefore && genAfter && *genBefore != *genAfter) {
        return std::nullopt;
    }
    return static_cast<double>(*after - *before) / seconds;
}

// Joules per second of core_energy over every telemetry package of the group.
std::optional<double> wattsOf(const GroupCounters* prev, const GroupCounters& cur, double seconds) {
    if (prev == nullptr || seconds <= 0) {
        return std::nullopt;
    }
    std::optional<double> sum;
    for (const auto& [domain, events] : cur.decimals) {
        const auto after = events.find(kCoreEnergy);
        if (after == events.end()) {
            continue;
        }
        const auto d = prev->decimals.find(domain);
        if (d == prev->decimals.end() || d->second.count(kCoreEnergy) == 0) {
            return std::nullopt;
        }
        const double before = d->second.at(kCoreEnergy);
        const auto genBefore = valueOf(prev->generations, domain, kCoreEnergy);
        const auto genAfter = valueOf(cur.generations, domain, kCoreEnergy);
        if (after->second < before || (genBefore && genAfter && *genBefore != *genAfter)) {
            return std::nullopt;
        }
        sum = sum.value_or(0) + (after->second - before) / seconds;
    }
    // A package that the earlier read had and this one lacks leaves the sum partial.
    for (const auto& [domain, events] : prev->decimals) {
        if (events.count(kCoreEnergy) != 0 &&
            (cur.decimals.count(domain) == 0 || cur.decimals.at(domain).count(kCoreEnergy) == 0)) {
            return std::nullopt;
        }
    }
    return sum;
}

template <class T> void addInto(std::optional<T>& sum, const std::optional<T>& part, bool& lost) {
    if (!part) {
        lost = true;
        sum.reset();
    } else if (!lost) {
        sum = sum.value_or(T{}) + *part;
    }
}

Figures sumOfTopLevel(const std::map<std::string, Figures>& domains) {
    Figures total;
    bool lostLlc = false, lostTotal = false, lostLocal = false;
    for (const auto& [domain, f] : domains) {
        if (!isTopLevelDomain(domain)) {
            continue;
        }
        addInto(total.llcBytes, f.llcBytes, lostLlc);
        addInto(total.mbmTotalBytesPerSec, f.mbmTotalBytesPerSec, lostTotal);
        addInto(total.mbmLocalBytesPerSec, f.mbmLocalBytesPerSec, lostLocal);
    }
    return total;
}

// a - b, clamped at zero (a CLOS and its groups are not read at one instant); absent when
// either is.
template <class T>
std::optional<T> minusClamped(const std::optional<T>& a, const std::optional<T>& b) {
    if (!a || !b) {
        return std::nullopt;
    }
    return *a > *b ? *a - *b : T{};
}

Figures minus(const Figures& a, const Figures& b) {
    return Figures{minusClamped(a.llcBytes, b.llcBytes),
                   minusClamped(a.mbmTotalBytesPerSec, b.mbmTotalBytesPerSec),
                   minusClamped(a.mbmLocalBytesPerSec, b.mbmLocalBytesPerSec)};
}

} // namespace

void accumulate(Figures& a, const Figures& b) {
    auto add = [](auto& x, const auto& y) {
        if (x && y) {
            *x += *y;
        } else {
            x.reset();
        }
    };
    add(a.llcBytes, b.llcBytes);
    add(a.mbmTotalBytesPerSec, b.mbmTotalBytesPerSec);
    add(a.mbmLocalBytesPerSec, b.mbmLocalBytesPerSec);
}

RateReport computeRates(const Snapshot& prev, const CreatedTimes& prevCreated, const Snapshot& cur,
                        const CreatedTimes& curCreated) {
    RateReport report;
    if (cur.monotonicUsec > prev.monotonicUsec) {
        report.intervalSeconds = static_cast<double>(cur.monotonicUsec - prev.monotonicUsec) / 1e6;
    }
    std::map<std::string, const GroupCounters*> before;
    for (const GroupCounters& g : prev.groups) {
        before.emplace(g.id, &g);
    }
    for (const GroupCounters& g : cur.groups) {
        const GroupCounters* prior = nullptr;
        if (const auto it = before.find(g.id); it != before.end()) {
            prior = it->second;
        }
        if (!g.isClos()) {
            // The same group only when both reads saw the same creation.
            const auto a = prevCreated.find(g.id);
            const auto b = curCreated.find(g.id);
            if (a == prevCreated.end() || b == curCreated.end() || a->second != b->second) {
                prior = nullptr;
            }
        }
        GroupRates r{g.id, g.labels, g.isClos() ? std::string() : g.origin, {}, {}, {}, {}, {}};
        for (const auto& [domain, events] : g.counters) {
            if (!isL3Domain(domain)) {
                continue; // a telemetry package: none of these events
            }
            Figures f;
            f.llcBytes = valueOf(g.counters, domain, kLlcOccupancy);
            f.mbmTotalBytesPerSec = rateOf(prior, g, domain, kMbmTotal, report.intervalSeconds);
            f.mbmLocalBytesPerSec = rateOf(prior, g, domain, kMbmLocal, report.intervalSeconds);
            r.domains.emplace(domain, f);
        }
        r.total = sumOfTopLevel(r.domains);
        r.watts = wattsOf(prior, g, report.intervalSeconds);
        for (const auto& [domain, events] : g.windowUsec) {
            for (const auto& [event, window] : events) {
                const double w = static_cast<double>(window) / 1e6;
                r.sampledWindowSeconds = std::max(r.sampledWindowSeconds.value_or(0), w);
                const uint64_t at = g.measuredUsec.at(domain).at(event);
                const double age =
                    cur.monotonicUsec > at ? static_cast<double>(cur.monotonicUsec - at) / 1e6 : 0;
                r.sampledAgeSeconds = std::max(r.sampledAgeSeconds.value_or(0), age);
            }
        }
        (g.isClos() ? report.closes : report.containers).push_back(std::move(r));
    }
    auto byId = [](const GroupRates& a, const GroupRates& b) { return a.id < b.id; };
    std::sort(report.containers.begin(), report.containers.end(), byId);
    std::sort(report.closes.begin(), report.closes.end(), byId);
    return report;
}

std::optional<std::string> closOfGroup(const std::string& groupPath, const std::string& id,
                                       const std::string& resctrlPath) {
    const std::string tail = "mon_groups/" + id;
    if (groupPath.size() < tail.size() ||
        groupPath.compare(groupPath.size() - tail.size(), tail.size(), tail) != 0) {
        return std::nullopt;
    }
    std::string head = groupPath.substr(0, groupPath.size() - tail.size());
    if (!head.empty() && head.back() == '/') {
        head.pop_back();
    }
    std::string root = resctrlPath;
    while (root.size() > 1 && root.back() == '/') {
        root.pop_back();
    }
    if (root == "/") {
        root.clear();
    }
    // An absolute path lies under the mount; a relative one (the service had no resctrl
    // when asked) is already relative to it.
    if (!head.empty() && head.front() == '/') {
        if (head.compare(0, root.size(), root) != 0) {
            return std::nullopt;
        }
        head.erase(0, root.size());
    }
    if (!head.empty() && head.front() == '/') {
        head.erase(0, 1);
    }
    if (head.find('/') != std::string::npos) {
        return std::nullopt;
    }
    return "/" + head;
}

std::vector<GroupRates> outsideContainers(const RateReport& report, const ClosOf& closOf) {
    std::vector<GroupRates> out;
    for (const GroupRates& clos : report.closes) {
        std::vector<const GroupRates*> members;
        for (const GroupRates& c : report.containers) {
            const auto it = closOf.find(c.id);
            if (it != closOf.end() && it->second == clos.id) {
                members.push_back(&c);
            }
        }
        Figures insideTotal = kZeroFigures;
        for (const GroupRates* c : members) {
            accumulate(insideTotal, c->total);
        }
        GroupRates r{clos.id, {}, {}, {}, minus(clos.total, insideTotal), {}, {}, {}};
        for (const auto& [domain, f] : clos.domains) {
            Figures inside = kZeroFigures;
            for (const GroupRates* c : members) {
                // A member without this domain has no figure for it: the share is unknown.
                const auto d = c->domains.find(domain);
                accumulate(inside, d == c->domains.end() ? Figures{} : d->second);
            }
            r.domains.emplace(domain, minus(f, inside));
        }
        // The CLOS's MBM reading counts only the groups that hold counters at that moment.
        if (std::any_of(members.begin(), members.end(),
                        [](const GroupRates* c) { return c->sampledWindowSeconds.has_value(); })) {
            r.total.mbmTotalBytesPerSec.reset();
            r.total.mbmLocalBytesPerSec.reset();
            for (auto& [domain, f] : r.domains) {
                f.mbmTotalBytesPerSec.reset();
                f.mbmLocalBytesPerSec.reset();
            }
        }
        out.push_back(std::move(r));
    }
    return out;
}

} // namespace rdtmon::client
