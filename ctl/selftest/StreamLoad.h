#pragma once

// rdtmonctl selftest's load: a read-only stream over a buffer, run in a child process of
// the orchestrator. The order that keeps the counted traffic to the stream alone
// (docs/selftest.md#the-load-check):
//   1. pin the child to the domain's CPUs (cpusOfL3Domain), so that first touch puts the
//      pages on the domain's own node and NUMA balancing has nothing to migrate;
//   2. allocate planLoad()'s buffer and touchBuffer() it;
//   3. move the child into the monitoring group, then read the counters ("before");
//   4. streamRead(), reading llc_occupancy while it runs ("during");
//   5. read the counters ("after") before the child frees the buffer or exits: freeing
//      can write the pages (init_on_free), in the group.

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace rdtmon::ctl::selftest {

// x86's cache line; one load per line fetches the whole line.
inline constexpr std::size_t kLineBytes = 64;
inline constexpr std::size_t kWordsPerLine = kLineBytes / sizeof(uint64_t);

struct StreamResult {
    uint32_t passesDone = 0;
    uint64_t checksum = 0; // the sum (mod 2^64) of every word read, over every pass
    double seconds = 0;    // from the call to the return
};

// Reads one word per cache line (every kWordsPerLine-th word from buf[0]) over the whole
// buffer, pass after pass, up to `passes`; before each pass it stops when `stop` is set or
// maxSeconds have gone by. Reads only: a store stream would add write-allocate reads and
// write-backs to the bytes counted. With a stride of one line every line is fetched once a
// pass whatever the buffer's alignment.
StreamResult streamRead(const uint64_t* buf, std::size_t words, uint32_t passes,
                        const std::atomic<bool>& stop, double maxSeconds);

// Faults every page of the buffer in and writes each line's first word (its index), then
// reads the buffer once so that the dirty lines the kernel's zeroing and these stores left
// in the cache are written back now. Call it before the process joins the monitored group:
// neither the zeroing nor those write-backs belong to the load.
void touchBuffer(uint64_t* buf, std::size_t words);

} // namespace rdtmon::ctl::selftest
