// rdtmond: owns per-container resctrl monitoring groups and serves them on the system bus.
// This file only reads the command line and the configuration; Daemon does the rest.

#include "Config.h"
#include "Daemon.h"

#include "Log.h"
#include "rdtmon/version.h"

#include <iostream>
#include <optional>
#include <sdbus-c++/sdbus-c++.h>
#include <string>
#include <sys/resource.h>

using namespace rdtmon;

namespace {

struct Options {
    std::string configPath = "/etc/rdtmon/rdtmond.json";
    std::optional<std::string> resctrlPath;
    std::string stateDir = "/run/rdtmon";
    bool noMount = false;
    bool mountOnly = false;
};

void usage(std::ostream& out) {
    out << "usage: rdtmond [--config FILE] [--resctrl PATH] [--state-dir DIR] [--no-mount]\n"
           "               [--mount-only] [--version] [--help]\n"
           "  --config FILE     JSON configuration (default /etc/rdtmon/rdtmond.json;\n"
           "                    a missing file means defaults)\n"
           "  --resctrl PATH    use this resctrl mount (default: find it, or mount\n"
           "                    /sys/fs/resctrl)\n"
           "  --state-dir DIR   where owned groups are recorded (default /run/rdtmon)\n"
           "  --no-mount        never mount resctrl\n"
           "  --mount-only      mount resctrl if needed, then exit (for ExecStartPre=+)\n";
}

// Parses argv; returns an exit code to stop with, or nullopt to go on.
std::optional<int> parseArgs(int argc, char** argv, Options& o) {
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto is = [&](const char* name) {
            return a == name || a.rfind(std::string(name) + "=", 0) == 0;
        };
        // The value of --name=VALUE or --name VALUE; false (reported) when there is none.
        auto value = [&](const char* name, std::string& out) {
            std::string prefix = std::string(name) + "=";
            if (a.rfind(prefix, 0) == 0) {
                out = a.substr(prefix.size());
            } else if (i + 1 < argc) {
                out = argv[++i];
            } else {
                std::cerr << "rdtmond: " << name << " needs a value\n";
                return false;
            }
            return true;
        };
        if (a == "--help" || a == "-h") {
            usage(std::cout);
            return 0;
        } else if (a == "--version") {
            std::cout << "rdtmond " << RDTMON_VERSION << "\n";
            return 0;
        } else if (a == "--no-mount") {
            o.noMount = true;
        } else if (a == "--mount-only") {
            o.mountOnly = true;
        } else if (is("--config")) {
            if (!value("--config", o.configPath)) {
                return 2;
            }
        } else if (is("--resctrl")) {
            if (!value("--resctrl", o.resctrlPath.emplace())) {
                return 2;
            }
        } else if (is("--state-dir")) {
            if (!value("--state-dir", o.stateDir)) {
                return 2;
            }
        } else {
            std::cerr << "rdtmond: unknown argument '" << a << "'\n";
            usage(std::cerr);
            return 2;
        }
    }
    return std::nullopt;
}

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
    Options opt;
    if (std::optional<int> rc = parseArgs(argc, argv, opt)) {
        return *rc;
    }
    Config cfg;
    try {
        cfg = loadConfig(opt.configPath);
    } catch (const std::exception& e) {
        log::error("configuration " + opt.configPath + ": " + e.what());
        return 1;
    }
    if (opt.resctrlPath) {
        cfg.resctrlPath = *opt.resctrlPath;
        cfg.resctrlPathExplicit = true;
    }
    cfg.mount = cfg.mount && !opt.noMount;
    try {
        if (opt.mountOnly) {
            return Daemon::mountOnly(cfg);
        }
        raiseFileLimit();
        Daemon daemon(std::move(cfg), opt.stateDir);
        return daemon.run();
    } catch (const sdbus::Error& e) {
        log::error("D-Bus: " + e.getName() + ": " + e.getMessage());
    } catch (const std::exception& e) {
        log::error(std::string("fatal: ") + e.what());
    }
    return 1;
}
