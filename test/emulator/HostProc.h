#pragma once
// resctrl-emu: what the model reads from /proc: threads, their start times, parents and
// pid namespaces.

#include <cstdint>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace rdtmon::emu {

// The whole file, nullopt if it cannot be opened or read.
std::optional<std::string> readSmallFile(const std::string& path);
// The names in a directory, without dot files; empty if it cannot be opened.
std::vector<std::string> listDir(const std::string& path);

// CLOCK_BOOTTIME in clock ticks (the unit of /proc/.../stat starttime).
uint64_t boottimeTicks();

struct ThreadInfo {
    pid_t tid = 0;
    pid_t tgid = 0;
    pid_t ppid = 0;
    uint64_t start = 0; // clock ticks since boot, /proc/.../stat field 22
};

// Reads /proc/<tgid>/task/<tid>/stat (or /proc/<tid>/stat when tgid is 0). Zombies and
// dead tasks are not live threads.
std::optional<ThreadInfo> readThread(pid_t tgid, pid_t tid);

// "Name:\tv1\tv2..." line of /proc/<tid>/status as numbers.
std::vector<long> statusLine(const std::string& status, const std::string& key);

// The inode of /proc/<pid>/ns/pid (pid 0: our own).
std::optional<ino_t> pidNsInode(pid_t pid);

// The pid namespace of a caller, relative to the emulator's: its inode and its level
// (number of NSpid entries as seen by us minus one). Level 0 = the emulator's own.
struct CallerNs {
    bool foreign = false;
    ino_t inode = 0;
    size_t level = 0;
};

// Is the pid namespace of thread `tid` equal to, or a descendant of, the namespace
// `target` at `level` levels below ours? Returns the id of tid in that namespace.
std::optional<pid_t> idInNamespace(pid_t tid, const CallerNs& ns);

} // namespace rdtmon::emu
