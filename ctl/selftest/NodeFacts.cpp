#include "NodeFacts.h"

#include <algorithm>
#include <dirent.h>
#include <fstream>
#include <sstream>
#include <sys/utsname.h>
#include <unistd.h>

namespace rdtmon::ctl::selftest {

namespace {

std::vector<std::string> linesOf(std::string_view text) {
    std::vector<std::string> out;
    std::istringstream in{std::string(text)};
    for (std::string line; std::getline(in, line);) {
        if (!line.empty()) {
            out.push_back(line);
        }
    }
    return out;
}

std::vector<std::string> dirNames(const std::string& dir) {
    std::vector<std::string> out;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (const dirent* e = ::readdir(d)) {
            if (e->d_name[0] != '.') {
                out.emplace_back(e->d_name);
            }
        }
        ::closedir(d);
    }
    std::sort(out.begin(), out.end());
    return out;
}

bool isDir(const std::string& path) {
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) {
        return false;
    }
    ::closedir(d);
    return true;
}

// mountinfo escapes blanks and backslashes in paths as octal.
std::string unescape(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size()) {
            const std::string oct(s.substr(i + 1, 3));
            if (oct.find_first_not_of("01234567") == std::string::npos) {
                out += static_cast<char>(std::stoi(oct, nullptr, 8));
                i += 3;
                continue;
            }
        }
        out += s[i];
    }
    return out;
}

} // namespace

std::string readText(const std::string& path) {
    std::ifstream in(path);
    if (!in) {
        return "";
    }
    std::ostringstream o;
    o << in.rdbuf();
    std::string s = o.str();
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
        s.pop_back();
    }
    return s;
}

std::optional<MountEntry> findMount(std::string_view mountinfo, const std::string& path) {
    std::optional<MountEntry> found;
    for (const std::string& line : linesOf(mountinfo)) {
        std::istringstream f(line);
        std::vector<std::string> fields;
        for (std::string w; f >> w;) {
            fields.push_back(w);
        }
        const auto dash = std::find(fields.begin(), fields.end(), "-");
        if (fields.size() < 6 || dash == fields.end() || fields.end() - dash < 3) {
            continue;
        }
        if (unescape(fields[4]) != path) {
            continue;
        }
        MountEntry m;
        m.fsType = *(dash + 1);
        m.options = fields[5];
        if (dash + 3 != fields.end() && *(dash + 3) != fields[5]) {
            m.options += " (" + *(dash + 3) + ")";
        }
        found = m;
    }
    return found;
}

std::string cpuModelOf(std::string_view cpuinfo) {
    for (const std::string& line : linesOf(cpuinfo)) {
        const auto colon = line.find(':');
        if (colon == std::string::npos) {
            continue;
        }
        std::string key = line.substr(0, colon);
        while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) {
            key.pop_back();
        }
        if (key == "model name" || key == "Hardware") {
            std::string v = line.substr(colon + 1);
            v.erase(0, v.find_first_not_of(' '));
            return v;
        }
    }
    return "";
}

std::string assignModeOf(std::string_view text) {
    for (const std::string& line : linesOf(text)) {
        if (line.size() > 2 && line.front() == '[' && line.back() == ']') {
            return line.substr(1, line.size() - 2);
        }
    }
    return "";
}

NodeFacts gatherNodeFacts(const client::Status& status) {
    NodeFacts n;
    utsname u{};
    if (::uname(&u) == 0) {
        n.hostname = u.nodename;
        n.kernel = u.release;
        n.machine = u.machine;
    }
    n.cpuModel = cpuModelOf(readText("/proc/cpuinfo"));
    n.rdtmondVersion = status.version;
    n.resctrlPath = status.resctrlPath;
    n.numRmids = status.numRmids;
    n.monFeatures = status.monFeatures;
    n.telemetryFeatures = status.telemetryFeatures;
    n.l3CacheBytes = status.l3CacheSizes;
    if (std::optional<MountEntry> m = findMount(readText("/proc/self/mountinfo"), n.resctrlPath)) {
        n.fsType = m->fsType;
        n.mountOptions = m->options;
    } else {
        n.fsType = "not visible to rdtmonctl";
    }
    // Only the kernel's resctrl sees the hardware; the emulator is a FUSE file system.
    n.emulated = n.fsType != "resctrl";
    const std::string mon = n.resctrlPath + "/info/L3_MON/";
    n.assignMode = assignModeOf(readText(mon + "mbm_assign_mode"));
    n.numMbmCounters = readText(mon + "num_mbm_cntrs");
    n.availableMbmCounters = readText(mon + "available_mbm_cntrs");
    for (const std::string& d : dirNames(n.resctrlPath + "/mon_data")) {
        if (d.rfind("mon_L3_", 0) != 0) {
            continue;
        }
        n.l3Domains.push_back(d);
        unsigned sub = 0;
        for (const std::string& s : dirNames(n.resctrlPath + "/mon_data/" + d)) {
            sub += s.rfind("mon_sub_L3_", 0) == 0 ? 1 : 0;
        }
        n.sncNodes = std::max(n.sncNodes, sub);
    }
    n.closes.push_back("/");
    for (const std::string& d : dirNames(n.resctrlPath)) {
        if (d != "info" && d != "mon_groups" && d != "mon_data" && isDir(n.resctrlPath + "/" + d)) {
            n.closes.push_back("/" + d);
        }
    }
    return n;
}

} // namespace rdtmon::ctl::selftest
