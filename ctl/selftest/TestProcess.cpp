#include "TestProcess.h"

#include "StreamLoad.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdexcept>
#include <string>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <system_error>
#include <thread>
#include <unistd.h>

namespace rdtmon::ctl::selftest {

namespace {

// The process's answer to each command, and its first message ("ready").
struct TestProcessReply {
    int64_t value = 0; // a tid or pid; -errno on failure
    uint32_t passes = 0;
    double seconds = 0;
};

struct StreamRequest {
    uint32_t passes = 0;
    double maxSeconds = 0;
};

[[noreturn]] void fail(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

void sendAll(int fd, const void* p, std::size_t n) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
        const ssize_t w = ::send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            ::_exit(1); // the self-test is gone
        }
        c += w;
        n -= static_cast<std::size_t>(w);
    }
}

bool recvAll(int fd, void* p, std::size_t n) {
    char* c = static_cast<char*>(p);
    while (n > 0) {
        const ssize_t r = ::recv(fd, c, n, 0);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return false;
        }
        c += r;
        n -= static_cast<std::size_t>(r);
    }
    return true;
}

pid_t gettidNow() {
    return static_cast<pid_t>(::syscall(SYS_gettid));
}

// A thread that only waits; its id goes to the caller through the pipe.
void startIdleThread(int sock) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        ::_exit(1);
    }
    std::thread([w = fds[1]] {
        const pid_t tid = gettidNow();
        (void)!::write(w, &tid, sizeof tid);
        ::close(w);
        for (;;) {
            ::pause();
        }
    }).detach();
    pid_t tid = 0;
    const bool ok = ::read(fds[0], &tid, sizeof tid) == static_cast<ssize_t>(sizeof tid);
    ::close(fds[0]);
    if (sock >= 0) {
        TestProcessReply r;
        r.value = ok ? tid : -EIO;
        sendAll(sock, &r, sizeof r);
    }
}

const char* sleepBinary() {
    for (const char* p : {"/usr/bin/sleep", "/bin/sleep"}) {
        if (::access(p, X_OK) == 0) {
            return p;
        }
    }
    return nullptr;
}

// A child that execs sleep: the exec keeps its resctrl group, which is part of what
// the check shows. The pipe's write end closes at the exec, which says it is done.
pid_t forkSleeper() {
    const char* sleep = sleepBinary();
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        return -errno;
    }
    const pid_t self = ::getpid();
    const pid_t g = ::fork();
    if (g < 0) {
        const int err = errno;
        ::close(fds[0]);
        ::close(fds[1]);
        return -err;
    }
    if (g == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != self) {
            ::_exit(0);
        }
        if (sleep != nullptr) {
            ::execl(sleep, "sleep", "3600", static_cast<char*>(nullptr));
        }
        ::close(fds[1]); // no sleep to exec: wait here instead
        for (;;) {
            ::pause();
        }
    }
    ::close(fds[1]);
    char c;
    while (::read(fds[0], &c, 1) < 0 && errno == EINTR) {
    }
    ::close(fds[0]);
    return g;
}

[[noreturn]] void childMain(int sock, const TestProcessOptions& o, pid_t parent) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {
        ::_exit(0);
    }
    if (!o.cpus.empty()) {
        cpu_set_t set;
        CPU_ZERO(&set);
        for (int c : o.cpus) {
            CPU_SET(c, &set);
        }
        if (::sched_setaffinity(0, sizeof set, &set) != 0) {
            TestProcessReply r;
            r.value = -errno;
            sendAll(sock, &r, sizeof r);
            ::_exit(1);
        }
    }
    uint64_t* buf = nullptr;
    const std::size_t words = o.bufferBytes / sizeof(uint64_t);
    if (o.bufferBytes > 0) {
        void* m = ::mmap(nullptr, o.bufferBytes, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            TestProcessReply r;
            r.value = -errno;
            sendAll(sock, &r, sizeof r);
            ::_exit(1);
        }
        buf = static_cast<uint64_t*>(m);
        // Faulted in (pages zeroed by the kernel) before the process joins its group, so
        // that the group counts the stream's reads only.
        touchBuffer(buf, words);
    }
    for (unsigned i = 0; i < o.extraThreads; ++i) {
        startIdleThread(-1);
    }
    TestProcessReply ready;
    ready.value = ::getpid();
    sendAll(sock, &ready, sizeof ready);
    for (;;) {
        char cmd = 0;
        if (!recvAll(sock, &cmd, 1)) {
            ::_exit(0);
        }
        switch (cmd) {
        case 'T':
            startIdleThread(sock);
            break;
        case 'F': {
            TestProcessReply r;
            r.value = forkSleeper();
            sendAll(sock, &r, sizeof r);
            break;
        }
        case 'S': {
            StreamRequest q;
            if (!recvAll(sock, &q, sizeof q)) {
                ::_exit(0);
            }
            TestProcessReply r;
            if (buf == nullptr) {
                r.value = -EINVAL;
            } else {
                const std::atomic<bool> stop{false};
                const StreamResult s = streamRead(buf, words, q.passes, stop, q.maxSeconds);
                r.passes = s.passesDone;
                r.seconds = s.seconds;
                r.value = static_cast<int64_t>(s.checksum & 0x7fff'ffff);
            }
            sendAll(sock, &r, sizeof r);
            break;
        }
        default:
            ::_exit(1);
        }
    }
}

} // namespace

void becomeSubreaper() {
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
}

TestProcess::TestProcess(const TestProcessOptions& options, Interrupt& interrupt)
    : interrupt_(interrupt) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        fail("socketpair");
    }
    UniqueFd mine(sv[0]);
    UniqueFd theirs(sv[1]);
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) {
        fail("fork");
    }
    if (pid_ == 0) {
        mine.reset();
        ::setpgid(0, 0);
        childMain(theirs.get(), options, parent);
    }
    ::setpgid(pid_, pid_); // also here: no window in which a kill of the group misses it
    sock_ = std::move(mine);
    theirs.reset();
    pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
    try {
        if (!pidfd_) {
            fail("pidfd_open");
        }
        // Faulting in a buffer of up to 2 GiB on a loaded machine: a generous limit.
        StreamRun run;
        const int64_t v = receive(120'000, &run);
        if (v < 0) {
            errno = static_cast<int>(-v);
            fail("the test process could not start (pinning or its buffer)");
        }
    } catch (...) {
        kill();
        throw;
    }
}

TestProcess::~TestProcess() {
    kill();
}

void TestProcess::kill() noexcept {
    if (pid_ <= 0) {
        return;
    }
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    // Its children were in its process group, and are ours to reap now (subreaper); one
    // that is not (no subreaper) was reaped by init.
    for (pid_t c : children_) {
        ::kill(c, SIGKILL);
        while (::waitpid(c, nullptr, 0) < 0 && errno == EINTR) {
        }
    }
    pid_ = -1;
}

int64_t TestProcess::receive(int timeoutMs, StreamRun* run) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    TestProcessReply r;
    char* p = reinterpret_cast<char*>(&r);
    std::size_t got = 0;
    while (got < sizeof r) {
        interrupt_.check();
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                              deadline - std::chrono::steady_clock::now())
                              .count();
        if (left <= 0) {
            throw std::runtime_error("the test process did not answer within " +
                                     std::to_string(timeoutMs / 1000) + " s");
        }
        pollfd fds[2] = {{sock_.get(), POLLIN, 0}, {interrupt_.fd(), POLLIN, 0}};
        if (::poll(fds, 2, static_cast<int>(left)) < 0 && errno != EINTR) {
            fail("poll");
        }
        if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
            continue;
        }
        const ssize_t n = ::recv(sock_.get(), p + got, sizeof r - got, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        if (n <= 0) {
            throw std::runtime_error("the test process " + std::to_string(pid_) +
                                     " ended unexpectedly");
        }
        got += static_cast<std::size_t>(n);
    }
    if (run != nullptr) {
        run->passes = r.passes;
        run->seconds = r.seconds;
    }
    return r.value;
}

int64_t TestProcess::call(char command, const void* payload, std::size_t size, int timeoutMs,
                          StreamRun* run) {
    interrupt_.check();
    std::string msg(1, command);
    if (size > 0) {
        msg.append(static_cast<const char*>(payload), size);
    }
    if (::send(sock_.get(), msg.data(), msg.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(msg.size())) {
        fail("the test process is gone");
    }
    return receive(timeoutMs, run);
}

std::vector<pid_t> TestProcess::threads() const {
    std::vector<pid_t> out{pid_};
    const std::string dir = "/proc/" + std::to_string(pid_) + "/task";
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
        fail("opendir " + dir);
    }
    while (const dirent* e = ::readdir(d)) {
        const pid_t t = static_cast<pid_t>(std::atoi(e->d_name));
        if (t > 0 && t != pid_) {
            out.push_back(t);
        }
    }
    ::closedir(d);
    return out;
}

pid_t TestProcess::startThread() {
    const int64_t v = call('T', nullptr, 0, 10'000);
    if (v < 0) {
        errno = static_cast<int>(-v);
        fail("cannot start a thread in the test process");
    }
    return static_cast<pid_t>(v);
}

pid_t TestProcess::forkChild() {
    const int64_t v = call('F', nullptr, 0, 10'000);
    if (v < 0) {
        errno = static_cast<int>(-v);
        fail("the test process cannot fork");
    }
    children_.push_back(static_cast<pid_t>(v));
    return static_cast<pid_t>(v);
}

void TestProcess::startStream(uint32_t passes, double maxSeconds) {
    interrupt_.check();
    const StreamRequest q{passes, maxSeconds};
    std::string msg(1, 'S');
    msg.append(reinterpret_cast<const char*>(&q), sizeof q);
    if (::send(sock_.get(), msg.data(), msg.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(msg.size())) {
        fail("the test process is gone");
    }
    streamTimeoutMs_ = static_cast<int>(maxSeconds * 1000) + 30'000;
}

StreamRun TestProcess::waitStream() {
    StreamRun run;
    const int64_t v = receive(streamTimeoutMs_, &run);
    if (v < 0) {
        errno = static_cast<int>(-v);
        fail("the test process cannot stream");
    }
    return run;
}

} // namespace rdtmon::ctl::selftest
