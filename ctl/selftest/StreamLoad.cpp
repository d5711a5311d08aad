#include "StreamLoad.h"

#include <chrono>

namespace rdtmon::ctl::selftest {

namespace {

// Volatile: every load is emitted, once per line per pass, whatever the optimizer proves
// about the buffer between passes.
uint64_t readPass(const volatile uint64_t* buf, std::size_t words) {
    uint64_t sum = 0;
    for (std::size_t i = 0; i < words; i += kWordsPerLine) {
        sum += buf[i];
    }
    return sum;
}

} // namespace

StreamResult streamRead(const uint64_t* buf, std::size_t words, uint32_t passes,
                        const std::atomic<bool>& stop, double maxSeconds) {
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    const auto elapsed = [&start] {
        return std::chrono::duration<double>(Clock::now() - start).count();
    };
    StreamResult result;
    while (result.passesDone < passes) {
        if (stop.load(std::memory_order_acquire) || elapsed() >= maxSeconds) {
            break;
        }
        result.checksum += readPass(buf, words);
        ++result.passesDone;
    }
    result.seconds = elapsed();
    return result;
}

void touchBuffer(uint64_t* buf, std::size_t words) {
    for (std::size_t i = 0; i < words; i += kWordsPerLine) {
        buf[i] = i;
    }
    // A pass over a buffer of several caches evicts those dirty lines; clean ones stay.
    (void)readPass(buf, words);
}

} // namespace rdtmon::ctl::selftest
