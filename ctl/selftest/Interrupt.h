#pragma once

// SIGINT, SIGTERM and SIGHUP held back while the self-test runs, so that an interrupted run
// still removes its groups and ends its processes: the signal is blocked and read from a
// signalfd at the self-test's next step or wait. The mask is restored on destruction.

#include "UniqueFd.h"

#include <csignal>
#include <stdexcept>
#include <string>

namespace rdtmon::ctl::selftest {

// Thrown at the first step after a signal came; signal() is its number.
class Interrupted : public std::runtime_error {
public:
    explicit Interrupted(int sig)
        : std::runtime_error(std::string("interrupted by ") + sigabbrev(sig)), sig_(sig) {}
    int signal() const noexcept { return sig_; }

private:
    static std::string sigabbrev(int sig);
    int sig_;
};

class Interrupt {
public:
    Interrupt();
    ~Interrupt();
    Interrupt(const Interrupt&) = delete;
    Interrupt& operator=(const Interrupt&) = delete;

    // For poll(): readable when a signal is pending.
    int fd() const { return fd_.get(); }
    // The signal that came (0: none yet); reads it off the signalfd once, then keeps it.
    int pending();
    // Throws Interrupted when a signal came.
    void check();

private:
    UniqueFd fd_;
    sigset_t old_{};
    int sig_ = 0;
};

} // namespace rdtmon::ctl::selftest
