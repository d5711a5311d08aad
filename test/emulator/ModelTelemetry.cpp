// resctrl-emu: Intel's telemetry events (PERF_PKG, Linux 7.0; README, "Telemetry events"):
// each group's mon_data/mon_PERF_PKG_XX files and what they read.
#include "Model.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>

namespace rdtmon::emu {

namespace {

// A decimal event as the kernel prints it (fs/resctrl's print_event_value): the integer
// part, a point, the fraction rounded to the places its fixed point allows (6 for the 18
// fraction bits of core_energy and activity), trailing zeros trimmed down to one digit.
std::string fixedPoint(double v) {
    const auto micros = static_cast<uint64_t>(std::llround(std::max(v, 0.0) * 1e6));
    char frac[8];
    std::snprintf(frac, sizeof frac, "%06" PRIu64, micros % 1'000'000);
    std::string f = frac;
    while (f.size() > 1 && f.back() == '0') {
        f.pop_back();
    }
    return std::to_string(micros / 1'000'000) + "." + f;
}

// The integer events, per joule: a made-up but fixed mix, so that a test can predict them.
constexpr double kPerJoule[kPkgEvents] = {0, 0, 1e5, 2e6, 1e7, 5e4, 3e6, 8e6, 2e7};

} // namespace

std::string Model::pkgName(unsigned p) const {
    char b[32];
    std::snprintf(b, sizeof b, "mon_PERF_PKG_%02u", p);
    return b;
}

void Model::updateEnergy(Group& g, Clock::time_point now) {
    const double s = std::chrono::duration<double>(now - g.energyUpdate).count();
    g.joules += g.watts * std::max(s, 0.0);
    g.energyUpdate = now;
}

void Model::setWatts(GroupId gid, double watts) {
    Group& g = groups_.at(gid);
    updateEnergy(g, Clock::now());
    g.watts = watts;
}

std::string Model::pkgContent(const Node& n) {
    const Clock::time_point now = Clock::now();
    Group& g = groups_.at(n.group);
    updateEnergy(g, now);
    double joules = g.joules;
    // A CTRL_MON group's reading holds its MON groups', as for the L3 events.
    for (const auto& [name, id] : g.monChildren) {
        Group& child = groups_.at(id);
        updateEnergy(child, now);
        joules += child.joules;
    }
    const double share = joules / std::max(1u, opts_.perfPkgs);
    if (n.event == 0) {
        return fixedPoint(share) + "\n";
    }
    if (n.event == 1) {
        return fixedPoint(share / 4) + "\n"; // activity: a quarter of the energy's figure
    }
    return std::to_string(static_cast<uint64_t>(std::llround(share * kPerJoule[n.event]))) + "\n";
}

} // namespace rdtmon::emu
