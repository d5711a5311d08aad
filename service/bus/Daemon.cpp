#include "Daemon.h"

#include "Clock.h"
#include "CollectionRunner.h"
#include "ContainerSource.h"
#include "CountersReader.h"
#include "Errors.h"
#include "GarbageCollector.h"
#include "GroupManager.h"
#include "GroupRegistry.h"
#include "Log.h"
#include "ManagerObject.h"
#include "Names.h"
#include "Resctrl.h"
#include "ResctrlLocator.h"
#include "rdtmon/version.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <ctime>
#include <optional>
#include <poll.h>
#include <pthread.h>
#include <sdbus-c++/sdbus-c++.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

namespace rdtmon {

Daemon::Daemon(Config cfg, std::string stateDir)
    : cfg_(std::move(cfg)), stateDir_(std::move(stateDir)) {}

Daemon::~Daemon() {
    // Whatever is torn down below must not reach the D-Bus objects any more.
    events_ = nullptr;
}

int Daemon::mountOnly(const Config& cfg) {
    // resctrl.mount (and --no-mount) hold here too: with mounting off this only looks, so
    // that the unit's ExecStartPre=+ never mounts what the configuration says to leave alone.
    ResctrlLocator loc(cfg, cfg.mount);
    std::string why;
    if (std::optional<std::string> p = loc.locate(why)) {
        log::info("resctrl is mounted at " + *p);
        return 0;
    }
    if (!cfg.mount) {
        log::notice("resctrl not mounted: " + why);
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

bool Daemon::setup() {
    // Signals are handled through a signalfd; block them before any thread starts.
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &mask, nullptr) != 0) {
        log::error("cannot block signals");
        return false;
    }
    sigfd_.reset(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
    timerfd_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    waitTimerfd_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (!sigfd_ || !timerfd_ || !waitTimerfd_) {
        log::error(std::string("cannot create signalfd/timerfd: ") + std::strerror(errno));
        return false;
    }

    registry_ = std::make_unique<GroupRegistry>(stateDir_);
    GroupRegistry::LoadResult lr = registry_->load();
    if (lr.movedAsideTo) {
        std::string aside;
        for (const std::string& f : lr.movedAside) {
            aside += (aside.empty() ? "" : " and ") + f;
        }
        log::error("state files in " + stateDir_ + " were unreadable (" + lr.problem +
                   "); moved aside to " + aside +
                   "; starting with no records: groups they listed are left alone");
    }
    if (lr.tornJournalTail) {
        log::warning("the last line of " + stateDir_ +
                     "/groups.journal was cut short by a crash; ignored (its call never "
                     "returned)");
    }

    gc_ = std::make_unique<GarbageCollector>(makeSources(cfg_.sources), cfg_.gcGrace);
    locator_ = std::make_unique<ResctrlLocator>(cfg_, cfg_.mount);

    conn_ = sdbus::createSystemBusConnection();
    GroupManager::Events events;
    events.created = [this](const GroupRecord& r) {
        countersDue_ = true;
        if (events_ != nullptr) {
            events_->onCreated(r);
        }
    };
    events.waiting = [this](const GroupRecord& r) {
        if (events_ != nullptr) {
            events_->onWaiting(r);
        }
    };
    events.removed = [this](const GroupRecord& r, RemoveReason why) {
        countersDue_ = true; // it may have freed assignable counters
        if (events_ != nullptr) {
            events_->onRemoved(r, why);
        }
    };
    events.availabilityChanged = [this] {
        if (events_ != nullptr) {
            events_->onAvailabilityChanged();
        }
    };
    events.coverageChanged = [this](const std::string& id) {
        if (events_ != nullptr) {
            events_->onCoverageChanged(id);
        }
    };
    mgr_ = std::make_unique<GroupManager>(
        [this](std::string& why) -> std::unique_ptr<Resctrl> {
            std::optional<std::string> path = locator_->locate(why);
            if (!path) {
                return nullptr;
            }
            return std::make_unique<Resctrl>(*path);
        },
        *registry_, std::move(events));
    mgr_->setWaitForRmid(cfg_.waitForRmid);
    mgr_->setEndGrace(cfg_.exitGrace);
    mgr_->setCounterSettings(cfg_.counters);

    collector_ = std::make_unique<CollectionRunner>(*mgr_, *gc_);
    reader_ = std::make_unique<CountersReader>(*mgr_);
    manager_ = std::make_unique<ManagerObject>(
        *conn_, *mgr_, *reader_,
        [this](CollectionRunner::Reply reply) { collector_->request(std::move(reply)); });
    events_ = manager_.get();
    return true;
}

void Daemon::start() {
    // Objects first, then the name: a client that sees the name finds everything in place.
    manager_->holdSignals();
    mgr_->start();
    manager_->publishExisting();
    conn_->requestName(kBusName);
    manager_->releaseSignals();
    const std::size_t waiting = mgr_->waitingContainers().size();
    log::info(std::string("rdtmond ") + RDTMON_VERSION + " ready on the system bus as " + kBusName +
              "; " + std::to_string(mgr_->groups().size()) + " group(s) owned; " +
              (waiting > 0 ? std::to_string(waiting) + " container(s) waiting for an RMID; "
                           : std::string()) +
              (mgr_->supported() ? "monitoring supported" : "monitoring NOT supported"));
    // Containers that waited across a restart get the RMIDs that are free before the first
    // call is served, and their GroupCreated goes to whoever watches the name.
    serviceWaiting();
    sd_notify(0, (std::string("READY=1\nSTATUS=serving ") + kBusName).c_str());

    itimerspec its{};
    its.it_value.tv_sec = cfg_.gcInterval.count();
    its.it_interval.tv_sec = cfg_.gcInterval.count();
    timerfd_settime(timerfd_.get(), 0, &its, nullptr);
    collector_->request(nullptr); // the start-up collection
}

bool Daemon::onSignal() {
    signalfd_siginfo si{};
    if (::read(sigfd_.get(), &si, sizeof si) != static_cast<ssize_t>(sizeof si)) {
        return false;
    }
    if (si.ssi_signo == SIGHUP) {
        log::info("SIGHUP ignored: restart the service to reload its configuration");
        return false;
    }
    log::info(std::string("stopping on ") + strsignal(static_cast<int>(si.ssi_signo)) +
              "; groups stay in resctrl, they belong to running containers");
    return true;
}

void Daemon::serviceWaiting() {
    if (mgr_->grantDue()) {
        mgr_->grantWaiting();
    }
    if (mgr_->grantPasses() == grantPassesSeen_) {
        return; // no pass since the timer was last set: it stays as it is
    }
    grantPassesSeen_ = mgr_->grantPasses();
    itimerspec its{}; // all zero: disarmed
    if (std::optional<std::chrono::milliseconds> d = mgr_->retryDelay()) {
        its.it_value.tv_sec = static_cast<time_t>(d->count() / 1000);
        its.it_value.tv_nsec = static_cast<long>(d->count() % 1000) * 1000000L;
    }
    timerfd_settime(waitTimerfd_.get(), 0, &its, nullptr);
}

int Daemon::loop() {
    bool stopping = false;
    while (!stopping) {
        while (conn_->processPendingRequest()) {
            manager_->reapObjects();
        }
        // After the calls are answered: the grants to waiting containers, then the resyncs
        // of groups just made or granted and of cgroups joined since the last iteration (one
        // per group). Calls that came meanwhile are served before the loop sleeps, so that
        // nothing they mark waits for the next wake-up.
        for (bool again = true; again;) {
            serviceWaiting();
            again = mgr_->resyncPending() > 0;
            while (conn_->processPendingRequest()) {
                manager_->reapObjects();
                again = true;
            }
        }
        manager_->reapObjects();
        sdbus::IConnection::PollData pd = conn_->getEventLoopPollData();
        pollfd fds[8] = {
            {pd.fd, pd.events, 0},
            {sigfd_.get(), POLLIN, 0},
            {timerfd_.get(), POLLIN, 0},
            {collector_->fd(), POLLIN, 0},
            {waitTimerfd_.get(), POLLIN, 0},
            {mgr_->followFd(), POLLIN, 0}, // -1 (ignored by poll) without a watcher
            {reader_->fd(), POLLIN, 0},
            {mgr_->endFd(), POLLIN, 0}, // -1 (ignored) until a group exists
        };
        // A retry of a refused joiner (GroupManager::retryTimeoutMs) shortens the wait; with
        // none pending the loop sleeps as before.
        int timeout = pd.getPollTimeout();
        // So do the poll for joins that write no cgroup.procs (while any cgroup is
        // followed), the looks at and removals of ended containers (while any are due),
        // queued adoptions (one per turn, the calls that came meanwhile first) and a look at
        // the assignable counters after a change.
        const int adoptDue = mgr_->adoptionsQueued() || countersDue_ ? 0 : -1;
        // And the end of a turn at the assignable counters.
        int turnDue = -1;
        if (const uint64_t at = mgr_->countersDueUsec(); at != 0) {
            const uint64_t now = monotonicUsec();
            turnDue = at <= now
                          ? 0
                          : static_cast<int>(std::min<uint64_t>((at - now + 999) / 1000, 60'000));
        }
        for (const int due : {mgr_->retryTimeoutMs(), mgr_->joinPollTimeoutMs(),
                              reader_->timeoutMs(), mgr_->endTimeoutMs(), adoptDue, turnDue}) {
            if (due >= 0) {
                timeout = timeout < 0 ? due : std::min(timeout, due);
            }
        }
        int r = ::poll(fds, 8, timeout);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            log::error(std::string("poll: ") + std::strerror(errno));
            return 1;
        }
        if (fds[1].revents & POLLIN) {
            stopping = onSignal();
        }
        if (fds[2].revents & POLLIN) {
            uint64_t ticks = 0;
            (void)!::read(timerfd_.get(), &ticks, sizeof ticks);
            if (!collector_->running()) {
                collector_->request(nullptr);
            }
        }
        if (fds[3].revents & POLLIN) {
            collector_->finish();
            manager_->reapObjects(); // the collected are gone before the next call is served
            // The safety net of following, at each collection (the timer's, start-up's and
            // GarbageCollect()'s): joins neither an event nor the join poll told of.
            mgr_->resyncAll();
            countersDue_ = true; // also after an operator changed the mode or assignments
        }
        if (fds[4].revents & POLLIN) {
            uint64_t ticks = 0;
            (void)!::read(waitTimerfd_.get(), &ticks, sizeof ticks);
            mgr_->requestGrant();
        }
        if (fds[5].revents & POLLIN) {
            mgr_->onFollowEvents();
        }
        if (fds[6].revents & POLLIN) {
            reader_->finish(); // answers the readers of the pass that just ended
            manager_->reapObjects();
        }
        if (fds[7].revents & POLLIN) {
            mgr_->onEndEvents();
        }
        mgr_->runDueEnds();
        mgr_->runDueRetries();
        mgr_->runDueJoinPoll();
        reader_->runDue();
        // One reader per iteration: calls that came meanwhile go first (CountersReader.h).
        reader_->answerNext();
        mgr_->adoptNext();
        mgr_->runCounters(monotonicUsec(), countersDue_);
        countersDue_ = false;
    }
    return 0;
}

void Daemon::stop() {
    sd_notify(0, "STOPPING=1");
    try {
        conn_->releaseName(kBusName);
    } catch (const std::exception&) {
        // The bus may already be gone; nothing to undo.
    }
    events_ = nullptr;
    // Leave every record in groups.json: an older rdtmond started next reads no journal.
    try {
        if (registry_->journalLines() > 0) {
            registry_->compact();
        }
    } catch (const std::exception& e) {
        log::warning(std::string("cannot compact the group records (the next start does): ") +
                     e.what());
    }
}

int Daemon::run() {
    if (!setup()) {
        return 1;
    }
    start();
    const int exitCode = loop();
    stop();
    return exitCode;
}

} // namespace rdtmon
