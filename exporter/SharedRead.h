#pragma once

// One read for all who ask at once: a caller that arrives while a read is in progress waits
// for it and gets its result, instead of starting another. Scrapes that come together
// (several Prometheus servers, a scraper and a curl, or a client hammering /metrics) then
// cost rdtmond one GetAllCounters, not one each.

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

namespace rdtmon::exporter {

class SharedRead {
public:
    // read() runs on the first caller's thread, never twice at once. The number of reads
    // made so far is reads().
    std::string get(const std::function<std::string()>& read) {
        std::unique_lock lk(mu_);
        if (busy_) {
            const uint64_t seen = done_;
            ++waiting_;
            cv_.wait(lk, [&] { return done_ != seen; });
            --waiting_;
            return last_;
        }
        busy_ = true;
        lk.unlock();
        std::string text;
        try {
            text = read();
        } catch (...) {
            lk.lock();
            busy_ = false;
            last_.clear();
            ++done_;
            cv_.notify_all();
            throw;
        }
        lk.lock();
        last_ = text;
        busy_ = false;
        ++done_;
        cv_.notify_all();
        return text;
    }
    uint64_t reads() const {
        std::lock_guard lk(mu_);
        return done_;
    }
    // Callers waiting for the read in progress (for tests).
    std::size_t waiting() const {
        std::lock_guard lk(mu_);
        return waiting_;
    }

private:
    mutable std::mutex mu_;
    std::condition_variable cv_;
    bool busy_ = false;
    uint64_t done_ = 0;
    std::size_t waiting_ = 0;
    std::string last_;
};

} // namespace rdtmon::exporter
