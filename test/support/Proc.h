#pragma once

#include <sys/types.h>

#include <vector>

namespace rdtmon::test {

// Forks a child that starts `threads` extra threads and then sleeps until killed.
// Returns its pid once all threads exist. Wrap it in a ChildProcess.
pid_t spawnSleeper(int threads = 0);

// Owns a child process: SIGKILL and reap on destruction (or reset()).
class ChildProcess {
public:
    ChildProcess() = default;
    explicit ChildProcess(pid_t pid) : pid_(pid) {}
    ChildProcess(ChildProcess&& o) noexcept;
    ChildProcess& operator=(ChildProcess&& o) noexcept;
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;
    ~ChildProcess() { reset(); }

    pid_t pid() const { return pid_; }
    explicit operator bool() const { return pid_ > 0; }
    // Kills (SIGKILL) and reaps the child now; a no-op when empty.
    void reset();
    // Waits for the child to exit on its own; returns the waitpid status.
    int wait();
    pid_t release();

private:
    pid_t pid_ = -1;
};

// Thread ids of a process (/proc/PID/task), sorted; empty if it is gone.
std::vector<pid_t> threadsOf(pid_t pid);

} // namespace rdtmon::test
