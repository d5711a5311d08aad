#include "CgroupPaths.h"

#include "Errors.h"
#include "FileIo.h"
#include "Text.h"
#include "UniqueFd.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <fcntl.h>
#include <filesystem>
#include <unistd.h>

namespace rdtmon {
namespace {

std::vector<std::string> splitOn(std::string_view s, char sep) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos <= s.size()) {
        std::size_t end = s.find(sep, pos);
        if (end == std::string_view::npos) {
            end = s.size();
        }
        out.emplace_back(s.substr(pos, end - pos));
        pos = end + 1;
    }
    return out;
}

// The preference among v1 hierarchies: one every container runtime puts a container in
// first; name=systemd last (a runtime may leave it shared).
int v1Rank(const std::vector<std::string>& controllers) {
    static constexpr std::array<std::string_view, 8> kOrder = {
        "pids", "memory", "cpu", "cpuacct", "cpuset", "blkio", "devices", "freezer"};
    int best = static_cast<int>(kOrder.size()) + 1;
    for (const std::string& c : controllers) {
        for (std::size_t i = 0; i < kOrder.size(); ++i) {
            if (c == kOrder[i]) {
                best = std::min(best, static_cast<int>(i));
            }
        }
        if (c == "name=systemd") {
            best = std::max(best, static_cast<int>(kOrder.size()) + 2);
        }
    }
    return best;
}

// mountPoint + path below the mount's root, or nullopt when path is not under it.
std::optional<std::string> dirUnder(const CgroupMount& m, const std::string& path) {
    std::string rel;
    if (m.root == "/") {
        rel = path;
    } else if (path == m.root) {
        rel = "/";
    } else if (path.size() > m.root.size() && path.compare(0, m.root.size(), m.root) == 0 &&
               path[m.root.size()] == '/') {
        rel = path.substr(m.root.size());
    } else {
        return std::nullopt;
    }
    if (rel == "/") {
        return m.mountPoint;
    }
    return (m.mountPoint == "/" ? std::string() : m.mountPoint) + rel;
}

bool hasDotDot(const std::string& path) {
    for (const std::string& c : splitOn(path, '/')) {
        if (c == "..") {
            return true;
        }
    }
    return false;
}

} // namespace

std::optional<std::vector<ProcCgroupEntry>> parseProcCgroup(std::string_view text) {
    std::vector<ProcCgroupEntry> out;
    for (const std::string& line : splitOn(text, '\n')) {
        if (line.empty()) {
            continue;
        }
        const std::size_t a = line.find(':');
        const std::size_t b = a == std::string::npos ? a : line.find(':', a + 1);
        if (b == std::string::npos) {
            return std::nullopt;
        }
        ProcCgroupEntry e;
        auto [p, ec] = std::from_chars(line.data(), line.data() + a, e.hierarchy);
        if (ec != std::errc() || p != line.data() + a || a == 0) {
            return std::nullopt;
        }
        if (b > a + 1) {
            e.controllers = splitOn(std::string_view(line).substr(a + 1, b - a - 1), ',');
        }
        e.path = line.substr(b + 1);
        if (e.path.empty() || e.path.front() != '/') {
            return std::nullopt;
        }
        out.push_back(std::move(e));
    }
    return out;
}

std::vector<CgroupMount> parseCgroupMounts(std::string_view mountinfo) {
    std::vector<CgroupMount> out;
    for (const std::string& line : splitOn(mountinfo, '\n')) {
        std::vector<std::string_view> f = splitSpaces(line);
        // id parent maj:min root mountpoint options [optional...] - fstype source superopts
        auto dash = std::find(f.begin(), f.end(), std::string_view("-"));
        if (f.size() < 6 || dash == f.end() || f.end() - dash < 4 || dash - f.begin() < 6) {
            continue;
        }
        const std::string_view fstype = *(dash + 1);
        if (fstype != "cgroup" && fstype != "cgroup2") {
            continue;
        }
        CgroupMount m;
        m.root = unescapeMountField(f[3]);
        m.mountPoint = unescapeMountField(f[4]);
        m.v2 = fstype == "cgroup2";
        if (m.root.empty() || m.root.front() != '/' || m.mountPoint.empty() ||
            m.mountPoint.front() != '/') {
            continue;
        }
        if (!m.v2) {
            m.options = splitOn(*(dash + 3), ',');
        }
        out.push_back(std::move(m));
    }
    return out;
}

std::vector<CgroupDirChoice> containerCgroupDirs(std::string_view procCgroup,
                                                 std::string_view mountinfo) {
    std::vector<CgroupDirChoice> out;
    std::optional<std::vector<ProcCgroupEntry>> entries = parseProcCgroup(procCgroup);
    if (!entries) {
        return out;
    }
    const std::vector<CgroupMount> mounts = parseCgroupMounts(mountinfo);
    auto usable = [](const std::string& path) { return path != "/" && !hasDotDot(path); };
    for (const ProcCgroupEntry& e : *entries) {
        if (e.hierarchy == 0 && e.controllers.empty() && usable(e.path)) {
            for (const CgroupMount& m : mounts) {
                if (m.v2) {
                    if (auto dir = dirUnder(m, e.path)) {
                        out.push_back({*dir, e.path});
                        break;
                    }
                }
            }
        }
    }
    // v1: each hierarchy with a non-root path and a mount that shows it, best-ranked first.
    std::vector<std::pair<int, CgroupDirChoice>> v1;
    for (const ProcCgroupEntry& e : *entries) {
        if (e.controllers.empty() || !usable(e.path)) {
            continue;
        }
        for (const CgroupMount& m : mounts) {
            if (m.v2) {
                continue;
            }
            // The mount of this hierarchy carries all of its controllers as options.
            bool all = true;
            for (const std::string& c : e.controllers) {
                all = all && std::find(m.options.begin(), m.options.end(), c) != m.options.end();
            }
            if (!all) {
                continue;
            }
            if (auto dir = dirUnder(m, e.path)) {
                v1.push_back({v1Rank(e.controllers), {*dir, e.path}});
                break;
            }
        }
    }
    std::stable_sort(v1.begin(), v1.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [rank, choice] : v1) {
        out.push_back(std::move(choice));
    }
    return out;
}

std::optional<std::string> containerCgroupDir(std::string_view procCgroup,
                                              std::string_view mountinfo) {
    std::vector<CgroupDirChoice> all = containerCgroupDirs(procCgroup, mountinfo);
    if (all.empty()) {
        return std::nullopt;
    }
    return all.front().dir;
}

std::optional<std::vector<pid_t>> cgroupProcs(const std::string& dir, int& err) {
    ReadResult r = readPath(dir + "/cgroup.procs");
    if (r.err != 0) {
        err = r.err;
        return std::nullopt;
    }
    err = 0;
    return parseTaskList(r.text);
}

std::string cgroupToFollow(pid_t pid, std::string& whyNot) {
    const std::string ps = std::to_string(pid);
    ReadResult mi = readPath("/proc/self/mountinfo");
    ReadResult pc = readPath("/proc/" + ps + "/cgroup");
    ReadResult own = readPath("/proc/self/cgroup");
    if (mi.err != 0 || pc.err != 0) {
        whyNot = "cannot read /proc/" + ps +
                 "/cgroup or mountinfo: " + errnoText(mi.err != 0 ? mi.err : pc.err);
        return "";
    }
    std::optional<std::string> dir = containerCgroupDir(pc.text, mi.text);
    if (!dir) {
        whyNot = "process " + ps + " is in no cgroup of its own (root cgroup, or none mounted)";
        return "";
    }
    if (own.err == 0) {
        if (std::optional<std::string> mine = containerCgroupDir(own.text, mi.text);
            mine && *mine == *dir) {
            whyNot = "process " + ps + " shares rdtmond's cgroup " + *dir;
            return "";
        }
    }
    int err = 0;
    std::optional<std::vector<pid_t>> procs = cgroupProcs(*dir, err);
    if (!procs) {
        whyNot = "cannot read " + *dir + "/cgroup.procs: " + errnoText(err);
        return "";
    }
    if (procs->size() != 1 || procs->front() != pid) {
        whyNot = "cgroup " + *dir + " holds " + std::to_string(procs->size()) +
                 " process(es), not only the container's init " + ps +
                 ": not a cgroup of the container's own";
        return "";
    }
    return *dir;
}

} // namespace rdtmon

namespace rdtmon {

std::string cgroupOfAdopted(pid_t pid, const std::vector<std::string>& runtimeDirs,
                            const std::string& runtimePath, std::string& whyNot) {
    const std::string ps = std::to_string(pid);
    ReadResult mi = readPath("/proc/self/mountinfo");
    ReadResult pc = readPath("/proc/" + ps + "/cgroup");
    ReadResult own = readPath("/proc/self/cgroup");
    if (mi.err != 0 || pc.err != 0) {
        whyNot = "cannot read /proc/" + ps +
                 "/cgroup or mountinfo: " + errnoText(mi.err != 0 ? mi.err : pc.err);
        return "";
    }
    std::optional<std::string> mine;
    if (own.err == 0) {
        mine = containerCgroupDir(own.text, mi.text);
    }
    auto lexical = [](const std::string& p) {
        return std::filesystem::path(p).lexically_normal().string();
    };
    for (const CgroupDirChoice& c : containerCgroupDirs(pc.text, mi.text)) {
        if (mine && *mine == c.dir) {
            continue; // rdtmond's own cgroup is never a container's
        }
        const bool byDir = std::any_of(runtimeDirs.begin(), runtimeDirs.end(), [&](const auto& d) {
            return !d.empty() && lexical(d) == lexical(c.dir);
        });
        const bool byPath =
            !runtimePath.empty() && runtimePath != "/" && lexical(runtimePath) == lexical(c.path);
        if (byDir || byPath) {
            return c.dir;
        }
    }
    std::string recorded = runtimePath;
    for (const std::string& d : runtimeDirs) {
        recorded += (recorded.empty() ? "" : ", ") + d;
    }
    whyNot = "process " + ps + " is not in the cgroup its runtime recorded (" +
             (recorded.empty() ? "none" : recorded) + ")";
    return "";
}

} // namespace rdtmon
