// resctrl-emu: the counters (see Model.h): each group's MBM bytes and occupancy per unit,
// task-driven or driven at set rates, and what a counter file reads.
#include "Model.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace rdtmon::emu {

// ------------------------------------------------------------ counters

double Model::idlePerTask(const Membership& m) const {
    if (opts_.domainMbps == 0 || m.threads == 0) {
        return std::numeric_limits<double>::infinity();
    }
    // MB/s is bytes per microsecond; a unit is a domain, or one of its SNC nodes.
    const double unitBytesPerUs = static_cast<double>(opts_.domainMbps) / std::max(1u, opts_.snc);
    return kIdlePart * unitBytesPerUs / static_cast<double>(m.threads);
}

void Model::updateActivity(Group& g, const Membership& m, Clock::time_point now) {
    auto it = m.ownCount.find(g.id);
    const double n = it == m.ownCount.end() ? 0 : static_cast<double>(it->second);
    const double us = std::chrono::duration<double, std::micro>(now - g.lastUpdate).count();
    g.lastUpdate = now;
    g.units.resize(unitCount());
    for (size_t u = 0; u < g.units.size(); ++u) {
        Group::Unit& unit = g.units[u];
        if (unit.driven) {
            unit.bytes[0] += unit.bps[0] * us / 1e6;
            unit.bytes[1] += unit.bps[1] * us / 1e6;
        } else {
            // ~1 GB/s total and 0.6 GB/s local per task, more on higher units; with a
            // domain bandwidth, at most the undriven tasks' part of it (Options::domainMbps).
            const double perTask = std::min(1000 * static_cast<double>(u + 1), idlePerTask(m));
            unit.bytes[0] += n * us * perTask;
            unit.bytes[1] += n * us * perTask * 0.6;
        }
    }
}

uint64_t Model::ownValue(Group& g, const Membership& m, int event, int unit,
                         Clock::time_point now) {
    updateActivity(g, m, now);
    const Group::Unit& u = g.units.at(static_cast<size_t>(unit));
    if (event == LlcOccupancy) {
        if (u.driven) {
            return static_cast<uint64_t>(u.llc);
        }
        auto it = m.ownCount.find(g.id);
        const double n = it == m.ownCount.end() ? 0 : static_cast<double>(it->second);
        double perTask = 65536.0 * (unit + 1);
        if (opts_.domainMbps != 0 && m.threads != 0) {
            // Their part of the unit's cache: 10 %, shared by every undriven task.
            const double unitCache = 1024.0 * opts_.l3SizeKib / std::max(1u, opts_.snc);
            perTask = std::min(perTask, std::floor(kIdlePart * unitCache / m.threads));
        }
        return static_cast<uint64_t>(n * perTask);
    }
    return static_cast<uint64_t>(u.bytes[event == MbmTotal ? 0 : 1]);
}

bool Model::drive(GroupId gid, std::optional<unsigned> domain, double totalBps, double localBps,
                  double llcBytes) {
    if (domain && *domain >= opts_.l3Domains) {
        return false;
    }
    Group& g = groups_.at(gid);
    updateActivity(g, membership(kCounterScanReuse),
                   Clock::now()); // the time so far at the old rates
    const unsigned perDomain = std::max(1u, opts_.snc);
    const unsigned first = domain ? *domain * perDomain : 0;
    const unsigned count = domain ? perDomain : unitCount();
    for (unsigned u = first; u < first + count; ++u) {
        Group::Unit& unit = g.units.at(u);
        unit.driven = true;
        unit.bps[0] = totalBps / count;
        unit.bps[1] = localBps / count;
        // Integer shares that add up to llcBytes exactly.
        const auto k = static_cast<double>(u - first);
        unit.llc = std::floor((k + 1) * llcBytes / count) - std::floor(k * llcBytes / count);
    }
    return true;
}

void Model::driveOff(GroupId gid) {
    Group& g = groups_.at(gid);
    updateActivity(g, membership(kCounterScanReuse), Clock::now());
    for (Group::Unit& u : g.units) {
        u.driven = false;
    }
}

void Model::resetCounter(GroupId gid, int event) {
    Group& g = groups_.at(gid);
    updateActivity(g, membership(kCounterScanReuse), Clock::now());
    for (Group::Unit& u : g.units) {
        u.bytes[event == MbmTotal ? 0 : 1] = 0;
    }
}

std::string Model::counterContent(const Node& n) {
    Group& g = groups_.at(n.group);
    if (!g.override[n.event].empty()) {
        return g.override[n.event] + "\n";
    }
    // Every read of a whole pass goes through here (6 per group at 2 domains): one clock
    // read per file, no allocation but the text. The scan is kept fresh by
    // refreshCounterScan, without the lock; while one is made the last one serves.
    const Membership& m = membership(scan_ ? Clock::duration::max() : kCounterScanReuse);
    const Clock::time_point now = Clock::now();
    const int snc = static_cast<int>(opts_.snc);
    // The units this file sums: one, or with SNC a domain's sub-domains (n.sub < 0).
    const int first = snc == 0 ? n.domain : n.domain * snc + std::max(n.sub, 0);
    const int count = snc != 0 && n.sub < 0 ? snc : 1;
    const auto domain = static_cast<unsigned>(n.domain);
    bool counted = false; // in mbm_event mode, by a group that holds a counter
    auto sumOf = [&](Group& grp) {
        uint64_t v = 0;
        if (!countsOn(grp, n.event, domain)) {
            return v;
        }
        counted = true;
        for (int u = first; u < first + count; ++u) {
            v += ownValue(grp, m, n.event, u, now);
        }
        return v;
    };
    uint64_t sum = sumOf(g);
    if (g.ctrl) {
        for (auto& [name, id] : g.monChildren) {
            sum += sumOf(groups_.at(id));
        }
    }
    if (!counted) {
        return "Unassigned\n";
    }
    return std::to_string(sum) + "\n";
}

} // namespace rdtmon::emu
