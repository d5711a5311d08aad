#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace rdtmon {

struct SourceConfig {
    // Exactly one of the two is set.
    std::vector<std::string> stateDirs;              // glob patterns of OCI runtime state roots
    std::vector<std::string> command;                // argv, run without a shell
    std::chrono::milliseconds commandTimeout{10000}; // "timeoutSeconds" in the JSON
    // "adopt": running containers of these state roots that have no group get one at
    // start-up and at each collection. On by default; a command gives only ids and cannot.
    bool adopt = true;
};

// "counters": assignable counters in mbm_event mode (docs/configuration.md).
struct CountersConfig {
    // "events": the MBM events rdtmond counts for its groups; empty: every one the node has.
    // One event takes one counter per group and L3 domain: counting one fits twice as many.
    std::vector<std::string> events;
    // "cycleSeconds": when groups take turns, the cycle aimed at (each measured once).
    std::chrono::seconds cycle{50};
    // "pin": label sets; a group whose labels hold every pair of one set keeps its counters
    // all the time (up to maxPinned).
    std::vector<std::map<std::string, std::string>> pin;
    // "maxPinned": at most this many pinned groups hold counters all the time; 0: half of
    // what fits. One place is always left to the groups that take turns.
    unsigned maxPinned = 0;
};

struct Config {
    std::string resctrlPath = "/sys/fs/resctrl";
    bool resctrlPathExplicit = false; // the path was set in the file or on the command line
    bool mount = true;
    std::string mountOptions;
    std::chrono::seconds gcInterval{60};
    std::chrono::seconds gcGrace{30};
    // "groups.waitForRmid": a create that finds no free RMID (ENOSPC, or EBUSY while RMIDs
    // are in limbo) records the container as waiting instead of failing.
    bool waitForRmid = true;
    // "groups.exitGraceSeconds": how long the group of a container whose last task is gone
    // stays for its poststop hook (and a last read) before rdtmond removes it itself.
    std::chrono::seconds exitGrace{10};
    std::vector<SourceConfig> sources = defaultSources();
    CountersConfig counters;

    static std::vector<SourceConfig> defaultSources(); // the runc/containerd/crun state dirs
};

// Parses the JSON text of /etc/rdtmon/rdtmond.json. Every key is optional; unknown keys and
// wrong types throw Error(InvalidArgument) with the key's path named (e.g. "gc.intervalSeconds").
Config parseConfig(const std::string& text);
// Reads and parses a file; a missing file gives the defaults. Unreadable -> Error(Failed).
Config loadConfig(const std::string& path);

} // namespace rdtmon
