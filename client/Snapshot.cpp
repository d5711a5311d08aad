#include "Snapshot.h"

#include <algorithm>
#include <cstdio>

namespace rdtmon::client {

std::string l3DomainName(uint32_t domain) {
    char name[32];
    std::snprintf(name, sizeof name, "mon_L3_%02u", domain);
    return name;
}

uint32_t containersWithoutBandwidth(const Snapshot& snapshot,
                                    const std::vector<std::string>& monFeatures) {
    std::vector<std::string> mbm;
    for (const std::string& f : monFeatures) {
        if (isMbmEvent(f)) {
            mbm.push_back(f);
        }
    }
    if (mbm.empty()) {
        return 0;
    }
    uint32_t n = 0;
    for (const GroupCounters& g : snapshot.groups) {
        const bool any = std::any_of(g.counters.begin(), g.counters.end(), [&](const auto& d) {
            return std::any_of(mbm.begin(), mbm.end(),
                               [&](const std::string& e) { return d.second.count(e) != 0; });
        });
        if (!g.isClos() && !any) {
            ++n;
        }
    }
    return n;
}

} // namespace rdtmon::client
