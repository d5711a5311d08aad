// resctrl-emu: assignable counters (AMD ABMC from Linux 6.18, Arm MPAM): the mode, the
// counters of each L3 domain, which group holds which, and the files that show and change
// them (see Model.h and the README, "Assignable counters"). As fs/resctrl/monitor.c does:
// each event on each domain costs one counter, a count restarts from 0 whenever its
// counter is assigned or freed, and an MBM read without one says "Unassigned".
#include "Model.h"

#include "Text.h"

#include <cerrno>
#include <string>

namespace rdtmon::emu {
namespace {

constexpr const char* kNotEnabled = "mbm_event mode is not enabled\n";
constexpr const char* kFilterNames[] = {"local_reads",
                                        "remote_reads",
                                        "local_non_temporal_writes",
                                        "remote_non_temporal_writes",
                                        "local_reads_slow_memory",
                                        "remote_reads_slow_memory",
                                        "dirty_victim_writes_all"};

// 0 for mbm_total_bytes, 1 for mbm_local_bytes, -1 for anything else.
int mbmIndex(const std::string& event) {
    if (event == "mbm_total_bytes") {
        return 0;
    }
    return event == "mbm_local_bytes" ? 1 : -1;
}

std::string perDomain(const std::vector<unsigned>& v) {
    std::string s;
    for (size_t d = 0; d < v.size(); ++d) {
        if (d != 0) {
            s += ';';
        }
        s += std::to_string(d);
        s += '=';
        s += std::to_string(v[d]);
    }
    return s + "\n";
}

} // namespace

bool Model::infoWritable(const std::string& name) const {
    if (name == "L3_MON/mbm_assign_mode") {
        return !opts_.mbmAssign.empty();
    }
    if (name == "L3_MON/mbm_assign_on_mkdir") {
        return cntrAssignable();
    }
    // Arm MPAM's filters are fixed: the files are read-only there.
    return name.rfind("L3_MON/event_configs/", 0) == 0 && cntrAssignable() &&
           opts_.mbmAssign != "fixed";
}

void Model::assignInfoFiles(std::map<std::string, std::string>& f) const {
    std::string& mode = f["L3_MON/mbm_assign_mode"];
    if (opts_.mbmAssign == "intel") {
        mode = "[default]\n";
        return;
    }
    if (opts_.mbmAssign == "fixed") {
        mode = "[mbm_event]\n";
    } else {
        mode = assignEnabled_ ? "[mbm_event]\ndefault\n" : "mbm_event\n[default]\n";
    }
    f["L3_MON/num_mbm_cntrs"] =
        perDomain(std::vector<unsigned>(opts_.l3Domains, opts_.numMbmCntrs));
    f["L3_MON/available_mbm_cntrs"] = perDomain(cntrsFree_);
    f["L3_MON/mbm_assign_on_mkdir"] = assignOnMkdir_ ? "1\n" : "0\n";
    f["L3_MON/event_configs/mbm_total_bytes/event_filter"] = eventFilter_[0] + "\n";
    f["L3_MON/event_configs/mbm_local_bytes/event_filter"] = eventFilter_[1] + "\n";
}

// 1 when n is not one of the files below; else 0 with out, or -errno.
int Model::readAssign(const Node& n, std::string& out) {
    const bool modal = (n.kind == Kind::GroupFile && n.name == "mbm_L3_assignments") ||
                       (n.kind == Kind::InfoFile && (n.name == "L3_MON/available_mbm_cntrs" ||
                                                     n.name == "L3_MON/mbm_assign_on_mkdir"));
    if (!modal) {
        return 1;
    }
    if (!assignEnabled_) {
        lastCmd_ = kNotEnabled;
        return -EINVAL;
    }
    if (n.kind == Kind::InfoFile) {
        out = infoFiles().at(n.name);
        return 0;
    }
    const Group& g = groups_.at(n.group);
    out.clear();
    for (int ev = 0; ev < 2; ++ev) {
        out += kEventNames[MbmTotal + ev];
        out += ':';
        for (unsigned d = 0; d < opts_.l3Domains; ++d) {
            if (d != 0) {
                out += ';';
            }
            out += std::to_string(d);
            out += g.cntr.at(d)[ev] ? "=e" : "=_";
        }
        out += '\n';
    }
    return 0;
}

int Model::writeInfo(const std::string& name, const std::string& data) {
    lastCmd_.clear();
    const std::string v = trim(data);
    if (name == "L3_MON/mbm_assign_mode") {
        if (v != "mbm_event" && v != "default") {
            lastCmd_ = "Unsupported assign mode\n";
            return -EINVAL;
        }
        const bool enable = v == "mbm_event";
        if (enable && opts_.mbmAssign == "intel") {
            lastCmd_ = "mbm_event mode is not supported\n";
            return -EINVAL;
        }
        if (!enable && opts_.mbmAssign == "fixed") {
            lastCmd_ = "Counter assignment mode is not configurable\n";
            return -EINVAL;
        }
        if (cntrAssignable() && enable != assignEnabled_) {
            switchAssignMode(enable);
        }
        return 0;
    }
    if (!assignEnabled_) {
        lastCmd_ = kNotEnabled;
        return -EINVAL;
    }
    if (name == "L3_MON/mbm_assign_on_mkdir") {
        if (v == "1" || v == "y" || v == "Y" || v == "on") {
            assignOnMkdir_ = true;
        } else if (v == "0" || v == "n" || v == "N" || v == "off") {
            assignOnMkdir_ = false;
        } else {
            return -EINVAL;
        }
        return 0;
    }
    // event_configs/<event>/event_filter: a comma list of the transactions it counts.
    const size_t from = std::string("L3_MON/event_configs/").size();
    const int ev = mbmIndex(name.substr(from, name.find('/', from) - from));
    if (ev < 0) {
        return -EINVAL;
    }
    std::string filter;
    size_t pos = 0;
    while (pos <= v.size()) {
        size_t end = v.find(',', pos);
        end = end == std::string::npos ? v.size() : end;
        const std::string word = trim(v.substr(pos, end - pos));
        bool known = false;
        for (const char* f : kFilterNames) {
            known = known || word == f;
        }
        if (!known) {
            lastCmd_ = "Unsupported event config\n";
            return -EINVAL;
        }
        if (!filter.empty()) {
            filter += ',';
        }
        filter += word;
        pos = end + 1;
    }
    if (filter != eventFilter_[ev]) {
        eventFilter_[ev] = filter;
        // Every counter of the event is programmed anew: its counts restart from 0.
        updateAll();
        for (auto& [id, g] : groups_) {
            for (unsigned d = 0; d < opts_.l3Domains; ++d) {
                if (g.cntr.at(d)[ev]) {
                    resetUnits(g, ev, d);
                }
            }
        }
    }
    return 0;
}

// Lines of EVENT:DOM=STATE;DOM=STATE (or *=STATE), newline-terminated, processed in order
// until the first error; what the lines before it did stays done.
int Model::writeAssignments(Group& g, const std::string& data) {
    if (data.empty() || data.back() != '\n') {
        return -EINVAL;
    }
    if (!assignEnabled_) {
        lastCmd_ = kNotEnabled;
        return -EINVAL;
    }
    size_t pos = 0;
    const std::string body = data.substr(0, data.size() - 1);
    while (pos <= body.size()) {
        size_t end = body.find('\n', pos);
        end = end == std::string::npos ? body.size() : end;
        if (int r = assignLine(g, body.substr(pos, end - pos)); r != 0) {
            return r;
        }
        pos = end + 1;
    }
    return 0;
}

int Model::assignLine(Group& g, const std::string& line) {
    const size_t colon = line.find(':');
    const std::string event = line.substr(0, colon);
    const int ev = mbmIndex(event);
    if (ev < 0) {
        lastCmd_ += "Invalid event " + event + "\n";
        return -ENOENT;
    }
    if (colon == std::string::npos) {
        return 0;
    }
    std::string rest = line.substr(colon + 1);
    while (!rest.empty()) {
        const size_t semi = rest.find(';');
        const std::string item = trim(rest.substr(0, semi));
        rest = semi == std::string::npos ? "" : rest.substr(semi + 1);
        const size_t eq = item.find('=');
        const std::string id = item.substr(0, eq);
        const std::string state = eq == std::string::npos ? "" : item.substr(eq + 1);
        auto apply = [&](unsigned d) {
            if (state != "e" && state != "_") {
                return -EINVAL;
            }
            return setCntr(g, ev, d, state == "e");
        };
        if (!id.empty() && id[0] == '*') {
            // Every domain, in order, up to the first failure; nothing after it on the line.
            for (unsigned d = 0; d < opts_.l3Domains; ++d) {
                if (int r = apply(d); r != 0) {
                    lastCmd_ += "Assign operation '" + event + ":*=" + state + "' failed\n";
                    return r;
                }
            }
            return 0;
        }
        const std::optional<long> dom = parseNumber(id);
        if (!dom || *dom < 0) {
            lastCmd_ += "Missing domain id\n";
            return -EINVAL;
        }
        if (*dom >= static_cast<long>(opts_.l3Domains)) {
            lastCmd_ += "Invalid domain id " + id + "\n";
            return -EINVAL;
        }
        if (int r = apply(static_cast<unsigned>(*dom)); r != 0) {
            lastCmd_ += "Assign operation '" + event + ":" + id + "=" + state + "' failed\n";
            return r;
        }
    }
    return 0;
}

int Model::setCntr(Group& g, int ev, unsigned d, bool on) {
    bool& held = g.cntr.at(d)[ev];
    if (held == on) {
        return 0;
    }
    if (on && cntrsFree_.at(d) == 0) {
        lastCmd_ += "Failed to allocate counter for ";
        lastCmd_ += kEventNames[MbmTotal + ev];
        lastCmd_ += " in domain ";
        lastCmd_ += std::to_string(d);
        lastCmd_ += '\n';
        return -ENOSPC;
    }
    if (on) {
        --cntrsFree_.at(d);
    } else {
        ++cntrsFree_.at(d);
    }
    held = on;
    if (!g.units.empty()) { // a group being made has counted nothing yet
        updateActivity(g, membership(kCounterScanReuse), Clock::now());
    }
    resetUnits(g, ev, d);
    return 0;
}

// A new group takes counters for each event on every domain while there are any: for an
// event, domain by domain up to the first that has none (as rdtgroup_assign_cntrs does).
void Model::assignOnMkdir(Group& g) {
    for (int ev = 0; ev < 2; ++ev) {
        for (unsigned d = 0; d < opts_.l3Domains; ++d) {
            if (setCntr(g, ev, d, true) != 0) {
                break;
            }
        }
    }
}

void Model::freeCntrs(Group& g) {
    for (unsigned d = 0; d < g.cntr.size(); ++d) {
        for (int ev = 0; ev < 2; ++ev) {
            if (g.cntr[d][ev]) {
                g.cntr[d][ev] = false;
                ++cntrsFree_.at(d);
            }
        }
    }
}

// Switching frees every counter and restarts every MBM count; mbm_assign_on_mkdir is on
// again after a switch to mbm_event.
void Model::switchAssignMode(bool enable) {
    updateAll();
    for (auto& [id, g] : groups_) {
        for (unsigned d = 0; d < g.cntr.size(); ++d) {
            g.cntr[d] = {false, false};
            resetUnits(g, 0, d);
            resetUnits(g, 1, d);
        }
    }
    cntrsFree_.assign(opts_.l3Domains, opts_.numMbmCntrs);
    assignEnabled_ = enable;
    if (enable) {
        assignOnMkdir_ = true;
    }
}

bool Model::countsOn(const Group& g, int event, unsigned d) const {
    if (!assignEnabled_ || (event != MbmTotal && event != MbmLocal)) {
        return true;
    }
    return g.cntr.at(d)[event == MbmTotal ? 0 : 1];
}

void Model::updateAll() {
    const Membership& m = membership(kCounterScanReuse);
    const Clock::time_point now = Clock::now();
    for (auto& [id, g] : groups_) {
        updateActivity(g, m, now);
    }
}

void Model::resetUnits(Group& g, int ev, unsigned d) {
    const unsigned per = std::max(1u, opts_.snc);
    g.units.resize(unitCount());
    for (unsigned u = d * per; u < (d + 1) * per; ++u) {
        g.units[u].bytes[ev] = 0;
    }
}

} // namespace rdtmon::emu
