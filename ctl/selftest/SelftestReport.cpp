#include "SelftestReport.h"

#include <sstream>

namespace rdtmon::ctl::selftest {

namespace {

std::string joined(const std::vector<std::string>& v, const char* sep = " ") {
    std::string out;
    for (const std::string& s : v) {
        if (!out.empty()) {
            out += sep;
        }
        out += s;
    }
    return out.empty() ? "none" : out;
}

std::string mib(uint64_t bytes) {
    std::ostringstream o;
    o << static_cast<double>(bytes) / (1024.0 * 1024.0);
    return o.str() + " MiB";
}

} // namespace

const char* resultName(Result r) {
    switch (r) {
    case Result::Pass:
        return "pass";
    case Result::Fail:
        return "fail";
    case Result::NotApplicable:
        return "not-applicable";
    }
    return "fail";
}

bool Report::passed() const {
    if (!stopped.empty()) {
        return false;
    }
    for (const Check& c : checks) {
        if (c.result == Result::Fail) {
            return false;
        }
    }
    return true;
}

std::string formatNode(const NodeFacts& n) {
    std::string s = "rdtmon self-test on " + n.hostname + ": Linux " + n.kernel + " (" + n.machine +
                    "), " + (n.cpuModel.empty() ? "CPU unknown" : n.cpuModel) + "\n";
    s += "rdtmond " + n.rdtmondVersion + ", resctrl at " + n.resctrlPath + " (" + n.fsType +
         (n.mountOptions.empty() ? "" : ", " + n.mountOptions) + ")" +
         (n.emulated ? ": an emulator, not the kernel's" : "") + "\n";
    s += "  RMIDs: ";
    s += std::to_string(n.numRmids);
    s += "; events: " + joined(n.monFeatures) + "\n";
    s += "  L3 domains: " + joined(n.l3Domains);
    if (!n.l3CacheBytes.empty()) {
        std::vector<std::string> sizes;
        for (const auto& [id, bytes] : n.l3CacheBytes) {
            sizes.push_back(std::to_string(id) + "=" + mib(bytes));
        }
        s += " (L3 " + joined(sizes, ", ") + ")";
    }
    s += "; SNC: ";
    s += n.sncNodes > 1 ? std::to_string(n.sncNodes) + " nodes per domain" : std::string("off");
    s += "\n  counters: ";
    if (n.assignMode.empty()) {
        s += "always on (no mbm_assign_mode)";
    } else {
        s += "mode " + n.assignMode;
        if (!n.numMbmCounters.empty()) {
            s += ", " + n.numMbmCounters + " per domain";
        }
        if (!n.availableMbmCounters.empty()) {
            s += ", free " + n.availableMbmCounters;
        }
    }
    s += "; telemetry: " + joined(n.telemetryFeatures);
    s += "; CLOSes: " + joined(n.closes) + "\n";
    return s;
}

std::string formatCheck(const Check& c, bool verbose) {
    static const std::map<Result, const char*> kTag = {
        {Result::Pass, "PASS"}, {Result::Fail, "FAIL"}, {Result::NotApplicable, "N/A "}};
    std::string name = c.name;
    if (name.size() < 20) {
        name.resize(20, ' ');
    }
    std::string s = std::string(kTag.at(c.result)) + "  " + name + " " + c.summary + "\n";
    if (verbose || c.result == Result::Fail) {
        for (const std::string& e : c.evidence) {
            s += "      " + e + "\n";
        }
    }
    return s;
}

std::string formatSummary(const Report& r) {
    unsigned pass = 0;
    unsigned fail = 0;
    unsigned na = 0;
    for (const Check& c : r.checks) {
        (c.result == Result::Pass ? pass : c.result == Result::Fail ? fail : na) += 1;
    }
    std::string s;
    if (!r.stopped.empty()) {
        s += "stopped: " + r.stopped + "\n";
    }
    if (!r.leftBehind.empty()) {
        s += "left for rdtmond's next start to remove: " + joined(r.leftBehind) + "\n";
    }
    s += r.passed() ? "result: PASS" : "result: FAIL";
    s += " (" + std::to_string(pass) + " passed, " + std::to_string(fail) + " failed, " +
         std::to_string(na) + " not applicable)\n";
    return s;
}

nlohmann::json reportJson(const Report& r) {
    const NodeFacts& n = r.node;
    nlohmann::json node = {{"hostname", n.hostname},
                           {"kernel", n.kernel},
                           {"machine", n.machine},
                           {"cpu_model", n.cpuModel},
                           {"rdtmond_version", n.rdtmondVersion},
                           {"resctrl_path", n.resctrlPath},
                           {"fs_type", n.fsType},
                           {"mount_options", n.mountOptions},
                           {"emulated", n.emulated},
                           {"num_rmids", n.numRmids},
                           {"mon_features", n.monFeatures},
                           {"telemetry_features", n.telemetryFeatures},
                           {"l3_domains", n.l3Domains},
                           {"snc_nodes_per_domain", n.sncNodes},
                           {"mbm_assign_mode", n.assignMode},
                           {"num_mbm_cntrs", n.numMbmCounters},
                           {"available_mbm_cntrs", n.availableMbmCounters},
                           {"closes", n.closes}};
    nlohmann::json sizes = nlohmann::json::object();
    for (const auto& [id, bytes] : n.l3CacheBytes) {
        sizes[std::to_string(id)] = bytes;
    }
    node["l3_cache_bytes"] = sizes;
    nlohmann::json checks = nlohmann::json::array();
    for (const Check& c : r.checks) {
        checks.push_back({{"name", c.name},
                          {"result", resultName(c.result)},
                          {"summary", c.summary},
                          {"evidence", c.evidence}});
    }
    return {{"node", node},
            {"checks", checks},
            {"stopped", r.stopped.empty() ? nlohmann::json() : nlohmann::json(r.stopped)},
            {"left_behind", r.leftBehind},
            {"passed", r.passed()}};
}

} // namespace rdtmon::ctl::selftest
