#include "WorkerPool.h"

namespace rdtmon {

WorkerPool::WorkerPool(unsigned threads) {
    threads_.reserve(threads);
    for (unsigned i = 0; i < threads; ++i) {
        threads_.emplace_back([this](const std::stop_token& stop) { work(stop); });
    }
}

void WorkerPool::runJobs(const std::function<void(std::size_t)>& fn, std::size_t n) {
    for (std::size_t i = next_.fetch_add(1); i < n; i = next_.fetch_add(1)) {
        fn(i);
    }
}

void WorkerPool::work(const std::stop_token& stop) {
    uint64_t seen = 0;
    for (;;) {
        const std::function<void(std::size_t)>* fn = nullptr;
        std::size_t n = 0;
        {
            std::unique_lock lk(mu_);
            if (!wake_.wait(lk, stop, [&] { return batch_ != seen; })) {
                return; // stop requested
            }
            seen = batch_;
            // Woken after the batch already ended (the others took every job): nothing to do.
            if (fn_ == nullptr) {
                continue;
            }
            fn = fn_;
            n = n_;
            ++busy_;
        }
        runJobs(*fn, n);
        std::lock_guard lk(mu_);
        if (--busy_ == 0) {
            idle_.notify_all();
        }
    }
}

void WorkerPool::forEach(std::size_t n, const std::function<void(std::size_t)>& fn) {
    if (n == 0) {
        return;
    }
    if (threads_.empty() || n == 1) {
        for (std::size_t i = 0; i < n; ++i) {
            fn(i);
        }
        return;
    }
    {
        std::lock_guard lk(mu_);
        fn_ = &fn;
        n_ = n;
        next_.store(0);
        ++batch_;
    }
    wake_.notify_all();
    runJobs(fn, n);
    // Every job is taken once runJobs returns here; wait for those the threads took. A
    // thread that wakes only after this sees fn_ null and takes none.
    std::unique_lock lk(mu_);
    idle_.wait(lk, [&] { return busy_ == 0; });
    fn_ = nullptr;
}

} // namespace rdtmon
