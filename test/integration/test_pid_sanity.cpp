// CreateGroup refuses the pids no container's init can have, before anything is made:
// pid 1, a kernel thread, rdtmond itself, a zombie, and a process already in the group of
// another running container (Busy). Each refusal leaves no directory, record or signal.

#include "DaemonOnEmulator.h"
#include "EmulatorMount.h"
#include "PrivateBus.h"
#include "Proc.h"
#include "ProcStat.h"
#include "RdtmonClient.h"
#include "RdtmondProcess.h"
#include "Subprocess.h"
#include "TempDir.h"
#include "TestUtil.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <set>
#include <string>

using namespace rdtmon::test;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

class PidSanity : public ::testing::Test, protected DaemonOnEmulator {
protected:
    PidSanity() : DaemonOnEmulator(EmulatorOptions{.numRmids = 16}) {}

    std::string groupDir(const std::string& id) { return emu_.path() + "/mon_groups/" + id; }
    std::set<std::string> groupsOnDisk() { return entries(emu_.path() + "/mon_groups"); }
    std::string stateFile() { return stateFilesText(daemon_.stateDir()); }

    // The refusal left nothing: no directory, no record, and no signal before the sentinel
    // create's own GroupCreated (signals are ordered on the bus).
    void expectNothingMade(RdtmonClient& c, SignalRecorder& signals,
                           const std::set<std::string>& groupsBefore,
                           const std::string& stateBefore, const std::string& sentinel,
                           uint32_t sentinelPid) {
        EXPECT_EQ(groupsOnDisk(), groupsBefore);
        EXPECT_EQ(stateFile(), stateBefore);
        ASSERT_TRUE(c.createGroup(sentinel, sentinelPid).ok());
        ASSERT_TRUE(signals.waitFor("GroupCreated", sentinel));
        const auto events = signals.events();
        ASSERT_FALSE(events.empty());
        EXPECT_EQ(events.front().id, sentinel)
            << "a signal came before the sentinel's: " << events.front().signal << " "
            << events.front().id;
    }
};

TEST_F(PidSanity, PidsNoContainerCanHaveAreRefusedNamingTheRule) {
    RdtmonClient c(bus_.address());
    SignalRecorder signals(bus_.address());
    Zombie zombie;
    const pid_t kthread = someKernelThread();
    struct Case {
        std::string what;
        uint32_t pid;
        std::string error;
        std::string rule;
    };
    std::vector<Case> cases = {
        {"pid 1", 1, "org.rdtmon1.Error.InvalidArgument", "pid 1 is the init"},
        {"kthreadd", 2, "org.rdtmon1.Error.InvalidArgument", "kernel thread"},
        {"rdtmond", static_cast<uint32_t>(daemon_.pid()), "org.rdtmon1.Error.InvalidArgument",
         "rdtmond itself"},
        {"zombie", static_cast<uint32_t>(zombie.pid()), "org.rdtmon1.Error.NoSuchProcess",
         "zombie"},
    };
    if (kthread > 0) {
        cases.push_back({"kernel thread " + std::to_string(kthread), static_cast<uint32_t>(kthread),
                         "org.rdtmon1.Error.InvalidArgument", "kernel thread"});
    }
    const auto groupsBefore = groupsOnDisk();
    const std::string stateBefore = stateFile();
    for (const Case& k : cases) {
        SCOPED_TRACE(k.what);
        CallResult r = c.createGroup("victim", k.pid);
        EXPECT_EQ(r.error, k.error) << r.message;
        EXPECT_THAT(r.message, HasSubstr(k.rule));
        EXPECT_FALSE(isDir(groupDir("victim")));
    }
    ChildProcess ok(spawnSleeper());
    expectNothingMade(c, signals, groupsBefore, stateBefore, "sentinel",
                      static_cast<uint32_t>(ok.pid()));
    EXPECT_TRUE(daemon_.running());
}

TEST_F(PidSanity, TheHookPassesTheRefusalThroughItsFailOpenLine) {
    TempDir bundle("rdtmon-bundle");
    std::ofstream(bundle.file("config.json")) << R"({"ociVersion":"1.0.2","linux":{}})";
    const std::string state = nlohmann::json{
        {"ociVersion", "1.0.2"},
        {"id", "pid-one"},
        {"status", "creating"},
        {"pid", 1},
        {"bundle", bundle.path()}}.dump();
    CommandResult r = runCommand({RDTMON_HOOK_BIN, "create"},
                                 CommandOptions{.stdinText = state, .env = {bus_.envEntry()}});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    EXPECT_THAT(r.err, HasSubstr("container pid-one: create failed (fail-open): "
                                 "org.rdtmon1.Error.InvalidArgument"));
    EXPECT_THAT(r.err, HasSubstr("pid 1"));
    EXPECT_FALSE(isDir(groupDir("pid-one")));
}

TEST_F(PidSanity, AProcessInAnotherRunningContainersGroupIsBusyNamingIt) {
    RdtmonClient c(bus_.address());
    Forker initA; // container a's init
    ASSERT_TRUE(c.createGroup("a", static_cast<uint32_t>(initA.pid())).ok());
    // A process started inside container a after its group was made (as one started by the
    // container's own init is): it is in a's group.
    const pid_t childOfA = initA.forkChild();
    ASSERT_EQ(tasksOf(groupDir("a")).count(childOfA), 1u);

    SignalRecorder signals(bus_.address());
    const auto groupsBefore = groupsOnDisk();
    const std::string stateBefore = stateFile();
    for (pid_t p : {initA.pid(), childOfA}) {
        SCOPED_TRACE("pid " + std::to_string(p));
        CallResult r = c.createGroup("b", static_cast<uint32_t>(p));
        EXPECT_EQ(r.error, "org.rdtmon1.Error.Busy") << r.message;
        EXPECT_THAT(r.message, HasSubstr("container a"));
    }
    EXPECT_TRUE(tasksOf(groupDir("a")).count(initA.pid())) << "a's init stays in a";
    EXPECT_TRUE(tasksOf(groupDir("a")).count(childOfA));
    ChildProcess ok(spawnSleeper());
    expectNothingMade(c, signals, groupsBefore, stateBefore, "sentinel",
                      static_cast<uint32_t>(ok.pid()));

    // The same id stays the idempotent path.
    sdbus::ObjectPath again;
    EXPECT_TRUE(c.createGroup("a", static_cast<uint32_t>(initA.pid()), &again).ok());
    EXPECT_EQ(again, "/org/rdtmon1/group/a");
}

// Found through the task's own cpu_resctrl_groups: a process that is not the other
// container's init or one of its descendants, moved into its group by hand. (The tasks
// scan of a kernel without that file reads only the groups such a process can be in.)
TEST_F(PidSanity, AProcessMovedByHandIntoAnotherRunningContainersGroupIsBusy) {
    RdtmonClient c(bus_.address());
    ChildProcess initA(spawnSleeper());
    ASSERT_TRUE(c.createGroup("a", static_cast<uint32_t>(initA.pid())).ok());
    ChildProcess stranger(spawnSleeper(1));
    for (pid_t t : threadsOf(stranger.pid())) {
        writeFile(groupDir("a") + "/tasks", std::to_string(t));
    }
    CallResult r = c.createGroup("b", static_cast<uint32_t>(stranger.pid()));
    EXPECT_EQ(r.error, "org.rdtmon1.Error.Busy") << r.message;
    EXPECT_THAT(r.message, HasSubstr("container a"));
    EXPECT_FALSE(isDir(groupDir("b")));
    EXPECT_EQ(tasksOf(groupDir("a")).count(stranger.pid()), 1u);
}

TEST_F(PidSanity, AThreadOfAnotherContainersInitIsBusyToo) {
    RdtmonClient c(bus_.address());
    ChildProcess initA(spawnSleeper(2));
    ASSERT_TRUE(c.createGroup("a", static_cast<uint32_t>(initA.pid())).ok());
    const std::vector<pid_t> threads = threadsOf(initA.pid());
    ASSERT_EQ(threads.size(), 3u);
    const pid_t notTheLeader = threads.front() == initA.pid() ? threads.back() : threads.front();
    CallResult r = c.createGroup("b", static_cast<uint32_t>(notTheLeader));
    EXPECT_EQ(r.error, "org.rdtmon1.Error.Busy") << r.message;
    EXPECT_FALSE(isDir(groupDir("b")));
}

TEST_F(PidSanity, WhenTheOtherContainerIsGoneItsGroupIsCollectedAndTheCreateProceeds) {
    RdtmonClient c(bus_.address());
    SignalRecorder signals(bus_.address());
    Forker initA;
    ASSERT_TRUE(c.createGroup("a", static_cast<uint32_t>(initA.pid())).ok());
    const pid_t leftOver = initA.forkChild();
    ASSERT_EQ(tasksOf(groupDir("a")).count(leftOver), 1u);
    initA.killParent(); // container a's init exits: a is gone, one of its processes lives on

    CallResult r = c.createGroup("b", static_cast<uint32_t>(leftOver));
    ASSERT_TRUE(r.ok()) << r.error << ": " << r.message;
    EXPECT_EQ(signals.waitFor("GroupRemoved", "a"), std::optional<std::string>("stale"));
    EXPECT_FALSE(isDir(groupDir("a")));
    EXPECT_EQ(tasksOf(groupDir("b")).count(leftOver), 1u);
    EXPECT_EQ(c.listedIds(), (std::set<std::string>{"b"}));
    EXPECT_EQ(recordedGroups(daemon_.stateDir()).count("a"), 0u) << stateFile();
}

// A pid number is only taken from a caller in rdtmond's own pid namespace: from another one
// (here busctl in a new pid namespace) it would name another process, or none.
TEST_F(PidSanity, APidNumberFromAnotherPidNamespaceIsRefused) {
    ChildProcess p(spawnSleeper());
    const std::string pid = std::to_string(p.pid());
    const std::string start =
        std::to_string(rdtmon::parseProcStat(readFile("/proc/" + pid + "/stat"))->startTime);
    for (const std::vector<std::string>& call :
         {std::vector<std::string>{"CreateGroup", "su", "x", pid},
          std::vector<std::string>{"AddContainerByPid", "suta{ss}", "x", pid, start, "0"}}) {
        SCOPED_TRACE(call[0]);
        std::vector<std::string> args = {"call", "org.rdtmon1", "/org/rdtmon1",
                                         "org.rdtmon1.Manager"};
        args.insert(args.end(), call.begin(), call.end());
        std::vector<std::string> argv = {"unshare", "--pid", "--fork"};
        const std::vector<std::string> busctl = bus_.busctl(args);
        argv.insert(argv.end(), busctl.begin(), busctl.end());
        // As pid 1 of its namespace busctl would log to the kernel's log, not to stderr.
        const CommandResult r =
            runCommand(argv, CommandOptions{.env = {"SYSTEMD_LOG_TARGET=console"}});
        EXPECT_NE(r.exitCode, 0);
        EXPECT_THAT(r.err, HasSubstr("another one")) << r.err;
        EXPECT_FALSE(isDir(groupDir("x")));
        // From this pid namespace the same call works.
        const CommandResult ok = runCommand(bus_.busctl(args));
        EXPECT_EQ(ok.exitCode, 0) << ok.err;
        EXPECT_TRUE(isDir(groupDir("x")));
        ASSERT_TRUE(RdtmonClient(bus_.address()).removeGroup("x").ok());
    }
}

// AddContainerByPid names the process by pid and start time: a start time that is not the
// process's (its pid was reused) is NoSuchProcess, and nothing is made.
TEST_F(PidSanity, AddContainerByPidChecksTheStartTime) {
    ChildProcess p(spawnSleeper(1));
    const std::string pid = std::to_string(p.pid());
    const unsigned long long start =
        rdtmon::parseProcStat(readFile("/proc/" + pid + "/stat"))->startTime;
    auto add = [&](unsigned long long t) {
        return runCommand(bus_.busctl({"call", "org.rdtmon1", "/org/rdtmon1", "org.rdtmon1.Manager",
                                       "AddContainerByPid", "suta{ss}", "x", pid, std::to_string(t),
                                       "1", "pod", "web"}));
    };
    const CommandResult wrong = add(start + 1);
    EXPECT_NE(wrong.exitCode, 0);
    EXPECT_THAT(wrong.err, HasSubstr("started at")) << wrong.err;
    EXPECT_FALSE(isDir(groupDir("x")));
    const CommandResult right = add(start);
    ASSERT_EQ(right.exitCode, 0) << right.err;
    EXPECT_EQ(right.out, "os \"/org/rdtmon1/group/x\" \"active\"\n");
    const std::vector<pid_t> threads = threadsOf(p.pid());
    EXPECT_EQ(tasksOf(groupDir("x")), std::set<pid_t>(threads.begin(), threads.end()));
    EXPECT_EQ(RdtmonClient(bus_.address()).labelsOf("x"),
              (std::map<std::string, std::string>{{"pod", "web"}}));
}

} // namespace
