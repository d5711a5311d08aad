#include "LogLimiter.h"

#include <utility>

namespace rdtmon::exporter {

LogLimiter::LogLimiter(Sink sink, Clock::duration interval)
    : sink_(std::move(sink)), interval_(interval) {}

bool LogLimiter::log(const std::string& line, Clock::time_point now) {
    std::lock_guard lock(mutex_);
    if (wrote_ && now - lastWritten_ < interval_) {
        ++heldBack_;
        lastHeld_ = line;
        return false;
    }
    write(line, heldBack_);
    wrote_ = true;
    lastWritten_ = now;
    heldBack_ = 0;
    lastHeld_.clear();
    return true;
}

void LogLimiter::flush() {
    std::lock_guard lock(mutex_);
    if (heldBack_ == 0) {
        return;
    }
    // The last held line stands for itself; the others are counted.
    write(lastHeld_, heldBack_ - 1);
    heldBack_ = 0;
    lastHeld_.clear();
}

uint64_t LogLimiter::heldBack() const {
    std::lock_guard lock(mutex_);
    return heldBack_;
}

void LogLimiter::write(const std::string& line, uint64_t more) {
    if (more == 0) {
        sink_(line);
        return;
    }
    std::string out = line;
    out += " (";
    out += std::to_string(more);
    out += " more since the last line)";
    sink_(out);
}

} // namespace rdtmon::exporter
