#include "Errors.h"
#include "Proc.h"
#include "ProcFs.h"
#include "UniqueFd.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

using namespace rdtmon;

namespace {

ErrorKind kindOf(pid_t pid, std::string* message = nullptr) {
    try {
        requireContainerCandidate(pid);
    } catch (const Error& e) {
        if (message != nullptr) {
            *message = e.what();
        }
        return e.kind();
    }
    return ErrorKind::Failed; // "accepted": no candidate check answers Failed
}

} // namespace

TEST(ProcStat, ParsesACommWithSpacesAndParentheses) {
    auto st = parseProcStat("42 (a) b (c)) S 7 42 42 0 -1 4194560 10 0 0 0");
    ASSERT_TRUE(st);
    EXPECT_EQ(st->comm, "a) b (c)");
    EXPECT_EQ(st->state, 'S');
    EXPECT_EQ(st->ppid, 7);
    EXPECT_EQ(st->flags, 4194560u);
}

TEST(ProcStat, KernelThreadFlagAndZombieState) {
    auto k = parseProcStat("2 (kthreadd) S 0 0 0 0 -1 2129984 0 0");
    ASSERT_TRUE(k);
    EXPECT_NE(k->flags & kPfKthread, 0u);
    auto z = parseProcStat("99 (sh) Z 1 99 99 0 -1 4227084 0 0");
    ASSERT_TRUE(z);
    EXPECT_EQ(z->state, 'Z');
    EXPECT_EQ(z->flags & kPfKthread, 0u);
}

TEST(ProcStat, StartTimeIsField22WhenTheTextHasIt) {
    // A real line of /proc/PID/stat (comm with a space and a parenthesis): starttime 4733.
    auto st = parseProcStat("1234 (a b)) S 1 1234 1234 0 -1 4194560 110 0 0 0 0 0 0 0 20 0 1 0 "
                            "4733 2510848 217 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 "
                            "17 1 0 0 0 0 0\n");
    ASSERT_TRUE(st);
    EXPECT_EQ(st->startTime, 4733u);
    EXPECT_EQ(st->ppid, 1);
    EXPECT_EQ(parseProcStat("2 (k) S 0 0 0 0 -1 2129984 0 0")->startTime, 0u) << "cut short";
    EXPECT_FALSE(parseProcStat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 x 1"));
    // The live process's, as the service reads it.
    auto self = readProcStat(::getpid());
    ASSERT_TRUE(self);
    EXPECT_GT(self->startTime, 0u);
}

TEST(ProcStat, MalformedTextIsNoStat) {
    for (const char* bad :
         {"", "42", "42 (x", "42 x) S 1 2 3 4 5 6", "42 (x) S 1 2 3 4 5", "42 (x) SS 1 2 3 4 5 6",
          "42 (x) S one 2 3 4 5 6", "42 (x) S 1 2 3 4 5 -6", "42 (x) S 1 2 3 4 5 6x"}) {
        EXPECT_FALSE(parseProcStat(bad)) << bad;
    }
}

TEST(ContainerCandidate, ARunningProcessIsAccepted) {
    rdtmon::test::ChildProcess p(rdtmon::test::spawnSleeper());
    EXPECT_NO_THROW(requireContainerCandidate(p.pid()));
}

TEST(ContainerCandidate, EachRuleRefusesWithItsKindAndReason) {
    std::string msg;
    EXPECT_EQ(kindOf(1, &msg), ErrorKind::InvalidArgument);
    EXPECT_NE(msg.find("pid 1"), std::string::npos) << msg;
    EXPECT_EQ(kindOf(::getpid(), &msg), ErrorKind::InvalidArgument);
    EXPECT_NE(msg.find("rdtmond itself"), std::string::npos) << msg;
    EXPECT_EQ(kindOf(2, &msg), ErrorKind::InvalidArgument);
    EXPECT_NE(msg.find("kernel thread"), std::string::npos) << msg;
    if (pid_t k = rdtmon::test::someKernelThread(); k > 0) {
        EXPECT_EQ(kindOf(k, &msg), ErrorKind::InvalidArgument);
        EXPECT_NE(msg.find("kernel thread"), std::string::npos) << msg;
    }
    EXPECT_EQ(kindOf(0x7fffffff, &msg), ErrorKind::NoSuchProcess);
}

TEST(ContainerCandidate, AZombieIsNoSuchProcess) {
    rdtmon::test::Zombie zombie;
    std::string msg;
    EXPECT_EQ(kindOf(zombie.pid(), &msg), ErrorKind::NoSuchProcess);
    EXPECT_NE(msg.find("zombie"), std::string::npos) << msg;
}

namespace {

int openPidfd(pid_t pid) {
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

ErrorKind pidfdKind(int fd, std::string* message = nullptr) {
    try {
        (void)pidOfPidfd(fd);
    } catch (const Error& e) {
        if (message != nullptr) {
            *message = e.what();
        }
        return e.kind();
    }
    return ErrorKind::Failed; // accepted
}

} // namespace

TEST(PidfdInfo, ThePidLineOfFdinfo) {
    auto info = parsePidfdInfo("pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1057\nPid:\t4242\n"
                               "NSpid:\t4242\t1\n");
    ASSERT_TRUE(info);
    EXPECT_EQ(info->pid, 4242);
    EXPECT_EQ(parsePidfdInfo("Pid:\t-1\n")->pid, -1);
    EXPECT_EQ(parsePidfdInfo("Pid:\t0\nNSpid:\t0")->pid, 0);
    EXPECT_EQ(parsePidfdInfo("pos:\t0\nPid: 7")->pid, 7);
    for (const char* bad :
         {"", "pos:\t0\nflags:\t02\n", "Pid:\n", "Pid:\tx\n", "Pid:\t-2\n", "Pid:\t12a\n",
          "Pid:\t99999999999999999999\n", "NSpid:\t5\n", " Pid:\t5\n"}) {
        EXPECT_FALSE(parsePidfdInfo(bad)) << bad;
    }
}

TEST(Pidfd, ALiveProcessGivesItsPid) {
    rdtmon::test::ChildProcess p(rdtmon::test::spawnSleeper());
    UniqueFd fd(openPidfd(p.pid()));
    ASSERT_TRUE(fd) << std::strerror(errno);
    EXPECT_EQ(pidOfPidfd(fd.get()), p.pid());
    EXPECT_FALSE(pidfdExited(fd.get()));
    // It exits: the pidfd polls readable at once, before anyone reaps it.
    ::kill(p.pid(), SIGKILL);
    for (int i = 0; i < 500 && !pidfdExited(fd.get()); ++i) {
        ::usleep(2000);
    }
    EXPECT_TRUE(pidfdExited(fd.get()));
    std::string msg;
    EXPECT_EQ(pidfdKind(fd.get(), &msg), ErrorKind::NoSuchProcess);
    EXPECT_NE(msg.find("has exited"), std::string::npos) << msg;
    p.reset();
    // Reaped: fdinfo says -1.
    EXPECT_EQ(pidfdKind(fd.get(), &msg), ErrorKind::NoSuchProcess);
    EXPECT_NE(msg.find("has exited"), std::string::npos) << msg;
}

TEST(Pidfd, AZombieHasExited) {
    rdtmon::test::Zombie zombie;
    UniqueFd fd(openPidfd(zombie.pid()));
    ASSERT_TRUE(fd) << std::strerror(errno);
    EXPECT_TRUE(pidfdExited(fd.get()));
    EXPECT_EQ(pidfdKind(fd.get()), ErrorKind::NoSuchProcess);
}

TEST(Pidfd, AnFdThatIsNotAPidfdIsInvalidArgument) {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    UniqueFd r(p[0]), w(p[1]);
    UniqueFd file(::open("/proc/self/stat", O_RDONLY | O_CLOEXEC));
    std::string msg;
    for (int fd : {r.get(), w.get(), file.get()}) {
        EXPECT_EQ(pidfdKind(fd, &msg), ErrorKind::InvalidArgument);
        EXPECT_NE(msg.find("not a pidfd"), std::string::npos) << msg;
    }
    EXPECT_EQ(pidfdKind(-1), ErrorKind::InvalidArgument);
}
