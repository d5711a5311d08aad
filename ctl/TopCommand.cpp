// rdtmonctl top: a bulk read, then every interval another one and the rates between them.

#include "Commands.h"

#include <csignal>
#include <ctime>
#include <pthread.h>

namespace rdtmon::ctl {

namespace {

// One reading: the bulk counters between two ListGroups (and ListRuntimeGroups, for the
// groups runtimes made), so that a group made anew while the counters were read has no
// creation time and hence no rate (rather than a rate across two different groups).
struct Reading {
    client::Snapshot snapshot;
    client::CreatedTimes created;
    client::ClosOf closOf;
};

// The owned groups, then those runtimes made (never under the id of an owned one).
std::vector<client::GroupInfo> groupsOf(client::BusClient& bus) {
    std::vector<client::GroupInfo> out = bus.listGroups();
    for (client::GroupInfo& g : bus.runtimeGroups()) {
        out.push_back(std::move(g));
    }
    return out;
}

Reading read(client::BusClient& bus, const std::string& resctrlPath) {
    Reading r;
    const auto before = groupsOf(bus);
    r.snapshot = bus.allCounters();
    const auto after = groupsOf(bus);
    std::map<std::string, uint64_t> first;
    for (const auto& g : before) {
        first.emplace(g.id, g.createdUsec);
    }
    for (const auto& g : after) {
        const auto it = first.find(g.id);
        if (it != first.end() && it->second == g.createdUsec) {
            r.created.emplace(g.id, g.createdUsec);
        }
        if (auto clos = client::closOfGroup(g.resctrlPath, g.id, resctrlPath)) {
            r.closOf.emplace(g.id, *clos);
        }
    }
    return r;
}

// SIGINT and SIGTERM held back while top runs; the waits between reads take them.
class HeldSignals {
public:
    HeldSignals() {
        sigemptyset(&set_);
        sigaddset(&set_, SIGINT);
        sigaddset(&set_, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set_, &old_);
    }
    ~HeldSignals() {
        // A signal still pending is taken here, not delivered with its default action.
        timespec zero{};
        while (sigtimedwait(&set_, nullptr, &zero) > 0) {
        }
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    HeldSignals(const HeldSignals&) = delete;
    HeldSignals& operator=(const HeldSignals&) = delete;

    // Waits `seconds`; false when a signal ended the wait.
    bool sleep(double seconds) {
        timespec end{};
        clock_gettime(CLOCK_MONOTONIC, &end);
        const auto ns = static_cast<long long>(seconds * 1e9);
        end.tv_sec += static_cast<time_t>(ns / 1'000'000'000);
        end.tv_nsec += static_cast<long>(ns % 1'000'000'000);
        if (end.tv_nsec >= 1'000'000'000) {
            ++end.tv_sec;
            end.tv_nsec -= 1'000'000'000;
        }
        for (;;) {
            timespec now{};
            clock_gettime(CLOCK_MONOTONIC, &now);
            long long left = (static_cast<long long>(end.tv_sec) - now.tv_sec) * 1'000'000'000 +
                             (end.tv_nsec - now.tv_nsec);
            if (left <= 0) {
                return true;
            }
            const timespec wait{static_cast<time_t>(left / 1'000'000'000),
                                static_cast<long>(left % 1'000'000'000)};
            const int sig = sigtimedwait(&set_, nullptr, &wait);
            if (sig > 0) {
                return false;
            }
            // EAGAIN: the time is up; EINTR: another signal, wait on.
        }
    }

private:
    sigset_t set_{};
    sigset_t old_{};
};

} // namespace

void runTop(client::BusClient& bus, const TopSettings& settings, std::ostream& out, bool terminal) {
    HeldSignals signals;
    const client::Status status = bus.status();
    const std::string& resctrlPath = status.resctrlPath;
    const client::CacheSizes caches = client::cacheSizesOf(status.l3CacheSizes);
    Reading prev = read(bus, resctrlPath);
    for (long i = 0; settings.iterations == 0 || i < settings.iterations; ++i) {
        if (!signals.sleep(settings.delaySeconds)) {
            return;
        }
        Reading cur = read(bus, resctrlPath);
        const client::RateReport report =
            client::computeRates(prev.snapshot, prev.created, cur.snapshot, cur.created);
        if (settings.json) {
            out << topJson(report, cur.closOf, settings.view, cur.snapshot.monotonicUsec, caches)
                       .dump()
                << "\n";
        } else {
            const std::string text =
                settings.view.by == TopBy::Domain
                    ? domainText(report, cur.closOf, settings.view, caches)
                    : topText(buildTop(report, cur.closOf, settings.view), settings.view.perDomain);
            // Clear the screen only on a terminal; a pipe or file gets frames one after
            // another, a blank line apart.
            out << (terminal ? "\033[H\033[2J" : (i > 0 ? "\n" : "")) << text;
        }
        out.flush();
        prev = std::move(cur);
    }
}

} // namespace rdtmon::ctl
