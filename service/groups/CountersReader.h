#pragma once

// Counter reads that never hold up a create: GetAllCounters and GetCounters are answered
// by reads that run on a worker thread over a snapshot of the groups, taken when the read
// starts. The loop thread only takes the snapshot and answers; it never reads a counter
// file, so calls that mutate (AddContainer, RemoveGroup) are served while a read runs. One
// read runs at a time, and every reader gets one that started after its call:
// - a full pass (readAllCounters, every group) for GetAllCounters, shared by every reader
//   who asked before it started, at most one per kMinInterval: however many readers call
//   in a loop, rdtmond makes at most two passes a second;
// - for GetCounters, the groups asked for since the last read, each read once (a full pass
//   that starts first answers them too).
//
// A pass's readers are answered one per loop iteration (finish, then answerNext), so that a
// create that comes meanwhile waits behind one reply, not all of them. The worker runs at
// the service's CPU weight: a lower one would starve the reads on a saturated node, which
// is when they matter (docs/architecture.md, "Reads never hold up a create").
//
// Not thread-safe: every member is called from the loop's thread.

#include "Errors.h"
#include "GroupManager.h"
#include "UniqueFd.h"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace rdtmon {

class CountersReader {
public:
    static constexpr std::chrono::milliseconds kMinInterval{500};

    // The read a reader gets, or why there is none: the whole read failed (error), or one
    // group's (groupErrors); a group that is not in counters went away.
    struct Outcome {
        std::shared_ptr<const AllCounters> counters;
        std::optional<Error> error;
        std::map<std::string, Error> groupErrors;
    };
    using Reply = std::function<void(const Outcome&)>;

    explicit CountersReader(GroupManager& mgr,
                            std::chrono::milliseconds minInterval = kMinInterval);
    ~CountersReader(); // waits for a running pass; its readers are not answered
    CountersReader(const CountersReader&) = delete;
    CountersReader& operator=(const CountersReader&) = delete;

    // An eventfd, readable when the worker's pass is done: then call finish().
    int fd() const { return done_.get(); }
    bool running() const { return busy_; }
    uint64_t passes() const { return passes_; }

    // Queues reply for the next full pass, started now when no read runs and the last pass
    // started kMinInterval ago or more.
    void request(Reply reply);
    // Queues reply for a read of container id's group (started now when no read runs).
    void requestGroup(const std::string& id, Reply reply);
    // Milliseconds until a queued read may start or a reader is to be answered, -1 when
    // none waits for its turn (the loop's poll timeout; no wake-up at idle).
    int timeoutMs() const;
    // Starts the queued read when its turn has come.
    void runDue();
    // Settles the groups the read could not find, and answers its first reader.
    void finish();
    // Answers the next reader of a finished read; false when none is left.
    bool answerNext();

private:
    bool fullDue() const;
    void start(bool full);
    // Puts the sampled counts of rotating groups in a finished read and gives every count its
    // generation (CountGenerations), on the loop.
    void observeGenerations(AllCounters& read, bool full);
    void work(bool full); // on the worker thread
    void workerMain();

    GroupManager& mgr_;
    const uint64_t minIntervalUsec_;
    UniqueFd done_;
    bool busy_ = false; // a read was handed to the worker and not finished
    uint64_t passes_ = 0;
    uint64_t lastFullStartUsec_ = 0;
    bool runningFull_ = false;

    // The running pass: its inputs, taken on the loop; its outputs, read after join().
    std::shared_ptr<Resctrl> resctrl_;
    std::vector<GroupRecord> snapshot_;
    AllCounters result_;
    std::vector<GroupRecord> unread_;
    std::vector<RuntimeGroup> shown_; // the runtime-made groups of a full pass
    std::vector<std::string> shownUnread_;
    std::optional<Error> error_;
    std::map<std::string, Error> groupErrors_;
    // Kept open between passes, for as long as the same resctrl is in use.
    std::unique_ptr<CountersPass> pass_;
    const Resctrl* passFor_ = nullptr;

    // Finished reads' readers not answered yet, in order.
    std::deque<std::pair<std::shared_ptr<const Outcome>, Reply>> answering_;

    // The hand-over to the worker, started with the first read.
    std::mutex mu_;
    std::condition_variable cv_;
    std::optional<bool> job_; // a read to run: full or not
    bool stop_ = false;
    std::thread worker_;

    std::vector<Reply> current_;   // answered by the running read
    std::vector<Reply> nextFull_;  // by the next full pass
    std::vector<Reply> nextGroup_; // by the next read (a full pass, or one of their groups)
    std::set<std::string> nextIds_;
};

} // namespace rdtmon
