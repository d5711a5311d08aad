#pragma once

// rdtmond's wiring: the one object that owns what the service runs on (the bus connection,
// the registry, the manager, the collector, the counters reader, the D-Bus objects) and its
// event loop. One thread runs the loop (bus, signals, the collector's timer, the RMID retry
// timer, the join poll); the others are short-lived workers: the collector's, and the
// counters reader's with the pool its read pass uses. None of them mutates resctrl.
//
// Life cycle: setup() -> start() -> loop() -> stop(); run() does all four. Destruction
// tears down in the reverse order of setup.

#include "Config.h"
#include "UniqueFd.h"

#include <cstdint>
#include <memory>
#include <string>

namespace sdbus {
class IConnection;
}

namespace rdtmon {

class CollectionRunner;
class CountersReader;
class GarbageCollector;
class GroupManager;
class GroupRegistry;
class ManagerObject;
class ResctrlLocator;

class Daemon {
public:
    Daemon(Config cfg, std::string stateDir);
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // --mount-only: mounts resctrl if needed and allowed, then returns the exit code (0 also
    // when the kernel has no resctrl: the service then starts and says Supported=false).
    static int mountOnly(const Config& cfg);

    // Blocks the signals (before any thread exists), loads the registry, connects to the
    // system bus and builds the objects. False, with the reason logged, when the loop's own
    // fds cannot be made. Throws on anything else.
    bool setup();
    // Start-up reconcile, objects published, then the bus name, READY=1, the collection
    // timer and the start-up collection.
    void start();
    // Serves until SIGTERM or SIGINT (returns 0) or until poll fails (returns 1).
    int loop();
    // STOPPING=1 and the bus name released. Groups stay: they belong to running containers.
    void stop();

    int run();

private:
    // Reads one signal: true when it asks the service to stop.
    bool onSignal();
    // Gives waiting containers their groups when something may have freed an RMID, and arms
    // the retry timer only while they meet RMIDs in limbo.
    void serviceWaiting();

    Config cfg_;
    std::string stateDir_;
    // Declared in the order setup() makes them: destroyed in reverse.
    UniqueFd sigfd_;
    UniqueFd timerfd_;
    UniqueFd waitTimerfd_; // retries for containers waiting on RMIDs in limbo
    uint64_t grantPassesSeen_ = 0;
    // A group was made or removed, or a collection ran, since the last look at the
    // assignable counters (GroupManager::runCounters).
    bool countersDue_ = true;
    std::unique_ptr<GroupRegistry> registry_;
    std::unique_ptr<GarbageCollector> gc_;
    std::unique_ptr<ResctrlLocator> locator_;
    std::unique_ptr<sdbus::IConnection> conn_;
    std::unique_ptr<GroupManager> mgr_;
    std::unique_ptr<CollectionRunner> collector_;
    std::unique_ptr<CountersReader> reader_;
    std::unique_ptr<ManagerObject> manager_;
    // Where GroupManager's events go; null before the objects exist and after stop().
    ManagerObject* events_ = nullptr;
};

} // namespace rdtmon
