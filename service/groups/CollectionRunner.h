#pragma once

#include "GarbageCollector.h"
#include "GroupManager.h"
#include "GroupRegistry.h"
#include "UniqueFd.h"

#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace rdtmon {

// Runs collections without blocking the event loop: the container sources are listed by a
// worker thread on a snapshot of the records (a slow `crictl` never holds up a CreateGroup);
// the result is applied on the loop's thread when fd() becomes readable and the loop calls
// finish(). Requests arriving during a run wait for the next run, so every caller gets a
// collection that started after its call. Not thread-safe: request() and finish() are
// called from the loop's thread only.
class CollectionRunner {
public:
    // Called exactly once per request: the number of groups removed, or an error message.
    using Reply = std::function<void(unsigned removed, const std::string* error)>;

    CollectionRunner(GroupManager& mgr, GarbageCollector& gc);
    ~CollectionRunner(); // joins a running worker; its result is dropped
    CollectionRunner(const CollectionRunner&) = delete;
    CollectionRunner& operator=(const CollectionRunner&) = delete;

    // An eventfd, readable when the worker has decided.
    int fd() const { return done_.get(); }
    bool running() const { return worker_.joinable(); }

    // Starts a run now, or queues the reply for the run after the current one. A null
    // reply asks for a collection nobody waits for (start-up, the timer).
    void request(Reply reply);

    // Called when fd() is readable: applies the decision, answers the run's requests, and
    // starts the next run if requests are queued.
    void finish();

private:
    void startNext();

    GroupManager& mgr_;
    GarbageCollector& gc_;
    UniqueFd done_;
    std::thread worker_;
    // Written by the worker, read on the loop's thread after join().
    std::vector<GroupRecord> snapshot_;
    GarbageCollector::Decision decision_;
    std::optional<std::string> workerError_;
    std::vector<Reply> current_; // answered by the run in progress
    std::vector<Reply> next_;    // answered by the next run
};

} // namespace rdtmon
