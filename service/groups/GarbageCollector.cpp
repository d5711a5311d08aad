#include "GarbageCollector.h"

#include "ContainerId.h"

#include <algorithm>
#include <exception>
#include <set>

namespace rdtmon {

GarbageCollector::GarbageCollector(std::vector<std::unique_ptr<ContainerSource>> sources,
                                   std::chrono::seconds grace)
    : sources_(std::move(sources)), grace_(grace) {}

GarbageCollector::Decision GarbageCollector::decide(const std::vector<GroupRecord>& owned,
                                                    uint64_t nowUsec) const {
    Decision d;
    if (sources_.empty()) {
        // With no source every container would look gone: that is not knowledge.
        d.sourcesOk = false;
        d.failures.push_back("no container sources are configured; nothing is collected");
        return d;
    }
    std::set<std::string> live;
    std::set<std::string> known;
    for (const GroupRecord& r : owned) {
        known.insert(r.id);
    }
    for (const auto& source : sources_) {
        try {
            std::set<std::string> ids = source->list();
            // Those with neither a group nor a record (waiting, pending): what does the
            // runtime say about them? Even when another source failed: adopting is safe.
            std::set<std::string> unknown;
            for (const std::string& id : ids) {
                if (known.count(id) != 0 || live.count(id) != 0) {
                    continue;
                }
                if (isSelftestId(id)) {
                    // The prefix is rdtmonctl selftest's: a group under it would be treated
                    // as a self-test's (no cgroup followed, removed at rdtmond's start).
                    std::string why = "its id starts with ";
                    why += kSelftestIdPrefix;
                    why += ", which is reserved for rdtmonctl selftest";
                    d.notAdoptable[id] = std::move(why);
                    continue;
                }
                unknown.insert(id);
            }
            for (RuntimeContainer& c : source->inspect(unknown, d.notAdoptable)) {
                d.described.emplace(c.id, c);
                if (std::optional<std::string> why = notAdoptableReason(c)) {
                    d.notAdoptable[c.id] = *why;
                    continue;
                }
                try {
                    Labels labels = runtimeLabels(c);
                    d.adoptable.push_back({std::move(c), std::move(labels)});
                } catch (const std::exception& e) {
                    d.notAdoptable[c.id] = e.what();
                }
            }
            live.merge(ids);
        } catch (const std::exception& e) {
            d.sourcesOk = false;
            d.failures.push_back(source->describe() + ": " + e.what());
        }
    }
    std::sort(d.adoptable.begin(), d.adoptable.end(),
              [](const AdoptCandidate& a, const AdoptCandidate& b) {
                  return a.container.id < b.container.id;
              });
    d.liveContainers = live.size();
    d.listed = live;
    if (!d.sourcesOk) {
        return d;
    }
    const auto graceUsec =
        static_cast<uint64_t>(grace_.count() < 0 ? 0 : grace_.count()) * 1000000u;
    for (const auto& r : owned) {
        if (r.pending) {
            continue; // being created right now, or resolved at start-up
        }
        if (isSelftestId(r.id)) {
            continue; // no runtime ever lists a self-test; its end or rdtmonctl removes it
        }
        // A record from the future (the clock was stepped back) is not old: keep it.
        if (r.createdUsec > nowUsec || nowUsec - r.createdUsec < graceUsec) {
            continue;
        }
        if (live.count(r.id) == 0) {
            d.stale.push_back(r.id);
        }
    }
    return d;
}

} // namespace rdtmon
