#pragma once

#include "ContainerSource.h"
#include "GroupRegistry.h"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace rdtmon {

// Decides which owned groups are stale. Bus-free and resctrl-free: it only reads the
// sources; the caller removes what it returns.
class GarbageCollector {
public:
    struct Decision {
        bool sourcesOk = true;             // false: some source failed, nothing may be removed
        std::vector<std::string> failures; // one line per failed source, for the log
        std::vector<std::string> stale;    // ids to remove (empty when !sourcesOk)
        std::size_t liveContainers = 0;    // union of all sources' ids
    };

    GarbageCollector(std::vector<std::unique_ptr<ContainerSource>> sources,
                     std::chrono::seconds grace);

    // A record is stale when it is not pending, older than grace at nowUsec (realtime), and
    // its id is in none of the sources' lists.
    Decision decide(const std::vector<GroupRecord>& owned, uint64_t nowUsec) const;

private:
    std::vector<std::unique_ptr<ContainerSource>> sources_;
    std::chrono::seconds grace_;
};

} // namespace rdtmon
