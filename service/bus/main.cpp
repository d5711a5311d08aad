// rdtmond: owns per-container resctrl monitoring groups and serves them on the system bus.
// This file only reads the command line (CLI11) and the configuration; Daemon does the rest.

#include "Config.h"
#include "Daemon.h"

#include "Log.h"
#include "rdtmon/version.h"

#include <CLI/CLI.hpp>
#include <iostream>
#include <optional>
#include <sdbus-c++/sdbus-c++.h>
#include <string>
#include <sys/resource.h>

using namespace rdtmon;

namespace {

// GetAllCounters keeps each group's counter files open between calls (six per group with
// two domains); the usual soft limit of 1024 would allow that for a few dozen groups only.
// Nothing here uses select(2), so the soft limit can be the hard one.
void raiseFileLimit() {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &lim);
    }
}

} // namespace

int main(int argc, char** argv) {
    std::string configPath = "/etc/rdtmon/rdtmond.json";
    std::optional<std::string> resctrlPath;
    std::string stateDir = "/run/rdtmon";
    bool noMount = false;
    bool mountOnly = false;
    CLI::App app{"Owns per-container resctrl monitoring groups and serves them on the system "
                 "bus as org.rdtmon1.",
                 "rdtmond"};
    app.add_option("--config", configPath, "JSON configuration (a missing file means the defaults)")
        ->capture_default_str();
    app.add_option("--resctrl", resctrlPath,
                   "use this resctrl mount (default: find it, or mount resctrl.path)");
    app.add_option("--state-dir", stateDir, "where owned groups are recorded")
        ->capture_default_str();
    app.add_flag("--no-mount", noMount, "never mount resctrl");
    app.add_flag("--mount-only", mountOnly,
                 "mount resctrl if needed and resctrl.mount allows it, then exit "
                 "(for ExecStartPre=+)");
    app.set_version_flag("--version", std::string("rdtmond ") + RDTMON_VERSION);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int rc = app.exit(e);
        return rc == 0 ? 0 : 2;
    }

    Config cfg;
    try {
        cfg = loadConfig(configPath);
    } catch (const std::exception& e) {
        log::error("configuration " + configPath + ": " + e.what());
        return 1;
    }
    if (resctrlPath) {
        cfg.resctrlPath = *resctrlPath;
        cfg.resctrlPathExplicit = true;
    }
    cfg.mount = cfg.mount && !noMount;
    try {
        if (mountOnly) {
            return Daemon::mountOnly(cfg);
        }
        raiseFileLimit();
        Daemon daemon(std::move(cfg), stateDir);
        return daemon.run();
    } catch (const sdbus::Error& e) {
        log::error("D-Bus: " + e.getName() + ": " + e.getMessage());
    } catch (const std::exception& e) {
        log::error(std::string("fatal: ") + e.what());
    }
    return 1;
}
