#include "MetricsText.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <map>
#include <optional>
#include <vector>

namespace rdtmon::client {

namespace {

struct Sample {
    std::string labels; // the text between the braces
    uint64_t value;
    std::optional<double> real = std::nullopt; // written instead of value when set
};

void family(std::string& out, const char* name, const char* type, const char* help,
            const std::vector<Sample>& samples) {
    if (samples.empty()) {
        return;
    }
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
    for (const Sample& s : samples) {
        out.append(name);
        if (!s.labels.empty()) {
            out.append("{").append(s.labels).append("}");
        }
        if (s.real) {
            // The shortest text that reads back as the same double: every digit it has.
            char text[64];
            const auto r = std::to_chars(text, text + sizeof text, *s.real);
            out.append(" ").append(text, r.ptr).append("\n");
        } else {
            out.append(" ").append(std::to_string(s.value)).append("\n");
        }
    }
}

void label(std::string& out, const char* name, std::string_view value) {
    if (!out.empty()) {
        out.append(",");
    }
    out.append(name).append("=\"").append(escapeLabelValue(value)).append("\"");
}

std::string labelOf(const Labels& labels, const std::string& key) {
    const auto it = labels.find(key);
    return it == labels.end() ? std::string() : it->second;
}

// The labels every container sample starts with.
void containerLabels(std::string& out, const std::string& id, const Labels& labels,
                     std::string_view origin) {
    label(out, "container_id", id);
    label(out, "pod", labelOf(labels, "pod"));
    label(out, "namespace", labelOf(labels, "namespace"));
    label(out, "container", labelOf(labels, "container"));
    label(out, "origin", origin.empty() ? std::string_view(kOriginHook) : origin);
}

// The samples of one event over groups (already sorted), whole L3 domains only.
std::vector<Sample> samplesOf(const std::vector<const GroupCounters*>& groups, const char* event,
                              bool clos) {
    std::vector<Sample> out;
    for (const GroupCounters* g : groups) {
        for (const auto& [domain, events] : g->counters) {
            const auto e = events.find(event);
            if (!isTopLevelDomain(domain) || e == events.end()) {
                continue;
            }
            std::string l;
            if (clos) {
                label(l, "clos", g->id);
            } else {
                containerLabels(l, g->id, g->labels, g->origin);
            }
            label(l, "domain", domain);
            out.push_back(Sample{std::move(l), e->second});
        }
    }
    return out;
}

// The samples of a decimal event (Intel's telemetry, per package) over containers.
std::vector<Sample> decimalSamplesOf(const std::vector<const GroupCounters*>& groups,
                                     const char* event) {
    std::vector<Sample> out;
    for (const GroupCounters* g : groups) {
        for (const auto& [domain, events] : g->decimals) {
            const auto e = events.find(event);
            if (e == events.end()) {
                continue;
            }
            std::string l;
            containerLabels(l, g->id, g->labels, g->origin);
            label(l, "domain", domain);
            out.push_back(Sample{std::move(l), 0, e->second});
        }
    }
    return out;
}

// Two samples per container of GetAllCoverage, sorted by id, labelled as the counters are.
std::vector<Sample> taskSamples(const MetricsInput& in) {
    std::vector<Sample> out;
    if (!in.coverage) {
        return out;
    }
    std::map<std::string, const GroupCounters*> entryOf;
    for (const GroupCounters& g : in.snapshot.groups) {
        entryOf.emplace(g.id, &g);
    }
    std::vector<const GroupCoverage*> rows;
    for (const GroupCoverage& c : *in.coverage) {
        rows.push_back(&c);
    }
    std::sort(rows.begin(), rows.end(), [](auto* a, auto* b) { return a->id < b->id; });
    static const Labels kNone;
    for (const GroupCoverage* c : rows) {
        const Labels* labels = &kNone;
        std::string_view origin = kOriginHook;
        if (const auto it = entryOf.find(c->id); it != entryOf.end()) {
            labels = &it->second->labels;
            origin = it->second->origin;
        } else if (const auto o = in.notRead.find(c->id); o != in.notRead.end()) {
            labels = &o->second.labels;
            origin = o->second.origin;
        }
        for (const auto& [where, value] :
             {std::pair<const char*, uint32_t>{"group", c->tasksInGroup},
              {"outside", c->tasksOutside}}) {
            std::string l;
            containerLabels(l, c->id, *labels, origin);
            label(l, "where", where);
            out.push_back(Sample{std::move(l), value});
        }
    }
    return out;
}

} // namespace

std::string escapeLabelValue(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (const char c : value) {
        switch (c) {
        case '\\':
            out += "\\\\";
            break;
        case '"':
            out += "\\\"";
            break;
        case '\n':
            out += "\\n";
            break;
        default:
            out += c;
        }
    }
    return out;
}

std::string formatMetrics(const MetricsInput& in) {
    std::string out;
    family(out, "rdtmon_up", "gauge", "Whether rdtmond answered on the system bus (1) or not (0).",
           {Sample{{}, in.up ? 1u : 0u}});
    if (!in.up) {
        return out;
    }
    const Status& st = in.status;
    family(out, "rdtmon_supported", "gauge",
           "Whether resctrl monitoring is usable on this node (1) or not (0).",
           {Sample{{}, st.supported ? 1u : 0u}});
    family(out, "rdtmon_groups", "gauge",
           "Monitoring groups rdtmond owns (not those runtimes made).",
           {Sample{{}, st.groupCount}});
    family(out, "rdtmon_rmids", "gauge", "RMIDs resctrl has (info/L3_MON/num_rmids).",
           {Sample{{}, st.numRmids}});
    std::vector<Sample> freeRmids;
    if (st.freeRmids) {
        freeRmids.push_back(Sample{{}, *st.freeRmids});
    }
    family(out, "rdtmon_rmids_free", "gauge", "RMIDs free for new monitoring groups.", freeRmids);
    std::vector<Sample> cacheSizes;
    for (const auto& [domain, bytes] : st.l3CacheSizes) {
        std::string dl;
        label(dl, "domain", l3DomainName(domain));
        cacheSizes.push_back(Sample{std::move(dl), bytes});
    }
    family(out, "rdtmon_llc_size_bytes", "gauge",
           "Size of each L3 cache (the kernel's cacheinfo): what an occupancy is a share of.",
           cacheSizes);
    if (in.coverage) {
        const auto waiting = std::count_if(in.coverage->begin(), in.coverage->end(),
                                           [](const auto& c) { return c.state == kStateWaiting; });
        family(out, "rdtmon_containers_waiting", "gauge",
               "Containers waiting for a free RMID: not monitored until one frees.",
               {Sample{{}, static_cast<uint64_t>(waiting)}});
    }
    if (in.counters && !in.counters->mode.empty()) {
        std::string l;
        label(l, "mode", in.counters->mode);
        family(out, "rdtmon_mbm_assign_mode", "gauge",
               "The assignable-counter mode (info/L3_MON/mbm_assign_mode): in mbm_event, a "
               "group counts memory bandwidth only while it holds a counter.",
               {Sample{std::move(l), 1}});
        std::vector<Sample> counters, free;
        for (const CounterDomain& d : in.counters->domains) {
            std::string dl;
            label(dl, "domain", l3DomainName(d.domain));
            counters.push_back(Sample{dl, d.counters});
            free.push_back(Sample{std::move(dl), d.free});
        }
        family(out, "rdtmon_mbm_counters", "gauge",
               "Assignable memory-bandwidth counters per L3 domain (mbm_event mode); each event "
               "of a group takes one.",
               counters);
        family(out, "rdtmon_mbm_counters_free", "gauge",
               "Assignable memory-bandwidth counters free per L3 domain (mbm_event mode).", free);
        std::vector<Sample> groups, cycle;
        if (in.counters->continuous && in.counters->rotating) {
            for (const auto& [schedule, n] :
                 {std::pair<const char*, uint32_t>{"continuous", *in.counters->continuous},
                  {"turns", *in.counters->rotating}}) {
                std::string sl;
                label(sl, "schedule", schedule);
                groups.push_back(Sample{std::move(sl), n});
            }
        }
        family(out, "rdtmon_mbm_schedule_groups", "gauge",
               "Owned groups that hold assignable counters all the time (schedule=continuous) "
               "and that take turns at them (schedule=turns), mbm_event mode.",
               groups);
        if (in.counters->cycleUsec) {
            cycle.push_back(Sample{{}, 0, static_cast<double>(*in.counters->cycleUsec) / 1e6});
        }
        family(out, "rdtmon_mbm_turns_cycle_seconds", "gauge",
               "The cycle in which each group that takes turns at the counters is measured "
               "once; 0 when none do.",
               cycle);
    }
    if (st.supported) {
        family(out, "rdtmon_containers_without_bandwidth", "gauge",
               "Containers with no memory-bandwidth value on any L3 domain (in mbm_event mode: "
               "their group holds no counter).",
               {Sample{{}, containersWithoutBandwidth(in.snapshot, st.monFeatures)}});
    }

    std::vector<const GroupCounters*> containers, closes;
    for (const GroupCounters& g : in.snapshot.groups) {
        (g.isClos() ? closes : containers).push_back(&g);
    }
    auto byId = [](const GroupCounters* a, const GroupCounters* b) { return a->id < b->id; };
    std::sort(containers.begin(), containers.end(), byId);
    std::sort(closes.begin(), closes.end(), byId);

    family(out, "rdtmon_llc_occupancy_bytes", "gauge",
           "Last-level cache occupied by the container's group, per L3 domain; origin: hook, "
           "adopted or runtime (made by its runtime, not owned by rdtmond).",
           samplesOf(containers, kLlcOccupancy, false));
    family(out, "rdtmon_mbm_total_bytes_total", "counter",
           "Memory bandwidth (MBM total) used by the container's group, per L3 domain; origin: "
           "hook, adopted or runtime (made by its runtime, not owned by rdtmond).",
           samplesOf(containers, kMbmTotal, false));
    family(out, "rdtmon_mbm_local_bytes_total", "counter",
           "Local memory bandwidth (MBM local) used by the container's group, per L3 domain; "
           "origin: hook, adopted or runtime (made by its runtime, not owned by rdtmond).",
           samplesOf(containers, kMbmLocal, false));
    family(out, "rdtmon_core_energy_joules_total", "counter",
           "Energy the container's tasks used, per package (Intel telemetry core_energy, "
           "domain mon_PERF_PKG_YY); origin as above.",
           decimalSamplesOf(containers, kCoreEnergy));
    family(out, "rdtmon_container_tasks", "gauge",
           "Threads of the container in its group (where=group) and outside it "
           "(where=outside: not counted in its numbers), at rdtmond's last count; groups "
           "rdtmond owns only (origin hook or adopted).",
           taskSamples(in));
    family(out, "rdtmon_clos_llc_occupancy_bytes", "gauge",
           "Last-level cache occupied by a whole CTRL_MON group (its MON groups included), per "
           "L3 domain.",
           samplesOf(closes, kLlcOccupancy, true));
    family(out, "rdtmon_clos_mbm_total_bytes_total", "counter",
           "Memory bandwidth (MBM total) used by a whole CTRL_MON group, per L3 domain.",
           samplesOf(closes, kMbmTotal, true));
    family(out, "rdtmon_clos_mbm_local_bytes_total", "counter",
           "Local memory bandwidth (MBM local) used by a whole CTRL_MON group, per L3 domain.",
           samplesOf(closes, kMbmLocal, true));
    return out;
}

} // namespace rdtmon::client
