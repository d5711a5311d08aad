#pragma once

namespace rdtmon {

// Background work (counter reads) runs at a lower CPU weight than the event loop, so that
// on a busy node the loop and the runtimes' calls win the CPU while reads still progress.
inline constexpr int kBackgroundNice = 10;

// Sets the nice value of the calling thread only (on Linux a thread id is a PRIO_PROCESS
// target); returns 0 or the errno.
int setThisThreadNice(int nice);

} // namespace rdtmon
