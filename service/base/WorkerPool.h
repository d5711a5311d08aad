#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace rdtmon {

// A fixed set of threads that runs one batch of independent jobs at a time, for the bulk
// counter read: there each job is one pread(2) of a kept counter file, which on FUSE (and
// on a busy kernel) waits for a round trip, so several in flight shorten the pass.
// forEach(n, fn) calls fn(i) once for every i < n, spread over the pool's threads and the
// calling thread, and returns when every call has returned. fn must not throw and must
// touch only what job i owns. The threads start with the pool and are stopped and joined
// when it is destroyed. One caller at a time (the event loop).
class WorkerPool {
public:
    explicit WorkerPool(unsigned threads);
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    void forEach(std::size_t n, const std::function<void(std::size_t)>& fn);
    unsigned threads() const { return static_cast<unsigned>(threads_.size()); }

private:
    void work(const std::stop_token& stop);
    void runJobs(const std::function<void(std::size_t)>& fn, std::size_t n);

    std::mutex mu_;
    std::condition_variable_any wake_; // a batch started, or stop
    std::condition_variable idle_;     // a thread finished its part of the batch
    // The batch, set under mu_; fn_ is null between batches.
    const std::function<void(std::size_t)>* fn_ = nullptr;
    std::size_t n_ = 0;
    uint64_t batch_ = 0;
    unsigned busy_ = 0; // threads inside the batch
    std::atomic<std::size_t> next_{0};
    std::vector<std::jthread> threads_; // last: stopped and joined before the rest goes
};

} // namespace rdtmon
