#pragma once

// Keeps a kind of log line from flooding the journal: at most one line per interval, the
// first at once. Lines that come sooner are held back and counted; the next line written
// says how many were (" (N more since the last line)"). Bus-free and clock-injectable, so
// that tests drive it directly. Thread-safe: the sink is called under the limiter's lock,
// so lines from several threads never interleave.

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

namespace rdtmon::exporter {

class LogLimiter {
public:
    using Clock = std::chrono::steady_clock;
    using Sink = std::function<void(const std::string& line)>;
    static constexpr Clock::duration kDefaultInterval = std::chrono::seconds(10);

    explicit LogLimiter(Sink sink, Clock::duration interval = kDefaultInterval);

    // Writes line now when the last line written is at least the interval old (or none
    // was), else holds it back. True when written.
    bool log(const std::string& line, Clock::time_point now = Clock::now());
    // Writes the last line held back, with the count of the others, if any was: so that a
    // burst at the end is not lost (called when the exporter stops).
    void flush();
    // Lines held back since the last line written.
    uint64_t heldBack() const;

private:
    void write(const std::string& line, uint64_t more);

    Sink sink_;
    Clock::duration interval_;
    mutable std::mutex mutex_;
    bool wrote_ = false;
    Clock::time_point lastWritten_{};
    uint64_t heldBack_ = 0;
    std::string lastHeld_;
};

} // namespace rdtmon::exporter
