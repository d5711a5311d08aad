#pragma once

// What `rdtmonctl selftest` found: the node as resctrl and rdtmond describe it, and one
// line per check with its evidence. Plain values, so that the formatting is unit-tested.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace rdtmon::ctl::selftest {

enum class Result { Pass, Fail, NotApplicable };
const char* resultName(Result r); // "pass", "fail", "not-applicable"

struct Check {
    std::string name; // a stable word: create-group, threads-moved, ...
    Result result = Result::Fail;
    std::string summary;               // one line
    std::vector<std::string> evidence; // what was seen, one fact per line
};

struct NodeFacts {
    std::string hostname;
    std::string kernel;   // uname -r
    std::string machine;  // uname -m
    std::string cpuModel; // /proc/cpuinfo
    std::string rdtmondVersion;
    std::string resctrlPath;
    std::string fsType;       // "resctrl", or "fuse.resctrl-emu" for the emulator
    std::string mountOptions; // the mount's and the superblock's, as mountinfo gives them
    bool emulated = false;    // not the kernel's resctrl: it sees no memory traffic
    uint32_t numRmids = 0;
    std::vector<std::string> monFeatures;
    std::vector<std::string> telemetryFeatures;
    std::vector<std::string> l3Domains; // mon_L3_00, ...
    unsigned sncNodes = 1;              // SNC nodes per L3 domain (1: SNC off)
    std::map<uint32_t, uint64_t> l3CacheBytes;
    std::string assignMode; // in force (mbm_assign_mode), "" before Linux 6.18
    std::string numMbmCounters;
    std::string availableMbmCounters;
    std::vector<std::string> closes; // "/" and every other CTRL_MON group
};

struct Report {
    NodeFacts node;
    std::vector<Check> checks;
    std::string stopped;                 // why the run ended early (a signal, rdtmond gone), or ""
    std::vector<std::string> leftBehind; // groups it could not remove, for rdtmond's start
    // Every check passed or was not applicable, and the run was not stopped.
    bool passed() const;
};

// The node part of the human report, a few lines.
std::string formatNode(const NodeFacts& n);
// One check as a line (and its evidence, indented, when verbose or failed).
std::string formatCheck(const Check& c, bool verbose);
// The closing line: how many passed, failed, were not applicable.
std::string formatSummary(const Report& r);
nlohmann::json reportJson(const Report& r);

} // namespace rdtmon::ctl::selftest
