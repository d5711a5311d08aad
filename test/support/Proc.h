#pragma once

#include <sys/types.h>

#include <cstdint>
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

// One sleeper per container id: rdtmond refuses to take a process out of another running
// container's group (Busy), so a test that makes many groups gives each its own process.
class Sleepers {
public:
    explicit Sleepers(std::size_t n, int threads = 0) {
        procs_.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
            procs_.emplace_back(spawnSleeper(threads));
        }
    }
    pid_t pid(std::size_t i) const { return procs_.at(i).pid(); }
    uint32_t upid(std::size_t i) const { return static_cast<uint32_t>(pid(i)); }
    std::size_t size() const { return procs_.size(); }

private:
    std::vector<ChildProcess> procs_;
};

// A process that forks a sleeping child whenever asked: the child starts in the resctrl
// group its parent is in at that moment, as a process started inside a container does.
// The children outlive the parent (no PDEATHSIG): destruction kills them too.
class Forker {
public:
    Forker();
    ~Forker();
    Forker(const Forker&) = delete;
    Forker& operator=(const Forker&) = delete;
    pid_t pid() const { return proc_.pid(); }
    pid_t forkChild();
    void killParent() { proc_.reset(); } // the children live on

private:
    ChildProcess proc_;
    int request_ = -1; // write end: one byte asks for a child
    int reply_ = -1;   // read end: the child's pid
    std::vector<pid_t> children_;
};

// A child that has exited and is not reaped: a zombie until destruction reaps it.
class Zombie {
public:
    Zombie();
    ~Zombie();
    Zombie(const Zombie&) = delete;
    Zombie& operator=(const Zombie&) = delete;
    pid_t pid() const { return pid_; }

private:
    pid_t pid_ = -1;
};

// A kernel thread other than kthreadd (pid 2), found by PF_KTHREAD in /proc/PID/stat; 0 if
// none is visible.
pid_t someKernelThread();

// Thread ids of a process (/proc/PID/task), sorted; empty if it is gone.
std::vector<pid_t> threadsOf(pid_t pid);

// CPU time (ms) used so far by every thread of pid: the sum of /proc/PID/task/*/schedstat's
// first field (ns on the CPU). Threads that already exited are not counted.
double cpuMs(pid_t pid);

} // namespace rdtmon::test
