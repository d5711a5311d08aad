// resctrl-emu: the model's tree: lookup and listing, mkdir/rmdir with CLOSIDs and RMIDs,
// file contents and counters (see Model.h). Task membership is in ModelTasks.cpp.
#include "Model.h"

#include "Text.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>

namespace rdtmon::emu {

std::optional<int> eventFromName(const std::string& s) {
    for (int i = 0; i < kEvents; ++i) {
        if (s == kEventNames[i]) {
            return i;
        }
    }
    return std::nullopt;
}

Model::Model(const Options& o) : opts_(o), limboMs_(o.limboMs) {
    Group root;
    root.id = kRoot;
    root.rmid = 0;
    root.closid = 0;
    root.cpus = rootCpus();
    root.schemata = defaultSchemata();
    groups_[kRoot] = root;
    RmidPool& pool = pools_[0];
    for (unsigned r = 1; r < opts_.numRmids; ++r) {
        pool.free.push_back(r);
    }
    selfNs_ = pidNsInode(0).value_or(0);
}

// ------------------------------------------------------------ lookup

std::vector<std::string> Model::split(const char* path) {
    std::vector<std::string> out;
    std::string cur;
    for (const char* p = path; *p; ++p) {
        if (*p == '/') {
            if (!cur.empty()) {
                out.push_back(cur);
            }
            cur.clear();
        } else {
            cur += *p;
        }
    }
    if (!cur.empty()) {
        out.push_back(cur);
    }
    return out;
}

std::map<std::string, std::string> Model::infoFiles() const {
    std::map<std::string, std::string> f;
    f["last_cmd_status"] = lastCmd_.empty() ? "ok\n" : lastCmd_;
    f["L3_MON/num_rmids"] = std::to_string(opts_.numRmids) + "\n";
    f["L3_MON/mon_features"] = "llc_occupancy\nmbm_total_bytes\nmbm_local_bytes\n";
    f["L3_MON/max_threshold_occupancy"] = "1048576\n";
    f["L3/num_closids"] = std::to_string(opts_.closids) + "\n";
    f["L3/cbm_mask"] = "fffff\n";
    f["L3/min_cbm_bits"] = "1\n";
    f["L3/shareable_bits"] = "0\n";
    return f;
}

const std::vector<std::string>& Model::ctrlFiles() {
    static const std::vector<std::string> f = {"tasks",    "cpus", "cpus_list",
                                               "schemata", "mode", "size"};
    return f;
}

const std::vector<std::string>& Model::monFiles() {
    static const std::vector<std::string> f = {"tasks", "cpus", "cpus_list"};
    return f;
}

std::string Model::domainName(unsigned d) const {
    char b[32];
    std::snprintf(b, sizeof b, "mon_L3_%02u", d);
    return b;
}

std::string Model::subName(unsigned d, unsigned s) const {
    char b[32];
    std::snprintf(b, sizeof b, "mon_sub_L3_%02u", d * opts_.snc + s);
    return b;
}

std::optional<Model::Node> Model::resolve(const char* path) const {
    std::vector<std::string> c = split(path);
    size_t n = c.size();
    if (n > 0 && c[0] == kProcDirName) {
        if (!opts_.procFile || n > 3) {
            return std::nullopt;
        }
        if (n == 1) {
            return Node{Kind::ProcDir};
        }
        const std::optional<long> id = parseNumber(c[1]);
        if (!id || *id <= 0 || *id > INT32_MAX || c[1][0] == '0') {
            return std::nullopt;
        }
        if (n == 2) {
            return Node{Kind::ProcTaskDir, 0, c[1]};
        }
        if (c[2] == "cpu_resctrl_groups") {
            return Node{Kind::ProcTaskFile, 0, c[1]};
        }
        return std::nullopt;
    }
    if (n > 0 && c[0] == "info") {
        if (n == 1) {
            return Node{Kind::InfoDir};
        }
        auto files = infoFiles();
        if (n == 2 && files.count(c[1])) {
            return Node{Kind::InfoFile, 0, c[1]};
        }
        if (n == 2 && (c[1] == "L3_MON" || c[1] == "L3")) {
            return Node{Kind::InfoSubDir, 0, c[1]};
        }
        if (n == 3 && files.count(c[1] + "/" + c[2])) {
            return Node{Kind::InfoFile, 0, c[1] + "/" + c[2]};
        }
        return std::nullopt;
    }
    GroupId g = kRoot;
    size_t i = 0;
    for (;;) {
        const Group& grp = groups_.at(g);
        if (i == n) {
            return Node{Kind::GroupDir, g};
        }
        const std::string& name = c[i];
        const auto& files = grp.ctrl ? ctrlFiles() : monFiles();
        if (std::find(files.begin(), files.end(), name) != files.end()) {
            if (i + 1 == n) {
                return Node{Kind::GroupFile, g, name};
            }
            return std::nullopt;
        }
        if (name == "mon_data") {
            return resolveMonData(g, c, i + 1);
        }
        if (name == "mon_groups" && grp.ctrl) {
            if (i + 1 == n) {
                return Node{Kind::MonGroupsDir, g};
            }
            auto it = grp.monChildren.find(c[i + 1]);
            if (it == grp.monChildren.end()) {
                return std::nullopt;
            }
            g = it->second;
            i += 2;
            continue;
        }
        if (g == kRoot) {
            auto it = ctrlByName_.find(name);
            if (it != ctrlByName_.end()) {
                g = it->second;
                ++i;
                continue;
            }
        }
        return std::nullopt;
    }
}

std::optional<Model::Node> Model::resolveMonData(GroupId g, const std::vector<std::string>& c,
                                                 size_t i) const {
    size_t n = c.size();
    if (i == n) {
        return Node{Kind::MonDataDir, g};
    }
    for (unsigned d = 0; d < opts_.l3Domains; ++d) {
        if (c[i] != domainName(d)) {
            continue;
        }
        if (i + 1 == n) {
            return Node{Kind::DomainDir, g, {}, static_cast<int>(d)};
        }
        if (auto e = eventFromName(c[i + 1])) {
            if (i + 2 == n) {
                return Node{Kind::CounterFile, g, c[i + 1], static_cast<int>(d), -1, *e};
            }
            return std::nullopt;
        }
        for (unsigned s = 0; s < opts_.snc; ++s) {
            if (c[i + 1] != subName(d, s)) {
                continue;
            }
            if (i + 2 == n) {
                return Node{Kind::SubDir, g, {}, static_cast<int>(d), static_cast<int>(s)};
            }
            auto e = eventFromName(c[i + 2]);
            if (e && i + 3 == n) {
                return Node{Kind::CounterFile,   g, c[i + 2], static_cast<int>(d),
                            static_cast<int>(s), *e};
            }
        }
        return std::nullopt;
    }
    return std::nullopt;
}

std::vector<std::string> Model::list(const Node& node) const {
    std::vector<std::string> out;
    switch (node.kind) {
    case Kind::GroupDir: {
        const Group& g = groups_.at(node.group);
        out = g.ctrl ? ctrlFiles() : monFiles();
        out.push_back("mon_data");
        if (g.ctrl) {
            out.push_back("mon_groups");
        }
        if (node.group == kRoot) {
            out.push_back("info");
            for (auto& [name, id] : ctrlByName_) {
                out.push_back(name);
            }
        }
        break;
    }
    case Kind::InfoDir:
        out = {"last_cmd_status", "L3_MON", "L3"};
        break;
    case Kind::InfoSubDir:
        for (auto& [k, v] : infoFiles()) {
            if (k.rfind(node.name + "/", 0) == 0) {
                out.push_back(k.substr(node.name.size() + 1));
            }
        }
        break;
    case Kind::MonGroupsDir:
        for (auto& [name, id] : groups_.at(node.group).monChildren) {
            out.push_back(name);
        }
        break;
    case Kind::MonDataDir:
        for (unsigned d = 0; d < opts_.l3Domains; ++d) {
            out.push_back(domainName(d));
        }
        break;
    case Kind::DomainDir:
        for (auto e : kEventNames) {
            out.push_back(e);
        }
        for (unsigned s = 0; s < opts_.snc; ++s) {
            out.push_back(subName(static_cast<unsigned>(node.domain), s));
        }
        break;
    case Kind::SubDir:
        for (auto e : kEventNames) {
            out.push_back(e);
        }
        break;
    case Kind::ProcTaskDir:
        out.push_back("cpu_resctrl_groups");
        break;
    default:
        break;
    }
    return out;
}

// ------------------------------------------------------------ RMIDs

Model::RmidPool& Model::poolOf(unsigned closid) {
    const unsigned key = opts_.rmidsPerClos ? closid : 0;
    auto [it, made] = pools_.try_emplace(key);
    if (made) {
        // A CLOS's own pool (per-CLOS RMIDs): every RMID free, the first for its CTRL_MON
        // group itself.
        for (unsigned r = 0; r < opts_.numRmids; ++r) {
            it->second.free.push_back(r);
        }
    }
    return it->second;
}

void Model::expireLimbo() {
    auto now = Clock::now();
    for (auto& [key, pool] : pools_) {
        for (auto it = pool.limbo.begin(); it != pool.limbo.end();) {
            if (now - it->second >= std::chrono::milliseconds(limboMs_)) {
                pool.free.push_back(it->first);
                it = pool.limbo.erase(it);
            } else {
                ++it;
            }
        }
    }
}

int Model::allocRmid(unsigned closid, unsigned& out) {
    expireLimbo();
    RmidPool& pool = poolOf(closid);
    if (!pool.free.empty()) {
        out = pool.free.front();
        pool.free.pop_front();
        return 0;
    }
    return pool.limbo.empty() ? -ENOSPC : -EBUSY;
}

void Model::freeRmid(unsigned closid, unsigned r) {
    RmidPool& pool = poolOf(closid);
    if (limboMs_ == 0) {
        pool.free.push_back(r);
    } else {
        pool.limbo.emplace_back(r, Clock::now());
    }
}

std::string Model::rmidsReport() {
    expireLimbo();
    std::size_t free = 0;
    std::size_t limbo = 0;
    for (const auto& [key, pool] : pools_) {
        free += pool.free.size();
        limbo += pool.limbo.size();
    }
    return "free " + std::to_string(free) + " limbo " + std::to_string(limbo) + " total " +
           std::to_string(opts_.numRmids);
}

// ------------------------------------------------------------ mkdir / rmdir

int Model::mkdir(const char* path) {
    if (resolve(path)) {
        return -EEXIST;
    }
    std::string p(path);
    size_t slash = p.rfind('/');
    std::string parentPath = slash == 0 ? "/" : p.substr(0, slash);
    std::string name = p.substr(slash + 1);
    lastCmd_.clear();
    if (name.find('\n') != std::string::npos) {
        return -EINVAL;
    }
    auto parent = resolve(parentPath.c_str());
    bool asCtrl = parent && parent->kind == Kind::GroupDir && parent->group == kRoot;
    bool asMon = parent && parent->kind == Kind::MonGroupsDir;
    if (!asCtrl && !asMon) {
        return -EPERM;
    }
    if (failNextMkdir_ != 0) {
        int e = failNextMkdir_;
        failNextMkdir_ = 0;
        lastCmd_ = std::string("Injected failure: ") + std::strerror(e) + "\n";
        return -e;
    }
    Group g;
    g.id = nextId_++;
    g.name = name;
    g.ctrl = asCtrl;
    if (asCtrl) {
        std::set<unsigned> used;
        for (auto& [id, grp] : groups_) {
            if (grp.ctrl) {
                used.insert(grp.closid);
            }
        }
        unsigned closid = 0;
        while (used.count(closid)) {
            ++closid;
        }
        if (closid >= opts_.closids) {
            lastCmd_ = "Out of CLOSIDs\n";
            return -ENOSPC;
        }
        g.closid = closid;
        g.schemata = defaultSchemata();
    } else {
        g.parent = parent->group;
        g.closid = groups_.at(g.parent).closid;
    }
    int r = allocRmid(g.closid, g.rmid);
    if (r < 0) {
        lastCmd_ = "Out of RMIDs\n";
        return r;
    }
    g.cpus = "0\n";
    g.lastUpdate = Clock::now();
    if (asCtrl) {
        ctrlByName_[name] = g.id;
    } else {
        groups_.at(g.parent).monChildren[name] = g.id;
    }
    groups_[g.id] = std::move(g);
    invalidate();
    return 0;
}

int Model::rmdir(const char* path) {
    auto node = resolve(path);
    if (!node) {
        return -ENOENT;
    }
    if (!isDir(node->kind)) {
        return -ENOTDIR;
    }
    if (node->kind != Kind::GroupDir || node->group == kRoot) {
        return -EPERM;
    }
    Group& g = groups_.at(node->group);
    if (g.ctrl) {
        std::vector<GroupId> kids;
        for (auto& [n, id] : g.monChildren) {
            kids.push_back(id);
        }
        for (GroupId k : kids) {
            removeMon(k);
        }
        rewrite([&](Assign& a) {
            if (a.ctrl == g.id) {
                a = Assign{};
            }
        });
        freeRmid(g.closid, g.rmid);
        ctrlByName_.erase(g.name);
        groups_.erase(node->group);
    } else {
        removeMon(g.id);
    }
    invalidate();
    return 0;
}

void Model::removeMon(GroupId id) {
    Group& g = groups_.at(id);
    rewrite([&](Assign& a) {
        if (a.mon == id) {
            a.mon = 0;
        }
    });
    freeRmid(g.closid, g.rmid);
    groups_.at(g.parent).monChildren.erase(g.name);
    groups_.erase(id);
}

// ------------------------------------------------------------ files

int Model::writeFile(const Node& n, const std::string& data, pid_t callerPid, uid_t callerUid) {
    if (!groupExists(n.group)) {
        return -ENODEV;
    }
    if (data.size() > 4096) {
        return -E2BIG;
    }
    if (n.name == "tasks") {
        return writeTasks(n.group, data, callerPid, callerUid);
    }
    lastCmd_.clear();
    Group& g = groups_.at(n.group);
    if (n.name == "cpus" || n.name == "cpus_list") {
        g.cpus = trim(data) + "\n";
    } else if (n.name == "schemata") {
        g.schemata = data;
    } else if (n.name == "mode") {
        std::string m = trim(data);
        if (m != "shareable" && m != "exclusive" && m != "pseudo-locksetup") {
            lastCmd_ = "Unknown or unsupported mode\n";
            return -EINVAL;
        }
        g.mode = m;
    }
    return 0;
}

std::string Model::content(const Node& n, pid_t callerPid) {
    switch (n.kind) {
    case Kind::InfoFile:
        return infoFiles().at(n.name);
    case Kind::CounterFile:
        return counterContent(n);
    case Kind::GroupFile: {
        const Group& g = groups_.at(n.group);
        if (n.name == "tasks") {
            return tasksContent(n.group, callerPid);
        }
        if (n.name == "cpus") {
            return g.cpus;
        }
        if (n.name == "cpus_list") {
            return n.group == kRoot ? rootCpuList() : "\n";
        }
        if (n.name == "schemata") {
            return g.schemata;
        }
        if (n.name == "mode") {
            return g.mode + "\n";
        }
        if (n.name == "size") {
            std::string s = "    L3:";
            for (unsigned d = 0; d < opts_.l3Domains; ++d) {
                s += (d ? ";" : "") + std::to_string(d) + "=" + std::to_string(1048576 * 20);
            }
            return s + "\n";
        }
        return {};
    }
    default:
        return {};
    }
}

// ------------------------------------------------------------ counters

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
            // ~1 GB/s total and 0.6 GB/s local per task, more on higher units.
            const double f = static_cast<double>(u + 1);
            unit.bytes[0] += n * us * 1000 * f;
            unit.bytes[1] += n * us * 600 * f;
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
        size_t n = it == m.ownCount.end() ? 0 : it->second;
        return static_cast<uint64_t>(n) * 65536 * static_cast<uint64_t>(unit + 1);
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
    auto sumOf = [&](Group& grp) {
        uint64_t v = 0;
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
    return std::to_string(sum) + "\n";
}

// ------------------------------------------------------------ fixed contents

std::string Model::rootCpus() const {
    unsigned n = static_cast<unsigned>(std::max(1L, ::sysconf(_SC_NPROCESSORS_CONF)));
    std::string s;
    // hex mask of n CPUs
    unsigned full = n / 4;
    unsigned rest = n % 4;
    if (rest) {
        s += "0123456789abcdef"[(1u << rest) - 1];
    }
    s.append(full, 'f');
    return s + "\n";
}

std::string Model::rootCpuList() const {
    long n = std::max(1L, ::sysconf(_SC_NPROCESSORS_CONF));
    return n == 1 ? "0\n" : "0-" + std::to_string(n - 1) + "\n";
}

std::string Model::defaultSchemata() const {
    std::string s = "L3:";
    for (unsigned d = 0; d < opts_.l3Domains; ++d) {
        if (d != 0) {
            s += ';';
        }
        s += std::to_string(d);
        s += "=fffff";
    }
    return s + "\n";
}

} // namespace rdtmon::emu
