#include "Commands.h"

#include "Units.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <optional>
#include <set>
#include <tuple>
#include <vector>

namespace rdtmon::ctl {

using client::ClientError;
using client::ClientErrorKind;

namespace {

// Rows of cells as left-aligned columns two spaces apart, without trailing blanks.
void printTable(const std::vector<std::vector<std::string>>& rows, std::ostream& out) {
    std::vector<std::size_t> width;
    for (const auto& row : rows) {
        width.resize(std::max(width.size(), row.size()));
        for (std::size_t i = 0; i < row.size(); ++i) {
            width[i] = std::max(width[i], row[i].size());
        }
    }
    for (const auto& row : rows) {
        std::string line;
        for (std::size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size()) {
                line += std::string(width[i] - row[i].size() + 2, ' ');
            }
        }
        out << line << "\n";
    }
}

std::string labelOr(const client::Labels& labels, const char* key) {
    const auto it = labels.find(key);
    return it == labels.end() || it->second.empty() ? "-" : it->second;
}

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& s : items) {
        out += (out.empty() ? "" : " ") + s;
    }
    return out.empty() ? "-" : out;
}

// The counters of a group a runtime made (GetCounters knows only rdtmond's own), from the
// bulk read; nullopt when rdtmond shows no such group.
std::optional<client::Counters> runtimeGroupCounters(client::BusClient& bus,
                                                     const std::string& id) {
    const auto shown = bus.runtimeGroups();
    if (std::none_of(shown.begin(), shown.end(), [&](const auto& g) { return g.id == id; })) {
        return std::nullopt;
    }
    for (client::GroupCounters& g : bus.allCounters().groups) {
        if (g.id == id && g.origin == client::kOriginRuntime) {
            return std::move(g.counters);
        }
    }
    return std::nullopt; // gone meanwhile
}

// A counter-assignment field as JSON: null when unknown.
nlohmann::json orNull(const std::optional<client::CounterAssignment>& a,
                      std::optional<uint32_t> client::CounterAssignment::*field) {
    return a && (*a).*field ? nlohmann::json(*((*a).*field)) : nlohmann::json(nullptr);
}

} // namespace

void runStatus(client::BusClient& bus, bool json, std::ostream& out) {
    const client::Status s = bus.status();
    // The assignable counters, and the containers they leave without a bandwidth figure:
    // unknown without monitoring, or from a service older than GetCounterAssignment.
    std::optional<client::CounterAssignment> assign;
    std::optional<uint32_t> withoutBandwidth;
    if (s.supported) {
        try {
            assign = bus.counterAssignment();
            withoutBandwidth = client::containersWithoutBandwidth(bus.allCounters(), s.monFeatures);
        } catch (const ClientError& e) {
            if (e.kind() != ClientErrorKind::Unsupported) { // resctrl went away meanwhile
                throw;
            }
        }
    }
    if (json) {
        nlohmann::json counters = nlohmann::json::array();
        if (assign) {
            for (const client::CounterDomain& d : assign->domains) {
                counters.push_back({{"domain", client::l3DomainName(d.domain)},
                                    {"counters", d.counters},
                                    {"free", d.free}});
            }
        }
        out << nlohmann::json{{"version", s.version},
                              {"supported", s.supported},
                              {"resctrl_path", s.resctrlPath},
                              {"mon_features", s.monFeatures},
                              {"telemetry_features", s.telemetryFeatures},
                              {"l3_cache_bytes", client::cacheSizesOf(s.l3CacheSizes)},
                              {"num_rmids", s.numRmids},
                              {"free_rmids", s.freeRmids ? nlohmann::json(*s.freeRmids)
                                                         : nlohmann::json(nullptr)},
                              {"group_count", s.groupCount},
                              {"mbm_assign_mode",
                               assign ? nlohmann::json(assign->mode) : nlohmann::json(nullptr)},
                              {"mbm_counters", counters},
                              {"containers_without_bandwidth",
                               withoutBandwidth ? nlohmann::json(*withoutBandwidth)
                                                : nlohmann::json(nullptr)},
                              {"counters_continuous",
                               orNull(assign, &client::CounterAssignment::continuous)},
                              {"counters_rotating",
                               orNull(assign, &client::CounterAssignment::rotating)},
                              {"counter_cycle_seconds",
                               assign && assign->cycleUsec
                                   ? nlohmann::json(static_cast<double>(*assign->cycleUsec) / 1e6)
                                   : nlohmann::json(nullptr)}}
                   .dump()
            << "\n";
        return;
    }
    std::string turns = "-";
    if (assign && assign->continuous && assign->rotating && assign->cycleUsec) {
        turns = std::to_string(*assign->continuous);
        turns += " all the time, ";
        turns += std::to_string(*assign->rotating);
        turns += " in turns";
        if (*assign->rotating != 0 && *assign->cycleUsec == 0) {
            turns += " (no counter is free for them)";
        } else if (*assign->rotating != 0) {
            char cycle[48];
            std::snprintf(cycle, sizeof cycle, " (each measured every %.1f s)",
                          static_cast<double>(*assign->cycleUsec) / 1e6);
            turns += cycle;
        }
    }
    std::string mbm = "-";
    if (assign && assign->mode.empty()) {
        mbm = "not assignable (every group counts)";
    } else if (assign && assign->mode != "mbm_event") {
        mbm = assign->mode + " (every group counts)";
    } else if (assign) {
        mbm = assign->mode;
        for (const client::CounterDomain& d : assign->domains) {
            mbm += (d.domain == assign->domains.front().domain ? ": " : ", ");
            mbm += client::l3DomainName(d.domain);
            mbm += ' ';
            mbm += std::to_string(d.free);
            mbm += " of ";
            mbm += std::to_string(d.counters);
            mbm += " free";
        }
    }
    std::string caches;
    for (const auto& [domain, bytes] : client::cacheSizesOf(s.l3CacheSizes)) {
        caches += caches.empty() ? "" : ", ";
        caches += domain;
        caches += ' ';
        caches += humanBytes(bytes);
    }
    printTable({{"version:", s.version},
                {"supported:", s.supported ? "yes" : "no"},
                {"resctrl:", s.resctrlPath.empty() ? "-" : s.resctrlPath},
                {"mon features:", join(s.monFeatures)},
                {"telemetry:", join(s.telemetryFeatures)},
                {"L3 caches:", caches.empty() ? "-" : caches},
                {"RMIDs:", std::to_string(s.numRmids)},
                {"RMIDs free:", s.freeRmids ? std::to_string(*s.freeRmids) : "-"},
                {"groups:", std::to_string(s.groupCount)},
                {"MBM counters:", mbm},
                {"MBM turns:", turns},
                {"no bandwidth:", withoutBandwidth ? std::to_string(*withoutBandwidth) : "-"}},
               out);
}

void runList(client::BusClient& bus, bool json, bool fullIds, std::ostream& out) {
    // The groups rdtmond owns (waiting containers included), and those runtimes made, which
    // it shows but does not own.
    std::vector<client::GroupInfo> groups = bus.groupObjects();
    for (client::GroupInfo& g : bus.runtimeGroups()) {
        groups.push_back(std::move(g));
    }
    std::sort(groups.begin(), groups.end(), [](const auto& a, const auto& b) {
        return std::tie(a.id, a.origin) < std::tie(b.id, b.origin);
    });
    auto orNull = [](const std::optional<uint32_t>& v) {
        return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
    };
    auto orDash = [](const std::optional<uint32_t>& v) {
        return v ? std::to_string(*v) : std::string("-");
    };
    if (json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& g : groups) {
            arr.push_back({{"container_id", g.id},
                           {"origin", g.origin},
                           {"state", g.state},
                           {"resctrl_path", g.resctrlPath},
                           {"cgroup", g.cgroup},
                           {"tasks_in_group", orNull(g.tasksInGroup)},
                           {"tasks_outside", orNull(g.tasksOutside)},
                           {"pid", g.pid},
                           {"created_usec", g.createdUsec},
                           {"object_path", g.objectPath.empty() ? nlohmann::json(nullptr)
                                                                : nlohmann::json(g.objectPath)},
                           {"labels", g.labels}});
        }
        out << arr.dump() << "\n";
        return;
    }
    std::vector<std::vector<std::string>> rows = {{"CONTAINER ID", "NAMESPACE", "POD", "CONTAINER",
                                                   "ORIGIN", "STATE", "TASKS", "OUTSIDE", "PID",
                                                   "CREATED", "RESCTRL PATH"}};
    for (const auto& g : groups) {
        rows.push_back({fullIds ? g.id : g.id.substr(0, 12), labelOr(g.labels, "namespace"),
                        labelOr(g.labels, "pod"), labelOr(g.labels, "container"), g.origin, g.state,
                        orDash(g.tasksInGroup), orDash(g.tasksOutside),
                        g.pid == 0 ? "-" : std::to_string(g.pid), utcTime(g.createdUsec),
                        g.resctrlPath});
    }
    printTable(rows, out);
}

void runCounters(client::BusClient& bus, const std::string& id, bool json, std::ostream& out) {
    client::Counters c;
    try {
        c = bus.counters(id);
    } catch (const ClientError& e) {
        if (e.kind() != ClientErrorKind::NoSuchGroup) {
            throw;
        }
        // rdtmond answers NoSuchGroup before it looks at resctrl, and on a node without
        // monitoring no group exists: the cause worth reporting is the missing support.
        if (!bus.status().supported) {
            throw ClientError(ClientErrorKind::Unsupported,
                              "resctrl monitoring is not supported on this node");
        }
        std::optional<client::Counters> shown = runtimeGroupCounters(bus, id);
        if (!shown) {
            throw;
        }
        c = std::move(*shown);
    }
    if (json) {
        out << nlohmann::json{{"container_id", id}, {"domains", c}}.dump() << "\n";
        return;
    }
    // The events as columns, the three known ones first.
    std::vector<std::string> events = {client::kLlcOccupancy, client::kMbmTotal, client::kMbmLocal};
    std::set<std::string> others;
    for (const auto& [domain, ev] : c) {
        for (const auto& [name, value] : ev) {
            if (std::find(events.begin(), events.end(), name) == events.end()) {
                others.insert(name);
            }
        }
    }
    events.insert(events.end(), others.begin(), others.end());
    std::vector<std::vector<std::string>> rows(1, {"DOMAIN"});
    for (const auto& e : events) {
        rows[0].push_back(e);
    }
    for (const auto& [domain, ev] : c) {
        std::vector<std::string> row = {domain};
        for (const auto& e : events) {
            const auto it = ev.find(e);
            row.push_back(it == ev.end() ? "-" : std::to_string(it->second));
        }
        rows.push_back(std::move(row));
    }
    printTable(rows, out);
}

void runGc(client::BusClient& bus, std::ostream& out) {
    const uint32_t removed = bus.garbageCollect();
    out << "removed " << removed << (removed == 1 ? " group" : " groups") << "\n";
}

} // namespace rdtmon::ctl
