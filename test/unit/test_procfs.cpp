#include "Errors.h"
#include "Proc.h"
#include "ProcFs.h"

#include <gtest/gtest.h>

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
