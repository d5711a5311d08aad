#pragma once

// Which cgroup directory a container lives in, from /proc/PID/cgroup and
// /proc/self/mountinfo: the parsers are pure functions over text (unit-tested, fuzzed),
// and cgroupToFollow() adds the reads and the rule of which cgroups rdtmond follows.

#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace rdtmon {

// One line of /proc/PID/cgroup: "ID:CONTROLLERS:PATH" ("0::/path" for cgroup2).
struct ProcCgroupEntry {
    unsigned hierarchy = 0;
    std::vector<std::string> controllers; // "cpu", "cpuacct", "name=systemd"; none for cgroup2
    std::string path;                     // relative to the hierarchy's root, starts with '/'
};
// nullopt when any line is not of that shape.
std::optional<std::vector<ProcCgroupEntry>> parseProcCgroup(std::string_view text);

// A cgroup mount from mountinfo.
struct CgroupMount {
    std::string root;                 // the hierarchy's directory mounted there ("/" usually)
    std::string mountPoint;           // octal escapes undone
    bool v2 = false;                  // fstype cgroup2 (else cgroup)
    std::vector<std::string> options; // v1: the super options (controllers, name=...)
};
// Every mount of type cgroup or cgroup2; malformed lines are skipped.
std::vector<CgroupMount> parseCgroupMounts(std::string_view mountinfo);

// A process's cgroup directory in one hierarchy: where it is mounted here (dir) and its
// path relative to the hierarchy's root (path, as /proc/PID/cgroup shows it).
struct CgroupDirChoice {
    std::string dir;
    std::string path;
};
// Every cgroup directory of the process that is not a hierarchy's root and is mounted here,
// in the order of preference containerCgroupDir() uses (cgroup2, then v1 by rank).
std::vector<CgroupDirChoice> containerCgroupDirs(std::string_view procCgroup,
                                                 std::string_view mountinfo);

// The directory of the container's cgroup: the cgroup2 one when the process's "0::" path
// is not "/" and a cgroup2 hierarchy is mounted; else the first v1 hierarchy, in a fixed
// preference (pids, memory, cpu, cpuacct, cpuset, blkio, devices, freezer, then any other,
// name=systemd last), where the process is not at the root and which is mounted with a root
// that contains its path. nullopt when there is none.
std::optional<std::string> containerCgroupDir(std::string_view procCgroup,
                                              std::string_view mountinfo);

// The cgroup dir rdtmond follows for the init process pid, or "" with the reason in whyNot:
// followed only when it is dedicated to the container (not the root, not rdtmond's own
// cgroup, and its cgroup.procs lists pid and nothing else, as it does at createRuntime).
// Never throws.
std::string cgroupToFollow(pid_t pid, std::string& whyNot);

// The cgroup dir rdtmond follows for the init pid of a running container it adopts, or ""
// with the reason in whyNot: the first of containerCgroupDirs() that its runtime recorded,
// as an absolute dir (runc's cgroup_paths) or a hierarchy-relative path (crun's
// cgroup-path), and that is not rdtmond's own. Unlike cgroupToFollow(), the cgroup may
// hold other processes: a running container has started them. Never throws.
std::string cgroupOfAdopted(pid_t pid, const std::vector<std::string>& runtimeDirs,
                            const std::string& runtimePath, std::string& whyNot);

// The processes (cgroup.procs) of a cgroup dir, or nullopt with errno in err when it
// cannot be read (ENOENT: the cgroup is gone).
std::optional<std::vector<pid_t>> cgroupProcs(const std::string& dir, int& err);

} // namespace rdtmon
