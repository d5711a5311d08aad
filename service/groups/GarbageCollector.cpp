#include "GarbageCollector.h"

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
    for (const auto& source : sources_) {
        try {
            std::set<std::string> ids = source->list();
            live.merge(ids);
        } catch (const std::exception& e) {
            d.sourcesOk = false;
            d.failures.push_back(source->describe() + ": " + e.what());
        }
    }
    d.liveContainers = live.size();
    if (!d.sourcesOk) {
        return d;
    }
    const auto graceUsec =
        static_cast<uint64_t>(grace_.count() < 0 ? 0 : grace_.count()) * 1000000u;
    for (const auto& r : owned) {
        if (r.pending) {
            continue; // being created right now, or resolved at start-up
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
