// resctrl-emu: the model's tree: mkdir/rmdir with CLOSIDs and RMIDs, file contents (see
// Model.h). Paths are resolved in ModelLookup.cpp, task membership is in ModelTasks.cpp,
// counters in ModelCounters.cpp, assignable counters in ModelAssign.cpp.
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
    root.cntr.resize(opts_.l3Domains);
    groups_[kRoot] = root;
    cntrsFree_.assign(opts_.l3Domains, opts_.numMbmCntrs);
    eventFilter_[0] = "local_reads,remote_reads,local_non_temporal_writes,"
                      "remote_non_temporal_writes,local_reads_slow_memory,"
                      "remote_reads_slow_memory,dirty_victim_writes_all";
    eventFilter_[1] = "local_reads,local_non_temporal_writes,local_reads_slow_memory";
    // At mount the default group gets its counters, as every later group at mkdir.
    assignEnabled_ = opts_.mbmAssign == "mbm_event" || opts_.mbmAssign == "fixed";
    if (assignEnabled_) {
        assignOnMkdir(groups_.at(kRoot));
    }
    RmidPool& pool = pools_[0];
    for (unsigned r = 1; r < opts_.numRmids; ++r) {
        pool.free.push_back(r);
    }
    selfNs_ = pidNsInode(0).value_or(0);
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
    g.cntr.resize(opts_.l3Domains);
    if (asCtrl) {
        ctrlByName_[name] = g.id;
    } else {
        groups_.at(g.parent).monChildren[name] = g.id;
    }
    const GroupId id = g.id;
    groups_[id] = std::move(g);
    if (assignEnabled_ && assignOnMkdir_) {
        assignOnMkdir(groups_.at(id));
    }
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
        freeCntrs(g);
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
    freeCntrs(g);
    freeRmid(g.closid, g.rmid);
    groups_.at(g.parent).monChildren.erase(g.name);
    groups_.erase(id);
}

// ------------------------------------------------------------ files

int Model::writeFile(const Node& n, const std::string& data, pid_t callerPid, uid_t callerUid) {
    if (data.size() > 4096) {
        return -E2BIG;
    }
    if (n.kind == Kind::InfoFile) {
        return writeInfo(n.name, data);
    }
    if (!groupExists(n.group)) {
        return -ENODEV;
    }
    if (n.name == "tasks") {
        return writeTasks(n.group, data, callerPid, callerUid);
    }
    lastCmd_.clear();
    Group& g = groups_.at(n.group);
    if (n.name == "mbm_L3_assignments") {
        return writeAssignments(g, data);
    }
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

int Model::read(const Node& n, pid_t callerPid, std::string& out) {
    if (int r = readAssign(n, out); r <= 0) {
        return r; // an assignment file: read, or refused
    }
    out = content(n, callerPid);
    return 0;
}

std::string Model::content(const Node& n, pid_t callerPid) {
    switch (n.kind) {
    case Kind::InfoFile:
        return infoFiles().at(n.name);
    case Kind::SysFile:
        return sysFiles().at(n.name);
    case Kind::CounterFile:
        return counterContent(n);
    case Kind::PkgFile:
        return pkgContent(n);
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
                if (d != 0) {
                    s += ';';
                }
                s += std::to_string(d);
                s += "=20971520"; // 20 MiB
            }
            return s + "\n";
        }
        return {};
    }
    default:
        return {};
    }
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
