// rdtmond: owns per-container resctrl monitoring groups and serves them on the system bus.
//
// One thread runs the event loop (bus, signals, the collector's timer); the only other
// thread is a short-lived worker that lists the container sources for a collection, so a
// slow `crictl` never holds up a CreateGroup.

#include "CollectionRunner.h"
#include "Config.h"
#include "ContainerSource.h"
#include "Errors.h"
#include "GarbageCollector.h"
#include "GroupManager.h"
#include "GroupRegistry.h"
#include "Log.h"
#include "ManagerObject.h"
#include "Names.h"
#include "Resctrl.h"
#include "ResctrlLocator.h"
#include "UniqueFd.h"
#include "rdtmon/version.h"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <iostream>
#include <optional>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>
#include <thread>
#include <unistd.h>

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
        auto value = [&](const char* name) -> std::optional<std::string> {
            std::string prefix = std::string(name) + "=";
            if (a.rfind(prefix, 0) == 0) {
                return a.substr(prefix.size());
            }
            if (i + 1 < argc) {
                return std::string(argv[++i]);
            }
            std::cerr << "rdtmond: " << name << " needs a value\n";
            return std::nullopt;
        };
        auto is = [&](const char* name) {
            return a == name || a.rfind(std::string(name) + "=", 0) == 0;
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
            auto v = value("--config");
            if (!v) {
                return 2;
            }
            o.configPath = *v;
        } else if (is("--resctrl")) {
            auto v = value("--resctrl");
            if (!v) {
                return 2;
            }
            o.resctrlPath = *v;
        } else if (is("--state-dir")) {
            auto v = value("--state-dir");
            if (!v) {
                return 2;
            }
            o.stateDir = *v;
        } else {
            std::cerr << "rdtmond: unknown argument '" << a << "'\n";
            usage(std::cerr);
            return 2;
        }
    }
    return std::nullopt;
}

int mountOnly(const Config& cfg) {
    ResctrlLocator loc(cfg, true);
    std::string why;
    if (std::optional<std::string> p = loc.locate(why)) {
        log::info("resctrl is mounted at " + *p);
        return 0;
    }
    if (loc.mountFailure() == ErrorKind::NotSupported) {
        // No kernel support: the service still starts and reports Supported=false.
        log::warning("resctrl not mounted: " + why);
        return 0;
    }
    log::error("cannot mount resctrl: " + why);
    return 1;
}

int run(const Options& opt, Config cfg) {
    // Signals are handled through a signalfd; block them before any thread starts.
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &mask, nullptr) != 0) {
        log::error("cannot block signals");
        return 1;
    }
    UniqueFd sigfd(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
    UniqueFd timerfd(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (!sigfd || !timerfd) {
        log::error(std::string("cannot create signalfd/timerfd: ") + std::strerror(errno));
        return 1;
    }

    GroupRegistry registry(opt.stateDir);
    GroupRegistry::LoadResult lr = registry.load();
    if (lr.movedAsideTo) {
        log::error("state file in " + opt.stateDir + " was unreadable (" + lr.problem +
                   "); moved aside to " + *lr.movedAsideTo +
                   "; starting with no records: groups it listed are left alone");
    }

    GarbageCollector gc(makeSources(cfg.sources), cfg.gcGrace);
    ResctrlLocator locator(cfg, cfg.mount && !opt.noMount);

    std::unique_ptr<sdbus::IConnection> conn = sdbus::createSystemBusConnection();
    ManagerObject* managerObj = nullptr;
    GroupManager::Events events;
    events.created = [&](const GroupRecord& r) {
        if (managerObj != nullptr) {
            managerObj->onCreated(r);
        }
    };
    events.removed = [&](const GroupRecord& r, RemoveReason why) {
        if (managerObj != nullptr) {
            managerObj->onRemoved(r, why);
        }
    };
    events.availabilityChanged = [&] {
        if (managerObj != nullptr) {
            managerObj->onAvailabilityChanged();
        }
    };
    GroupManager mgr(
        [&](std::string& why) -> std::unique_ptr<Resctrl> {
            std::optional<std::string> path = locator.locate(why);
            if (!path) {
                return nullptr;
            }
            return std::make_unique<Resctrl>(*path);
        },
        registry, events);

    CollectionRunner collector(mgr, gc);
    ManagerObject manager(
        *conn, mgr, [&](CollectionRunner::Reply reply) { collector.request(std::move(reply)); });
    managerObj = &manager;

    // Objects first, then the name: a client that sees the name finds everything in place.
    manager.holdSignals();
    mgr.start();
    manager.publishExisting();
    conn->requestName(kBusName);
    manager.releaseSignals();
    log::info(std::string("rdtmond ") + RDTMON_VERSION + " ready on the system bus as " + kBusName +
              "; " + std::to_string(mgr.groups().size()) + " group(s) owned; " +
              (mgr.supported() ? "monitoring supported" : "monitoring NOT supported"));
    sd_notify(0, (std::string("READY=1\nSTATUS=serving ") + kBusName).c_str());

    itimerspec its{};
    its.it_value.tv_sec = cfg.gcInterval.count();
    its.it_interval.tv_sec = cfg.gcInterval.count();
    timerfd_settime(timerfd.get(), 0, &its, nullptr);
    collector.request(nullptr); // the start-up collection

    int exitCode = 0;
    bool stop = false;
    while (!stop) {
        while (conn->processPendingRequest()) {
            manager.reapObjects();
        }
        manager.reapObjects();
        sdbus::IConnection::PollData pd = conn->getEventLoopPollData();
        pollfd fds[4] = {
            {pd.fd, pd.events, 0},
            {sigfd.get(), POLLIN, 0},
            {timerfd.get(), POLLIN, 0},
            {collector.fd(), POLLIN, 0},
        };
        int r = ::poll(fds, 4, pd.getPollTimeout());
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            log::error(std::string("poll: ") + std::strerror(errno));
            exitCode = 1;
            break;
        }
        if (fds[1].revents & POLLIN) {
            signalfd_siginfo si{};
            if (::read(sigfd.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
                if (si.ssi_signo == SIGHUP) {
                    log::info("SIGHUP ignored: restart the service to reload its configuration");
                } else {
                    log::info(std::string("stopping on ") +
                              strsignal(static_cast<int>(si.ssi_signo)) +
                              "; groups stay in resctrl, they belong to running containers");
                    stop = true;
                }
            }
        }
        if (fds[2].revents & POLLIN) {
            uint64_t ticks = 0;
            (void)!::read(timerfd.get(), &ticks, sizeof ticks);
            if (!collector.running()) {
                collector.request(nullptr);
            }
        }
        if (fds[3].revents & POLLIN) {
            collector.finish();
        }
    }
    sd_notify(0, "STOPPING=1");
    try {
        conn->releaseName(kBusName);
    } catch (const std::exception&) {
        // The bus may already be gone; nothing to undo.
    }
    managerObj = nullptr;
    return exitCode;
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
    if (opt.noMount) {
        cfg.mount = false;
    }
    try {
        if (opt.mountOnly) {
            return mountOnly(cfg);
        }
        return run(opt, std::move(cfg));
    } catch (const sdbus::Error& e) {
        log::error("D-Bus: " + e.getName() + ": " + e.getMessage());
    } catch (const std::exception& e) {
        log::error(std::string("fatal: ") + e.what());
    }
    return 1;
}
