#pragma once

#include "ContainerSource.h"
#include "GroupRegistry.h"

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace rdtmon {

// A running container with no group, as its runtime's files describe it, with the labels
// its annotations give.
struct AdoptCandidate {
    RuntimeContainer container;
    Labels labels;
};

// Decides which owned groups are stale, and which running containers have none and could be
// adopted. Bus-free and resctrl-free: it only reads the sources and the runtimes' state
// files; the caller removes and adopts.
class GarbageCollector {
public:
    struct Decision {
        bool sourcesOk = true;             // false: some source failed, nothing may be removed
        std::vector<std::string> failures; // one line per failed source, for the log
        std::vector<std::string> stale;    // ids to remove (empty when !sourcesOk)
        std::size_t liveContainers = 0;    // union of all sources' ids
        // Containers listed with neither a group nor a record, whose runtime's files make
        // them candidates for adoption (GroupManager::adopt() checks their pid before
        // any write), in id order; and the others with why not (ids without a record only).
        std::vector<AdoptCandidate> adoptable;
        std::map<std::string, std::string> notAdoptable;
        // Every id the sources list, and what the runtimes' files say about those without a
        // record (adoptable or not): for the runtime-made groups.
        std::set<std::string> listed;
        std::map<std::string, RuntimeContainer> described;
    };

    GarbageCollector(std::vector<std::unique_ptr<ContainerSource>> sources,
                     std::chrono::seconds grace);

    // A record is stale when it is not pending, not a self-test's (isSelftestId), older than
    // grace at nowUsec (realtime), and its id is in none of the sources' lists. A listed
    // container with a self-test's id is never adoptable.
    Decision decide(const std::vector<GroupRecord>& owned, uint64_t nowUsec) const;

private:
    std::vector<std::unique_ptr<ContainerSource>> sources_;
    std::chrono::seconds grace_;
};

} // namespace rdtmon
