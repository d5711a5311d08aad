#pragma once

// A process of the self-test's own, driven over a socket: the "container" whose group a
// check makes. It is forked from rdtmonctl (no exec), lives in a process group of its own
// and dies with rdtmonctl (PR_SET_PDEATHSIG), so that nothing of it outlives the self-test
// even when rdtmonctl is killed; the destructor kills the group and reaps it, the
// grandchildren included (rdtmonctl is their subreaper).

#include "Interrupt.h"
#include "UniqueFd.h"

#include <cstddef>
#include <cstdint>
#include <sys/types.h>
#include <vector>

namespace rdtmon::ctl::selftest {

struct TestProcessOptions {
    unsigned extraThreads = 0; // started before the constructor returns
    std::vector<int> cpus;     // the CPUs it runs on (empty: rdtmonctl's)
    uint64_t bufferBytes = 0;  // a buffer for stream(), faulted in before it is ready
};

// What a stream() did, as the process measured it.
struct StreamRun {
    uint32_t passes = 0;
    double seconds = 0;
};

class TestProcess {
public:
    // Returns once the process runs with its threads and its buffer (throws on failure, and
    // Interrupted when a signal comes meanwhile).
    TestProcess(const TestProcessOptions& options, Interrupt& interrupt);
    ~TestProcess();
    TestProcess(const TestProcess&) = delete;
    TestProcess& operator=(const TestProcess&) = delete;

    pid_t pid() const { return pid_; }
    int pidfd() const { return pidfd_.get(); }
    // Its threads now (/proc/PID/task), the main thread first.
    std::vector<pid_t> threads() const;
    // A new thread of the process; its id.
    pid_t startThread();
    // A child of the process that execs sleep(1) (or waits, where there is none); its pid,
    // once the exec is done.
    pid_t forkChild();
    // Starts reading its buffer passes times (at most maxSeconds), one load per cache
    // line; waitStream() returns what it did.
    void startStream(uint32_t passes, double maxSeconds);
    StreamRun waitStream();

private:
    // Sends a command (and its payload) and waits for the answer: a value, -errno on
    // failure; Interrupted when a signal comes first.
    int64_t call(char command, const void* payload, std::size_t size, int timeoutMs,
                 StreamRun* run = nullptr);
    int64_t receive(int timeoutMs, StreamRun* run);
    void kill() noexcept;

    Interrupt& interrupt_;
    pid_t pid_ = -1;
    UniqueFd pidfd_;
    UniqueFd sock_;
    std::vector<pid_t> children_;
    int streamTimeoutMs_ = 0;
};

// Makes rdtmonctl the subreaper of what its test processes fork, so that it reaps them.
void becomeSubreaper();

} // namespace rdtmon::ctl::selftest
