#include "Proc.h"

#include "UniqueFd.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

namespace rdtmon::test {

namespace {
// fork(2) for a helper child that dies with this process: in the child, PDEATHSIG is set
// and it exits at once if this process is already gone. Returns what fork returns.
pid_t forkTiedChild() {
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) {
            ::_exit(1);
        }
    }
    return pid;
}
} // namespace

pid_t spawnSleeper(int threads) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
        throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
    }
    UniqueFd readEnd(p[0]);
    UniqueFd writeEnd(p[1]);
    const pid_t pid = forkTiedChild();
    if (pid == 0) {
        for (int i = 0; i < threads; ++i) {
            std::thread([] {
                for (;;) {
                    ::pause();
                }
            }).detach();
        }
        // Wait until every thread shows up in /proc before reporting ready.
        while (static_cast<int>(threadsOf(::getpid()).size()) < threads + 1) {
            ::usleep(1000);
        }
        char c = 'r';
        [[maybe_unused]] ssize_t w = ::write(writeEnd.get(), &c, 1);
        for (;;) {
            ::pause();
        }
    }
    writeEnd.reset();
    char c = 0;
    ssize_t n;
    do {
        n = ::read(readEnd.get(), &c, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        throw std::runtime_error("sleeper child died before it was ready");
    }
    return pid;
}

ChildProcess::ChildProcess(ChildProcess&& o) noexcept : pid_(std::exchange(o.pid_, -1)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
    if (this != &o) {
        reset();
        pid_ = std::exchange(o.pid_, -1);
    }
    return *this;
}

void ChildProcess::reset() {
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
        }
    }
    pid_ = -1;
}

int ChildProcess::wait() {
    int status = 0;
    if (pid_ > 0) {
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
    }
    return status;
}

pid_t ChildProcess::release() {
    return std::exchange(pid_, -1);
}

std::vector<pid_t> threadsOf(pid_t pid) {
    std::vector<pid_t> out;
    std::string dir = "/proc/" + std::to_string(pid) + "/task";
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
        return out;
    }
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9') {
            out.push_back(static_cast<pid_t>(std::strtol(e->d_name, nullptr, 10)));
        }
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

Forker::Forker() {
    int req[2];
    int rep[2];
    if (::pipe2(req, O_CLOEXEC) != 0 || ::pipe2(rep, O_CLOEXEC) != 0) {
        throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
    }
    const pid_t pid = forkTiedChild();
    if (pid == 0) {
        char c = 0;
        while (::read(req[0], &c, 1) == 1) {
            const pid_t kid = ::fork();
            if (kid == 0) {
                for (;;) {
                    ::pause();
                }
            }
            [[maybe_unused]] ssize_t w = ::write(rep[1], &kid, sizeof kid);
        }
        ::_exit(0);
    }
    ::close(req[0]);
    ::close(rep[1]);
    request_ = req[1];
    reply_ = rep[0];
    proc_ = ChildProcess(pid);
}

Forker::~Forker() {
    ::close(request_);
    ::close(reply_);
    for (pid_t k : children_) {
        ::kill(k, SIGKILL);
        ::waitpid(k, nullptr, WNOHANG); // ours only if reparented to us
    }
}

pid_t Forker::forkChild() {
    char c = 'f';
    pid_t kid = -1;
    if (::write(request_, &c, 1) != 1 || ::read(reply_, &kid, sizeof kid) != sizeof kid ||
        kid <= 0) {
        throw std::runtime_error("the forker did not fork");
    }
    children_.push_back(kid);
    return kid;
}

Zombie::Zombie() {
    pid_ = ::fork();
    if (pid_ < 0) {
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    }
    if (pid_ == 0) {
        ::_exit(0);
    }
    // waitid with WNOWAIT returns once the child has exited and leaves it unreaped.
    siginfo_t info{};
    while (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT) != 0 &&
           errno == EINTR) {
    }
}

Zombie::~Zombie() {
    if (pid_ > 0) {
        ::waitpid(pid_, nullptr, 0);
    }
}

pid_t someKernelThread() {
    DIR* d = ::opendir("/proc");
    if (d == nullptr) {
        return 0;
    }
    pid_t found = 0;
    while (dirent* e = ::readdir(d)) {
        const pid_t p = static_cast<pid_t>(std::atoi(e->d_name));
        if (p <= 2) {
            continue;
        }
        std::ifstream in("/proc/" + std::to_string(p) + "/stat");
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const std::size_t close = text.rfind(')');
        if (close == std::string::npos) {
            continue;
        }
        // After the comm: state ppid pgrp session tty_nr tpgid flags.
        std::istringstream fields(text.substr(close + 1));
        std::string skip;
        unsigned long flags = 0;
        for (int i = 0; i < 6; ++i) {
            fields >> skip;
        }
        if (fields >> flags && (flags & 0x00200000UL) != 0) { // PF_KTHREAD
            found = p;
            break;
        }
    }
    ::closedir(d);
    return found;
}

double cpuMs(pid_t pid) {
    double ns = 0;
    for (pid_t tid : threadsOf(pid)) {
        std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) +
                         "/schedstat");
        double v = 0;
        in >> v; // a thread that exited meanwhile counts 0
        ns += v;
    }
    return ns / 1e6;
}

} // namespace rdtmon::test
