#pragma once

// /proc/PID/stat's fields that rdtmond and rdtmon-hook need: a process's state, parent,
// kernel-thread flag and start time. The hook reads the start time to name a process for
// good when it cannot hand over a pidfd.

#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace rdtmon {

struct ProcStat {
    std::string comm;
    char state = '?'; // R S D Z X ...
    pid_t ppid = 0;
    unsigned long flags = 0; // PF_* of the kernel
    // Clock ticks after boot at which the process started (field 22): with the pid, it names
    // one process for good, as a pid alone does not once the pid is reused. 0 when the text
    // ends before it.
    unsigned long long startTime = 0;
};

// PF_KTHREAD from the kernel's include/linux/sched.h.
constexpr unsigned long kPfKthread = 0x00200000;

// Parses /proc/PID/stat's text. The comm field may hold spaces and parentheses, so the
// fields are counted from the last ')'. nullopt when the text is not of that shape.
std::optional<ProcStat> parseProcStat(std::string_view text);

} // namespace rdtmon
