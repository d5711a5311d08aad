#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

// What rdtmond reads about a process from /proc: whether it exists, its threads, and the
// few /proc/PID/stat fields that tell a container's init from what can never be one.
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
// /proc/PID/stat, or nullopt when the process does not exist.
std::optional<ProcStat> readProcStat(pid_t pid);

bool procExists(pid_t pid);
// The tids currently listed in /proc/PID/task, or nullopt when the process is gone.
std::optional<std::vector<pid_t>> threadsOf(pid_t pid);

// A pidfd as /proc/self/fdinfo/FD describes it. The "Pid:" line gives the process's pid in
// the pid namespace of that /proc: -1 once the process has been reaped, 0 when it is not
// visible from there (another pid namespace's process). Only a pidfd has that line.
struct PidfdInfo {
    long pid = 0;
};
// Parses fdinfo text; nullopt when it has no well-formed "Pid:" line (not a pidfd).
std::optional<PidfdInfo> parsePidfdInfo(std::string_view fdinfo);

// The pid, in rdtmond's pid namespace, of the process the pidfd fd refers to. Throws
// Error: InvalidArgument when fd is not a pidfd or its process is not visible in this pid
// namespace, NoSuchProcess when the process has exited (reaped, or a zombie: the pidfd
// polls readable once the process has exited).
pid_t pidOfPidfd(int fd);
// True when the process the pidfd refers to has exited (the pidfd polls readable, or hung
// up); never blocks.
bool pidfdExited(int fd);

// Refuses, with the rule it broke, a pid that no container's init can be: pid 1 of this
// pid namespace, a kernel thread, rdtmond itself (any of its threads), a zombie or a process
// that does not exist. Throws Error (InvalidArgument or NoSuchProcess).
void requireContainerCandidate(pid_t pid);

} // namespace rdtmon
