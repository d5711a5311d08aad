// resctrl-emu: the tree's names (see Model.h): a path to its node, and a directory's
// entries.
#include "Model.h"

#include "Text.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <set>

namespace rdtmon::emu {

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

std::vector<std::string> Model::namesBelow(const std::map<std::string, std::string>& files,
                                           const std::string& dir) {
    // The next component of every file below dir: a file or a directory, each once.
    const std::string prefix = dir.empty() ? dir : dir + "/";
    std::set<std::string> names;
    for (const auto& [k, v] : files) {
        if (k.rfind(prefix, 0) == 0) {
            names.insert(k.substr(prefix.size(), k.find('/', prefix.size()) - prefix.size()));
        }
    }
    return {names.begin(), names.end()};
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
    if (!opts_.mbmAssign.empty()) {
        assignInfoFiles(f);
    }
    if (opts_.perfPkgs > 0) {
        f["PERF_PKG_MON/num_rmids"] = std::to_string(opts_.numRmids) + "\n";
        std::string features;
        for (const char* e : kPkgEventNames) {
            features += e;
            features += '\n';
        }
        f["PERF_PKG_MON/mon_features"] = features;
    }
    return f;
}

std::map<std::string, std::string> Model::sysFiles() const {
    std::map<std::string, std::string> f;
    for (unsigned d = 0; d < opts_.l3Domains; ++d) {
        std::string cpu = "devices/system/cpu/cpu";
        cpu += std::to_string(d);
        cpu += "/cache/";
        // cacheinfo's formats (drivers/base/cacheinfo.c): size in KiB with a K.
        f[cpu + "index0/level"] = "1\n";
        f[cpu + "index0/type"] = "Data\n";
        f[cpu + "index0/id"] = std::to_string(d) + "\n";
        f[cpu + "index0/size"] = "48K\n";
        f[cpu + "index3/level"] = "3\n";
        f[cpu + "index3/type"] = "Unified\n";
        f[cpu + "index3/id"] = std::to_string(d) + "\n";
        f[cpu + "index3/size"] = std::to_string(opts_.l3SizeKib) + "K\n";
    }
    return f;
}

const std::vector<std::string>& Model::groupFiles(bool ctrl) const {
    static const std::vector<std::string> ctrlF = {"tasks",    "cpus", "cpus_list",
                                                   "schemata", "mode", "size"};
    static const std::vector<std::string> monF = {"tasks", "cpus", "cpus_list"};
    // mbm_L3_assignments exists where counters are assignable, whatever the mode.
    static const std::vector<std::string> ctrlA = [] {
        auto v = ctrlF;
        v.push_back("mbm_L3_assignments");
        return v;
    }();
    static const std::vector<std::string> monA = [] {
        auto v = monF;
        v.push_back("mbm_L3_assignments");
        return v;
    }();
    if (cntrAssignable()) {
        return ctrl ? ctrlA : monA;
    }
    return ctrl ? ctrlF : monF;
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
    if (n > 0 && c[0] == kSysDirName) {
        std::string rel;
        for (size_t k = 1; k < n; ++k) {
            rel += (k == 1 ? "" : "/") + c[k];
        }
        const auto files = sysFiles();
        if (files.count(rel) != 0) {
            return Node{Kind::SysFile, 0, rel};
        }
        const std::string prefix = rel.empty() ? rel : rel + "/";
        auto it = files.lower_bound(prefix);
        if (it != files.end() && it->first.rfind(prefix, 0) == 0) {
            return Node{Kind::SysDir, 0, rel};
        }
        return std::nullopt;
    }
    if (n > 0 && c[0] == "info") {
        if (n == 1) {
            return Node{Kind::InfoDir};
        }
        // info/ is the files' names with their directories: "L3_MON/event_configs/...".
        std::string rel = c[1];
        for (size_t k = 2; k < n; ++k) {
            rel += "/" + c[k];
        }
        auto files = infoFiles();
        if (files.count(rel)) {
            return Node{Kind::InfoFile, 0, rel};
        }
        auto it = files.lower_bound(rel + "/");
        if (it != files.end() && it->first.rfind(rel + "/", 0) == 0) {
            return Node{Kind::InfoSubDir, 0, rel};
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
        const auto& files = groupFiles(grp.ctrl);
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
    for (unsigned p = 0; p < opts_.perfPkgs; ++p) {
        if (c[i] != pkgName(p)) {
            continue;
        }
        if (i + 1 == n) {
            return Node{Kind::PkgDir, g, {}, static_cast<int>(p)};
        }
        for (int e = 0; e < kPkgEvents; ++e) {
            if (i + 2 == n && c[i + 1] == kPkgEventNames[e]) {
                return Node{Kind::PkgFile, g, c[i + 1], static_cast<int>(p), -1, e};
            }
        }
        return std::nullopt;
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
        out = groupFiles(g.ctrl);
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
    case Kind::InfoSubDir:
        out = namesBelow(infoFiles(), node.kind == Kind::InfoDir ? "" : node.name);
        break;
    case Kind::SysDir:
        out = namesBelow(sysFiles(), node.name);
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
        for (unsigned p = 0; p < opts_.perfPkgs; ++p) {
            out.push_back(pkgName(p));
        }
        break;
    case Kind::PkgDir:
        for (const char* e : kPkgEventNames) {
            out.push_back(e);
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

} // namespace rdtmon::emu
