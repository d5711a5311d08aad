#include "LoadJudgement.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <optional>
#include <set>

namespace rdtmon::ctl::selftest {

namespace {

const std::string kTotal = "mbm_total_bytes";
const std::string kLocal = "mbm_local_bytes";
const std::string kOccupancy = "llc_occupancy";

// A pass could be served from the cache for more than half: the bandwidth says nothing.
constexpr double kMinMissedShare = 0.5;

std::string topLevel(const std::string& key) {
    return key.substr(0, key.find('/'));
}

std::optional<uint64_t> valueOf(const DomainCounts& counts, const std::string& domain,
                                const std::string& event) {
    const auto d = counts.find(domain);
    if (d == counts.end()) {
        return std::nullopt;
    }
    const auto e = d->second.find(event);
    if (e == d->second.end()) {
        return std::nullopt;
    }
    return e->second;
}

std::string fixed(double v, int decimals) {
    std::array<char, 48> buf{};
    std::snprintf(buf.data(), buf.size(), "%.*f", decimals, v);
    return buf.data();
}

std::string ratioText(double r) {
    std::string s = fixed(r, 2);
    s += "x";
    return s;
}

std::string percentText(double fraction) {
    std::string s = fixed(fraction * 100, 1);
    s += " %";
    return s;
}

double share(uint64_t part, uint64_t whole) {
    return whole == 0 ? 0 : static_cast<double>(part) / static_cast<double>(whole);
}

std::set<std::string> topLevelKeys(const DomainCounts& a, const DomainCounts& b) {
    std::set<std::string> keys;
    for (const DomainCounts* counts : {&a, &b}) {
        for (const auto& [key, events] : *counts) {
            if (key.find('/') == std::string::npos) {
                keys.insert(key);
            }
        }
    }
    return keys;
}

std::string keyList(const std::set<std::string>& keys) {
    std::string out;
    for (const std::string& k : keys) {
        if (!out.empty()) {
            out += ", ";
        }
        out += k;
    }
    return out.empty() ? "none" : out;
}

Verdict start(const char* check, const LoadObservation& obs) {
    Verdict v;
    v.check = check;
    v.expectedBytes = obs.bufferBytes * obs.passesDone;
    return v;
}

Verdict& conclude(Verdict& v, Verdict::Result result, std::string summary) {
    v.result = result;
    v.summary = std::move(summary);
    return v;
}

// Not applicable when the load did no pass; a verdict when the domain is not in the
// readings (none at all: not applicable; others but not it: rdtmon keys domains wrongly).
std::optional<Verdict> cannotJudge(Verdict v, const LoadObservation& obs, const std::string& dom,
                                   const DomainCounts& first, const DomainCounts& second) {
    if (obs.passesDone == 0) {
        return conclude(v, Verdict::Result::NotApplicable,
                        "the load completed no pass (stopped or out of time before one)");
    }
    if (first.empty() && second.empty()) {
        return conclude(v, Verdict::Result::NotApplicable, "no counters were read for the group");
    }
    if (!first.contains(dom) && !second.contains(dom)) {
        std::string s = "rdtmon reports no domain ";
        s += dom;
        s += " for the group, whose load ran on that L3 cache's CPUs (it reports: ";
        s += keyList(topLevelKeys(first, second));
        s += ")";
        return conclude(v, Verdict::Result::Fail, std::move(s));
    }
    return std::nullopt;
}

std::string unreadable(const std::string& event, const std::string& dom, const char* when) {
    std::string s = event;
    s += " of ";
    s += dom;
    s += " was not readable ";
    s += when;
    if (event == kOccupancy) {
        s += " (no cache monitoring on this node)";
    } else {
        s += " (no MBM on this node, or no counter assigned to the group: Unassigned in an "
             "assignable-counter mode)";
    }
    return s;
}

} // namespace

double lowBandwidthTolerance(uint64_t bufferBytes, uint64_t l3Bytes) {
    if (bufferBytes == 0) {
        return 0;
    }
    // An unknown cache: the most planLoad() allows, a quarter of the buffer.
    const uint64_t l3 = l3Bytes != 0 ? l3Bytes : bufferBytes / kCacheMultiple;
    const double missed = 1.0 - share(l3 + kPrivateCacheBytes, bufferBytes);
    return std::max(0.0, missed) * (1.0 - kCounterMargin);
}

Verdict judgeBandwidth(const LoadObservation& obs) {
    Verdict v = start("bandwidth", obs);
    const std::string dom = topLevel(obs.domain);
    v.lowTolerance = lowBandwidthTolerance(obs.bufferBytes, obs.l3Bytes);
    v.highTolerance = kHighTolerance;
    if (auto early = cannotJudge(v, obs, dom, obs.before, obs.after)) {
        return *early;
    }
    if (v.lowTolerance < kMinMissedShare * (1.0 - kCounterMargin)) {
        std::string s = "the ";
        s += bytesText(obs.bufferBytes);
        s += " buffer is too small for the ";
        s += bytesText(obs.l3Bytes);
        s += " L3 cache: the cache could serve most of a pass";
        return conclude(v, Verdict::Result::NotApplicable, std::move(s));
    }
    const auto before = valueOf(obs.before, dom, kTotal);
    const auto after = valueOf(obs.after, dom, kTotal);
    if (!before || !after) {
        return conclude(v, Verdict::Result::NotApplicable,
                        unreadable(kTotal, dom, !before ? "before the load" : "after the load"));
    }

    std::string line = "expected: ";
    line += std::to_string(obs.passesDone);
    line += " passes x ";
    line += bytesText(obs.bufferBytes);
    line += " = ";
    line += bytesText(v.expectedBytes);
    line += " (";
    line += std::to_string(v.expectedBytes);
    line += " bytes), every line of the buffer fetched from memory once a pass";
    v.evidence.push_back(std::move(line));
    if (*after < *before) {
        line = kTotal;
        line += " of ";
        line += dom;
        line += " went backwards, from ";
        line += std::to_string(*before);
        line += " to ";
        line += std::to_string(*after);
        line += " (a counter reset or reassigned during the load?)";
        return conclude(v, Verdict::Result::Fail, std::move(line));
    }
    v.measuredBytes = *after - *before;
    v.ratio = share(v.measuredBytes, v.expectedBytes);

    line = "measured: ";
    line += kTotal;
    line += " of ";
    line += dom;
    line += " rose by ";
    line += bytesText(v.measuredBytes);
    line += " (";
    line += std::to_string(v.measuredBytes);
    line += " bytes), ";
    line += ratioText(v.ratio);
    line += " of expected";
    v.evidence.push_back(std::move(line));
    line = "accepted: ";
    line += ratioText(v.lowTolerance);
    line += " to ";
    line += ratioText(v.highTolerance);
    line += " (a pass may be served from the caches for up to ";
    line += bytesText((obs.l3Bytes != 0 ? obs.l3Bytes : obs.bufferBytes / kCacheMultiple) +
                      kPrivateCacheBytes);
    line += ", less ";
    line += percentText(kCounterMargin);
    line += " for the counters)";
    v.evidence.push_back(std::move(line));
    // The sub-domains are parts of the domain's figure: shown, never added to it.
    for (const auto& [key, events] : obs.after) {
        if (key.rfind(dom + "/", 0) != 0) {
            continue;
        }
        const auto b = valueOf(obs.before, key, kTotal);
        const auto a = valueOf(obs.after, key, kTotal);
        if (a && b && *a >= *b) {
            line = key;
            line += ": rose by ";
            line += bytesText(*a - *b);
            line += " (part of ";
            line += dom;
            line += ")";
            v.evidence.push_back(std::move(line));
        }
    }
    const auto localBefore = valueOf(obs.before, dom, kLocal);
    const auto localAfter = valueOf(obs.after, dom, kLocal);
    if (localBefore && localAfter && *localAfter >= *localBefore) {
        line = kLocal;
        line += " rose by ";
        line += bytesText(*localAfter - *localBefore);
        line += " (";
        line += percentText(share(*localAfter - *localBefore, v.measuredBytes));
        line += " of total; not judged: it depends on which node holds the pages)";
        v.evidence.push_back(std::move(line));
    }

    std::string s = kTotal;
    s += " of ";
    s += dom;
    s += " rose by ";
    s += bytesText(v.measuredBytes);
    s += ", ";
    s += ratioText(v.ratio);
    s += " the ";
    s += bytesText(v.expectedBytes);
    s += " the load read";
    if (v.ratio < v.lowTolerance) {
        s += ": too little (accepted from ";
        s += ratioText(v.lowTolerance);
        s += ")";
        v.evidence.push_back("too little: traffic not counted, or counted in another group or "
                             "domain; on Broadwell-EP and Skylake-SP/Cascade Lake a kernel "
                             "before 5.10 reads low for high RMIDs (errata BDF102, SKX99)");
        return conclude(v, Verdict::Result::Fail, std::move(s));
    }
    if (v.ratio > v.highTolerance) {
        s += ": too much (accepted up to ";
        s += ratioText(v.highTolerance);
        s += ")";
        v.evidence.push_back("too much: something counted twice, or traffic that is not the "
                             "load's (a busy neighbour on the same L3 can add write-backs)");
        return conclude(v, Verdict::Result::Fail, std::move(s));
    }
    return conclude(v, Verdict::Result::Pass, std::move(s));
}

Verdict judgeOtherDomains(const LoadObservation& obs) {
    Verdict v = start("other domains", obs);
    const std::string dom = topLevel(obs.domain);
    v.highTolerance = kOtherDomainFraction;
    if (auto early = cannotJudge(v, obs, dom, obs.before, obs.after)) {
        return *early;
    }
    const uint64_t limit =
        static_cast<uint64_t>(static_cast<double>(v.expectedBytes) * kOtherDomainFraction);
    std::size_t judged = 0;
    std::vector<std::string> over;
    for (const std::string& key : topLevelKeys(obs.before, obs.after)) {
        if (key == dom) {
            continue;
        }
        const auto before = valueOf(obs.before, key, kTotal);
        const auto after = valueOf(obs.after, key, kTotal);
        std::string line = key;
        if (!before || !after) {
            line += ": ";
            line += kTotal;
            line += " not readable, not judged";
            v.evidence.push_back(std::move(line));
            continue;
        }
        ++judged;
        if (*after < *before) {
            line += ": went backwards, from ";
            line += std::to_string(*before);
            line += " to ";
            line += std::to_string(*after);
            v.evidence.push_back(line);
            over.push_back(std::move(line));
            continue;
        }
        const uint64_t delta = *after - *before;
        v.measuredBytes = std::max(v.measuredBytes, delta);
        line += ": rose by ";
        line += bytesText(delta);
        line += " (";
        line += std::to_string(delta);
        line += " bytes), ";
        line += percentText(share(delta, v.expectedBytes));
        line += " of the load's ";
        line += bytesText(v.expectedBytes);
        v.evidence.push_back(line);
        if (delta > limit) {
            over.push_back(std::move(line));
        }
    }
    v.ratio = share(v.measuredBytes, v.expectedBytes);
    if (judged == 0) {
        std::string s = "no other L3 domain to compare with";
        if (topLevelKeys(obs.before, obs.after).size() > 1) {
            s = kTotal;
            s += " is not readable on any other L3 domain";
        }
        return conclude(v, Verdict::Result::NotApplicable, std::move(s));
    }
    std::string accepted = "accepted: below ";
    accepted += percentText(kOtherDomainFraction);
    accepted += " of the load's bytes each (the group ran on no CPU there)";
    v.evidence.push_back(std::move(accepted));
    if (!over.empty()) {
        std::string s = "the load, pinned to ";
        s += dom;
        s += ", was counted elsewhere: ";
        for (std::size_t i = 0; i < over.size(); ++i) {
            s += i == 0 ? "" : "; ";
            s += over[i];
        }
        return conclude(v, Verdict::Result::Fail, std::move(s));
    }
    std::string s = "the other ";
    s += std::to_string(judged);
    s += judged == 1 ? " L3 domain" : " L3 domains";
    s += " rose by at most ";
    s += bytesText(v.measuredBytes);
    s += ", ";
    s += percentText(v.ratio);
    s += " of the load's bytes (accepted below ";
    s += percentText(kOtherDomainFraction);
    s += ")";
    return conclude(v, Verdict::Result::Pass, std::move(s));
}

Verdict judgeOccupancy(const LoadObservation& obs) {
    Verdict v = start("occupancy", obs);
    const std::string dom = topLevel(obs.domain);
    v.expectedBytes = std::max(obs.l3Bytes / kOccupancyFloorDivisor, kOccupancyFloorMin);
    v.lowTolerance = share(v.expectedBytes, obs.l3Bytes);
    v.highTolerance = kOccupancyCeiling;
    if (auto early = cannotJudge(v, obs, dom, obs.before, obs.during)) {
        return *early;
    }
    const auto before = valueOf(obs.before, dom, kOccupancy);
    const auto during = valueOf(obs.during, dom, kOccupancy);
    if (!before || !during) {
        return conclude(
            v, Verdict::Result::NotApplicable,
            unreadable(kOccupancy, dom, !before ? "before the load" : "during the load"));
    }
    v.measuredBytes = *during > *before ? *during - *before : 0;
    v.ratio = share(v.measuredBytes, obs.l3Bytes);

    std::string line = "measured: ";
    line += kOccupancy;
    line += " of ";
    line += dom;
    line += " was ";
    line += bytesText(*before);
    line += " before the load and ";
    line += bytesText(*during);
    line += " during it";
    if (obs.l3Bytes != 0) {
        line += ", of a ";
        line += bytesText(obs.l3Bytes);
        line += " cache";
    }
    v.evidence.push_back(std::move(line));
    line = "accepted: a rise of at least ";
    line += bytesText(v.expectedBytes);
    if (obs.l3Bytes != 0) {
        line += " (1/";
        line += std::to_string(kOccupancyFloorDivisor);
        line += " of the cache), to at most ";
        line += percentText(kOccupancyCeiling);
        line += " of the cache";
    }
    v.evidence.push_back(std::move(line));

    std::string s = kOccupancy;
    s += " of ";
    s += dom;
    if (*during <= *before) {
        s += " did not rise while the load ran (";
        s += bytesText(*before);
        s += " before, ";
        s += bytesText(*during);
        s += " during)";
        return conclude(v, Verdict::Result::Fail, std::move(s));
    }
    s += " rose by ";
    s += bytesText(v.measuredBytes);
    s += " to ";
    s += bytesText(*during);
    if (v.measuredBytes < v.expectedBytes) {
        s += ": below the floor of ";
        s += bytesText(v.expectedBytes);
        return conclude(v, Verdict::Result::Fail, std::move(s));
    }
    if (obs.l3Bytes != 0 &&
        static_cast<double>(*during) > static_cast<double>(obs.l3Bytes) * kOccupancyCeiling) {
        s += ": more than the ";
        s += bytesText(obs.l3Bytes);
        s += " cache holds (a wrong scale, or counted twice)";
        return conclude(v, Verdict::Result::Fail, std::move(s));
    }
    if (obs.l3Bytes != 0) {
        s += ", ";
        s += percentText(share(*during, obs.l3Bytes));
        s += " of the cache";
    }
    return conclude(v, Verdict::Result::Pass, std::move(s));
}

std::vector<Verdict> judgeLoad(const LoadObservation& obs) {
    return {judgeBandwidth(obs), judgeOtherDomains(obs), judgeOccupancy(obs)};
}

std::vector<Verdict> loadNotApplicable(const std::string& reason) {
    std::vector<Verdict> out;
    for (const char* check : {"bandwidth", "other domains", "occupancy"}) {
        Verdict v;
        v.check = check;
        v.result = Verdict::Result::NotApplicable;
        v.summary = reason;
        out.push_back(std::move(v));
    }
    return out;
}

const char* resultName(Verdict::Result result) {
    switch (result) {
    case Verdict::Result::Pass:
        return "pass";
    case Verdict::Result::Fail:
        return "FAIL";
    case Verdict::Result::NotApplicable:
        return "n/a";
    }
    return "n/a";
}

} // namespace rdtmon::ctl::selftest
