#include "Interrupt.h"

#include <cerrno>
#include <cstring>
#include <sys/signalfd.h>
#include <system_error>
#include <unistd.h>

namespace rdtmon::ctl::selftest {

std::string Interrupted::sigabbrev(int sig) {
    const char* name = ::sigabbrev_np(sig);
    return name != nullptr ? std::string("SIG") + name : "signal " + std::to_string(sig);
}

Interrupt::Interrupt() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    if (::sigprocmask(SIG_BLOCK, &set, &old_) != 0) {
        throw std::system_error(errno, std::generic_category(), "sigprocmask");
    }
    fd_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!fd_) {
        const int err = errno;
        ::sigprocmask(SIG_SETMASK, &old_, nullptr);
        throw std::system_error(err, std::generic_category(), "signalfd");
    }
}

Interrupt::~Interrupt() {
    // A signal that came during the run was taken from the signalfd; any that came after
    // stays pending and acts as usual once unblocked.
    ::sigprocmask(SIG_SETMASK, &old_, nullptr);
}

int Interrupt::pending() {
    if (sig_ == 0) {
        signalfd_siginfo si{};
        if (::read(fd_.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
            sig_ = static_cast<int>(si.ssi_signo);
        }
    }
    return sig_;
}

void Interrupt::check() {
    if (pending() != 0) {
        throw Interrupted(sig_);
    }
}

} // namespace rdtmon::ctl::selftest
