#pragma once

#include "ProcStat.h"

#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

// What rdtmond reads about a process from /proc: whether it exists, its threads, and the
// few /proc/PID/stat fields that tell a container's init from what can never be one.
namespace rdtmon {

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

// How far process pid's pid namespace lies below the one this /proc shows (its NSpid line's
// entries minus one): 0 for a process of that pid namespace. nullopt when it is gone or has
// no NSpid line. Unlike /proc/PID/ns/pid, readable without ptrace access.
std::optional<unsigned> pidNamespaceDepth(pid_t pid);
// Whether a pid number that process pid gave means the same process here: both it and
// rdtmond are in the pid namespace of this /proc. False when that cannot be told.
bool sharesOurPidNamespace(pid_t pid);

} // namespace rdtmon
