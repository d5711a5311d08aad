#include "CountersReplies.h"

#include "Errors.h"
#include "HandlerErrors.h"

#include <algorithm>
#include <memory>
#include <tuple>
#include <utility>

namespace rdtmon {

void replyCounters(CountersReader& reader, GroupManager& mgr, const char* method,
                   const std::string& id, sdbus::Result<CountersMap>&& result) {
    try {
        translated(method, id, [&] { (void)mgr.ownedGroup(id); });
    } catch (const sdbus::Error& e) {
        result.returnError(e);
        return;
    }
    auto shared = std::make_shared<sdbus::Result<CountersMap>>(std::move(result));
    reader.requestGroup(id, [shared, method, id](const CountersReader::Outcome& o) {
        try {
            CountersMap counters = translated(method, id, [&] {
                if (o.error) {
                    throw *o.error;
                }
                if (auto it = o.groupErrors.find(id); it != o.groupErrors.end()) {
                    throw it->second;
                }
                for (const GroupCounters& g : o.counters->groups) {
                    if (g.id == id) {
                        return g.counters;
                    }
                }
                throw Error(ErrorKind::NoSuchGroup, "the group of container " + id + " went away");
            });
            shared->returnResults(counters);
        } catch (const sdbus::Error& e) {
            shared->returnError(e);
        }
    });
}

void replyAllCounters(CountersReader& reader,
                      sdbus::Result<uint64_t, std::vector<CountersEntry>>&& result) {
    auto shared =
        std::make_shared<sdbus::Result<uint64_t, std::vector<CountersEntry>>>(std::move(result));
    reader.request([shared](const CountersReader::Outcome& o) {
        try {
            auto [usec, groups] = translated("GetAllCounters", std::string(), [&] {
                if (o.error) {
                    throw *o.error;
                }
                std::vector<CountersEntry> out;
                out.reserve(o.counters->groups.size());
                for (const GroupCounters& g : o.counters->groups) {
                    out.emplace_back(g.id, g.labels, g.counters);
                }
                return std::make_pair(o.counters->monotonicUsec, std::move(out));
            });
            shared->returnResults(usec, groups);
        } catch (const sdbus::Error& e) {
            shared->returnError(e);
        }
    });
}

void replyAllValues(CountersReader& reader,
                    sdbus::Result<uint64_t, std::vector<ValuesEntry>>&& result) {
    auto shared =
        std::make_shared<sdbus::Result<uint64_t, std::vector<ValuesEntry>>>(std::move(result));
    reader.request([shared](const CountersReader::Outcome& o) {
        try {
            auto [usec, groups] = translated("GetAllValues", std::string(), [&] {
                if (o.error) {
                    throw *o.error;
                }
                const uint64_t at = o.counters->monotonicUsec;
                std::vector<ValuesEntry> out;
                out.reserve(o.counters->groups.size());
                for (const GroupCounters& g : o.counters->groups) {
                    std::vector<ValueEntry> values;
                    auto generation = [&g](const std::string& domain, const std::string& event) {
                        const auto gd = g.generations.find(domain);
                        if (gd == g.generations.end()) {
                            return uint64_t{0};
                        }
                        const auto ge = gd->second.find(event);
                        return ge == gd->second.end() ? uint64_t{0} : ge->second;
                    };
                    for (const auto& [domain, events] : g.counters) {
                        for (const auto& [event, value] : events) {
                            const uint64_t gen = generation(domain, event);
                            uint64_t window = 0;
                            uint64_t measured = at;
                            if (const auto w = g.windowUsec.find(domain);
                                w != g.windowUsec.end() && w->second.count(event) != 0) {
                                window = w->second.at(event);
                                measured = g.measuredUsec.at(domain).at(event);
                            }
                            values.emplace_back(domain, event, sdbus::Variant(value), gen, window,
                                                measured);
                        }
                    }
                    // Decimal values (telemetry) are always read as the kernel counts them.
                    for (const auto& [domain, events] : g.decimals) {
                        for (const auto& [event, value] : events) {
                            values.emplace_back(domain, event, sdbus::Variant(value),
                                                generation(domain, event), uint64_t{0}, at);
                        }
                    }
                    std::sort(values.begin(), values.end(), [](const auto& a, const auto& b) {
                        return std::tie(std::get<0>(a), std::get<1>(a)) <
                               std::tie(std::get<0>(b), std::get<1>(b));
                    });
                    out.emplace_back(g.id, g.labels, std::move(values));
                }
                return std::make_pair(at, std::move(out));
            });
            shared->returnResults(usec, groups);
        } catch (const sdbus::Error& e) {
            shared->returnError(e);
        }
    });
}

} // namespace rdtmon
