// Issue 8: faults, each against the real rdtmond on a private bus and the emulator.
//  - resctrl unmounted while the service runs, and back again
//  - mkdir failing with EIO / ENOSPC / EBUSY; a tasks write failing half-way through
//  - the state dir read-only or full
//  - SIGKILL at random points during a 200-hook burst, 20 rounds
//  - a hung and a flooding D-Bus peer next to a normal caller
//  - 1,000 concurrent CreateGroup calls, ids shared between clients
// After each: the service is up (or restarted), no half-made group, every group on disk is
// owned (has a record) and every record has its directory.

#include "EmulatorMount.h"
#include "PrivateBus.h"
#include "Proc.h"
#include "RdtmonClient.h"
#include "RdtmondProcess.h"
#include "Subprocess.h"
#include "Tally.h"
#include "TempDir.h"
#include "TestUtil.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <sys/mount.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

using namespace rdtmon::test;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

namespace {

// How many faults each test survived; printed at the end for docs/reliability.md's figures.
Tally faultCounts("faults", "total faults survived");

class FaultTest : public ::testing::Test {
protected:
    explicit FaultTest(unsigned rmids = 64) : emu_(EmulatorOptions{.numRmids = rmids}) {
        ::mkdir(runcRoot().c_str(), 0755);
    }
    std::string runcRoot() const { return roots_.file("runc"); }
    // A collector tick every second (how the service notices resctrl coming back) that
    // never finds anything stale.
    // Without waiting for an RMID: an injected ENOSPC or EBUSY is an error here.
    std::string config() const {
        return R"({"gc":{"intervalSeconds":1,"graceSeconds":3600},"groups":{"waitForRmid":false},)"
               R"("containerSources":[{"stateDirs":[")" +
               runcRoot() + R"("]}]})";
    }
    std::string groupDir(const std::string& id, const std::string& ctrl = "") const {
        return emu_.path() + (ctrl.empty() ? "" : "/" + ctrl) + "/mon_groups/" + id;
    }
    CommandResult hook(const std::string& action, const std::string& id, pid_t pid,
                       std::vector<std::string> extra = {}) {
        nlohmann::json st = {{"ociVersion", "1.0.2"},
                             {"id", id},
                             {"status", action == "create" ? "creating" : "stopped"},
                             {"bundle", bundle_.path()}};
        if (action == "create") {
            st["pid"] = pid;
        }
        std::vector<std::string> argv = {RDTMON_HOOK_BIN, action};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return runCommand(argv, CommandOptions{.stdinText = st.dump(), .env = {bus_.envEntry()}});
    }
    // Groups on disk (root CTRL_MON group) == owned groups == final records == records.
    void expectConsistent(RdtmonClient& c, const std::string& stateDir,
                          const std::set<std::string>& foreign = {}) {
        std::set<std::string> listed = c.listedIds();
        std::set<std::string> onDisk = entries(emu_.path() + "/mon_groups");
        for (const std::string& f : foreign) {
            onDisk.erase(f);
        }
        EXPECT_EQ(onDisk, listed) << "every group on disk is owned, every record has its dir";
        // Every record, pending ones included: start-up resolves a pending one, so "no group
        // without a record" counts it, and none may be left behind.
        EXPECT_EQ(recordedIds(stateDir, [](const nlohmann::json&) { return true; }), listed)
            << "no pending record left behind";
    }

    void SetUp() override {
        std::ofstream(bundle_.file("config.json")) << R"({"ociVersion":"1.0.2","linux":{}})";
    }

    TempDir roots_{"rdtmon-roots"};
    TempDir bundle_{"rdtmon-bundle"};
    EmulatorMount emu_;
    PrivateBus bus_;
};

// ------------------------------------------------------------ resctrl goes away

TEST_F(FaultTest, ResctrlUnmountedWhileRunningFailsCleanlyAndRecoversByItself) {
    Rdtmond d(bus_, {.resctrl = emu_.path(), .configJson = config()});
    ChildProcess p(spawnSleeper(1));
    const auto pid = static_cast<uint32_t>(p.pid());
    RdtmonClient c(bus_.address());
    ChildProcess p2(spawnSleeper());
    ASSERT_TRUE(c.createGroup("before-1", pid).ok());
    ASSERT_TRUE(c.createGroup("before-2", static_cast<uint32_t>(p2.pid())).ok());
    SignalRecorder signals(bus_.address());

    emu_.stop();
    for (int i = 0; i < 3; ++i) {
        CallResult r = c.createGroup("during", pid);
        EXPECT_EQ(r.error, "org.rdtmon1.Error.NotSupported") << r.message;
        EXPECT_THAT(r.message, HasSubstr("resctrl"));
        EXPECT_EQ(c.getCounters("before-1").error, "org.rdtmon1.Error.NotSupported");
        EXPECT_FALSE(c.property<bool>("Supported"));
    }
    uint32_t removed = 99;
    CallResult gc = c.garbageCollect(&removed);
    EXPECT_TRUE(gc.ok() || gc.error == "org.rdtmon1.Error.NotSupported") << gc.error;
    EXPECT_TRUE(d.running());
    EXPECT_THAT(d.log(), HasSubstr("resctrl"));

    // Back, empty (a fresh mount, as after a reboot of resctrl): no call is made; the
    // collector tick notices, and the records of the vanished groups are dropped.
    emu_.restart();
    EXPECT_EQ(signals.waitFor("GroupRemoved", "before-1", std::chrono::seconds(10)),
              std::optional<std::string>("vanished"));
    EXPECT_EQ(signals.waitFor("GroupRemoved", "before-2", std::chrono::seconds(10)),
              std::optional<std::string>("vanished"));
    EXPECT_TRUE(waitUntil([&] { return c.property<bool>("Supported"); }, std::chrono::seconds(5)));
    EXPECT_TRUE(c.listedIds().empty());
    EXPECT_TRUE(c.createGroup("after", pid).ok());
    EXPECT_TRUE(isDir(groupDir("after")));
    expectConsistent(c, d.stateDir());
    EXPECT_TRUE(d.running());
    faultCounts["resctrl unmounted and back"] += 1;
}

TEST_F(FaultTest, ResctrlBouncingRepeatedlyNeverLeavesALie) {
    Rdtmond d(bus_, {.resctrl = emu_.path(), .configJson = config()});
    ChildProcess p(spawnSleeper(0));
    const auto pid = static_cast<uint32_t>(p.pid());
    RdtmonClient c(bus_.address());
    for (int round = 0; round < 5; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        ASSERT_TRUE(c.createGroup(concat("g", round), pid).ok());
        emu_.stop();
        EXPECT_EQ(c.createGroup("x", pid).error, "org.rdtmon1.Error.NotSupported");
        emu_.restart();
        EXPECT_TRUE(waitUntil([&] { return c.listedIds().empty(); }, std::chrono::seconds(10)));
        expectConsistent(c, d.stateDir());
        faultCounts["resctrl unmounted and back"] += 1;
    }
    EXPECT_TRUE(d.running());
}

// ------------------------------------------------------------ mkdir / tasks faults

TEST_F(FaultTest, MkdirFailuresLeaveNoHalfMadeGroup) {
    Rdtmond d(bus_, {.resctrl = emu_.path(), .configJson = config()});
    RdtmonClient c(bus_.address());
    const std::map<std::string, std::string> expected = {
        {"EIO", "org.rdtmon1.Error.Failed"},    {"ENOSPC", "org.rdtmon1.Error.OutOfRmids"},
        {"EBUSY", "org.rdtmon1.Error.Busy"},    {"EACCES", "org.rdtmon1.Error.Failed"},
        {"ENOMEM", "org.rdtmon1.Error.Failed"},
    };
    for (const auto& [err, name] : expected) {
        SCOPED_TRACE(err);
        // Each id's group ends up made, so each gets a process of its own.
        ChildProcess p(spawnSleeper(2));
        const auto pid = static_cast<uint32_t>(p.pid());
        const std::vector<pid_t> threads = threadsOf(p.pid());
        const std::string id = "mk-" + err;
        emu_.control("fail-next-mkdir " + err);
        CallResult r = c.createGroup(id, pid);
        EXPECT_EQ(r.error, name) << r.message;
        EXPECT_FALSE(isDir(groupDir(id)));
        // The root group lists every thread on the machine; only ours are compared.
        const std::set<pid_t> root = tasksIn(emu_.path() + "/tasks");
        for (pid_t t : threads) {
            EXPECT_TRUE(root.count(t)) << "thread " << t << " left the root group";
        }
        expectConsistent(c, d.stateDir());
        // Through the hook too: one line, fail-open, nothing made.
        emu_.control("fail-next-mkdir " + err);
        CommandResult h = hook("create", id + "-hook", p.pid());
        EXPECT_EQ(h.exitCode, 0);
        EXPECT_THAT(h.err, HasSubstr(name));
        EXPECT_FALSE(isDir(groupDir(id + "-hook")));
        // The fault was one-shot: the same id now works, exactly once.
        EXPECT_TRUE(c.createGroup(id, pid).ok());
        EXPECT_TRUE(isDir(groupDir(id)));
        expectConsistent(c, d.stateDir());
        faultCounts["mkdir errors"] += 2;
    }
    EXPECT_TRUE(d.running());
}

TEST_F(FaultTest, TasksWriteFailingHalfWayLeavesNoHalfMadeGroup) {
    Rdtmond d(bus_, {.resctrl = emu_.path(), .configJson = config()});
    ChildProcess p(spawnSleeper(5));
    const std::vector<pid_t> threads = threadsOf(p.pid());
    ASSERT_EQ(threads.size(), 6u);
    const auto pid = static_cast<uint32_t>(p.pid());
    RdtmonClient c(bus_.address());
    // In the root group, and again with the process in a CTRL_MON group: after the failure
    // every thread is back in (still in) the group it started in.
    ASSERT_EQ(::mkdir((emu_.path() + "/clos1").c_str(), 0755), 0);
    for (const std::string ctrl : {"", "clos1"}) {
        if (!ctrl.empty()) {
            for (pid_t t : threads) {
                std::ofstream(emu_.path() + "/clos1/tasks") << t << "\n";
            }
        }
        const std::string ctrlTasks = emu_.path() + (ctrl.empty() ? "" : "/" + ctrl) + "/tasks";
        for (const std::string err : {"EIO", "ENOSPC", "EINVAL"}) {
            for (int after : {0, 1, 3, 5}) {
                SCOPED_TRACE("ctrl '" + ctrl + "' " + err + " after " + std::to_string(after));
                const std::string id = "half-" + std::to_string(after);
                emu_.control("fail-tasks-write-after " + std::to_string(after) + " " + err);
                CallResult r = c.createGroup(id, pid);
                EXPECT_FALSE(r.ok());
                EXPECT_THAT(r.error, ::testing::StartsWith("org.rdtmon1.Error."));
                EXPECT_FALSE(isDir(groupDir(id, ctrl))) << "the half-made group was removed";
                std::set<pid_t> back = tasksIn(ctrlTasks);
                for (pid_t t : threads) {
                    EXPECT_TRUE(back.count(t)) << "thread " << t << " not back in its group";
                }
                expectConsistent(c, d.stateDir());
                faultCounts["tasks write failing half-way"] += 1;
            }
        }
    }
    // And a normal create still moves every thread.
    ASSERT_TRUE(c.createGroup("whole", pid).ok());
    std::set<pid_t> moved = tasksIn(groupDir("whole", "clos1") + "/tasks");
    for (pid_t t : threads) {
        EXPECT_TRUE(moved.count(t));
    }
    EXPECT_TRUE(d.running());
}

// ------------------------------------------------------------ state dir faults

// A small tmpfs mounted for one test; unmounted (lazily, never hanging) on destruction.
class SmallTmpfs {
public:
    explicit SmallTmpfs(const std::string& path, const std::string& size) : path_(path) {
        ::mkdir(path.c_str(), 0700);
        mounted_ = ::mount("tmpfs", path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
                           ("size=" + size + ",mode=0700").c_str()) == 0;
        err_ = errno;
    }
    ~SmallTmpfs() {
        if (mounted_) {
            ::umount2(path_.c_str(), MNT_DETACH);
        }
    }
    SmallTmpfs(const SmallTmpfs&) = delete;
    SmallTmpfs& operator=(const SmallTmpfs&) = delete;
    bool mounted() const { return mounted_; }
    int error() const { return err_; }
    bool setReadOnly(bool ro) {
        unsigned long flags = MS_REMOUNT | MS_NOSUID | MS_NODEV | (ro ? MS_RDONLY : 0);
        return ::mount("tmpfs", path_.c_str(), "tmpfs", flags, nullptr) == 0;
    }
    // Fills the file system: writes a filler file until ENOSPC.
    void fill() {
        int fd = ::open((path_ + "/filler").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        std::string block(4096, 'x');
        while (fd >= 0 && ::write(fd, block.data(), block.size()) > 0) {
        }
        if (fd >= 0) {
            ::close(fd);
        }
    }
    void unfill() { ::unlink((path_ + "/filler").c_str()); }

private:
    std::string path_;
    bool mounted_ = false;
    int err_ = 0;
};

TEST_F(FaultTest, StateDirFullOrReadOnlyFailsCreateCleanly) {
    TempDir dir("rdtmon-statefs");
    SmallTmpfs fs(dir.file("state"), "256k");
    if (!fs.mounted()) {
        GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(fs.error());
    }
    Rdtmond d(bus_,
              {.resctrl = emu_.path(), .stateDir = dir.file("state"), .configJson = config()});
    ChildProcess p(spawnSleeper(1));
    const auto pid = static_cast<uint32_t>(p.pid());
    // The new groups' process: never the one in "kept" (that would be Busy, not Failed).
    ChildProcess q(spawnSleeper());
    const auto qpid = static_cast<uint32_t>(q.pid());
    RdtmonClient c(bus_.address());
    ASSERT_TRUE(c.createGroup("kept", pid).ok());
    // A restart leaves the records in groups.json alone: the journal's page, which would
    // take a few more lines on a full file system, is gone, and the next line needs a page.
    d.stop();
    d.start();
    ASSERT_FALSE(exists(d.stateDir() + "/groups.journal"));
    const std::map<std::string, nlohmann::json> recordsBefore = recordedGroups(d.stateDir());
    const std::set<pid_t> keptTasks = tasksIn(groupDir("kept") + "/tasks");

    auto expectCleanFailure = [&](const std::string& why) {
        SCOPED_TRACE(why);
        const std::string stateBefore = stateFilesText(d.stateDir());
        for (const std::string id : {"new-1", "new-2"}) {
            CallResult r = c.createGroup(id, qpid);
            EXPECT_EQ(r.error, "org.rdtmon1.Error.Failed") << r.message;
            EXPECT_FALSE(isDir(groupDir(id)));
            CommandResult h = hook("create", id + "-hook", q.pid());
            EXPECT_EQ(h.exitCode, 0);
            EXPECT_THAT(h.err, HasSubstr("org.rdtmon1.Error.Failed"));
            EXPECT_FALSE(isDir(groupDir(id + "-hook")));
            faultCounts["state dir full or read-only"] += 2;
        }
        EXPECT_EQ(stateFilesText(d.stateDir()), stateBefore) << "a failed create wrote";
        EXPECT_EQ(recordedGroups(d.stateDir()), recordsBefore);
        EXPECT_EQ(c.listedIds(), std::set<std::string>{"kept"});
        EXPECT_EQ(entries(emu_.path() + "/mon_groups"), std::set<std::string>{"kept"});
        EXPECT_EQ(tasksIn(groupDir("kept") + "/tasks"), keptTasks) << "threads not moved";
        EXPECT_TRUE(d.running());
    };

    fs.fill();
    expectCleanFailure("state dir full");
    fs.unfill();
    ASSERT_TRUE(c.createGroup("after-full", qpid).ok());
    ASSERT_TRUE(c.removeGroup("after-full").ok());
    // The same id is the idempotent path: its threads are moved again.
    ASSERT_TRUE(c.createGroup("kept", pid).ok());

    ASSERT_TRUE(fs.setReadOnly(true)) << std::strerror(errno);
    expectCleanFailure("state dir read-only");
    ASSERT_TRUE(fs.setReadOnly(false)) << std::strerror(errno);
    EXPECT_TRUE(c.createGroup("after-ro", qpid).ok());
    expectConsistent(c, d.stateDir());
    // A restart agrees.
    d.stop();
    d.start();
    RdtmonClient c2(bus_.address());
    EXPECT_EQ(c2.listedIds(), (std::set<std::string>{"after-ro", "kept"}));
    expectConsistent(c2, d.stateDir());
}

// ------------------------------------------------------------ SIGKILL during hooks

class KillTest : public FaultTest {
protected:
    KillTest() : FaultTest(512) {}
};

TEST_F(KillTest, SigkillDuringA200HookBurstTwentyRoundsLeavesNoOrphanAndNoLie) {
    ASSERT_EQ(::mkdir(groupDir("foreign").c_str(), 0755), 0);
    Rdtmond d(bus_, {.resctrl = emu_.path(), .configJson = config()});
    std::mt19937 rng(8);
    const int kRounds = scaledRounds(20);
    constexpr int kHooks = 200;
    constexpr int kWorkers = 4;
    int hookFailures = 0;
    for (int round = 0; round < kRounds; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        const Sleepers inits(kHooks); // one container init per hook
        std::atomic<int> next{0};
        std::atomic<int> failures{0};
        std::vector<std::thread> workers;
        for (int w = 0; w < kWorkers; ++w) {
            workers.emplace_back([&] {
                for (int i; (i = next++) < kHooks;) {
                    const std::string id = concat("r", round, "-", i);
                    CommandResult r = hook("create", id, inits.pid(static_cast<std::size_t>(i)));
                    failures += !r.err.empty();
                    if (r.exitCode != 0) {
                        ADD_FAILURE() << "hook exit " << r.exitCode << ": " << r.err;
                    }
                    if (i % 3 == 0) {
                        CommandResult del =
                            hook("delete", id, inits.pid(static_cast<std::size_t>(i)));
                        failures += !del.err.empty();
                    }
                }
            });
        }
        // Kill at a random point of the burst, restart while hooks keep coming.
        std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 400));
        d.kill9();
        std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 100));
        d.start();
        for (std::thread& t : workers) {
            t.join();
        }
        hookFailures += failures;
        // Start-up of the restarted service resolved what the kill left; a second restart
        // (no kill) must find the same.
        RdtmonClient c(bus_.address());
        expectConsistent(c, d.stateDir(), {"foreign"});
        EXPECT_TRUE(isDir(groupDir("foreign"))) << "a group that was never ours is untouched";
        // Clean up for the next round (RMIDs are finite).
        for (const std::string& id : c.listedIds()) {
            EXPECT_TRUE(c.removeGroup(id).ok()) << id;
        }
        faultCounts["SIGKILL during a 200-hook burst"] += 1;
    }
    d.stop();
    EXPECT_EQ(entries(emu_.path() + "/mon_groups"), std::set<std::string>{"foreign"});
    std::printf("[faults] %d hooks over %d rounds, %d reported a failure line (fail-open)\n",
                kRounds * kHooks, kRounds, hookFailures);
}

// ------------------------------------------------------------ hostile peers

TEST_F(FaultTest, AHungAndAFloodingPeerDoNotStallOtherCallers) {
    Rdtmond d(bus_, {.resctrl = emu_.path(), .configJson = config()});
    ChildProcess p(spawnSleeper(1));
    const auto pid = static_cast<uint32_t>(p.pid());
    {
        RdtmonClient c(bus_.address());
        ASSERT_TRUE(c.createGroup("busy", pid).ok());
    }
    // The hung peer: sends thousands of calls and never reads a reply (no event loop runs
    // on its connection), and subscribes to every signal it will never read either.
    auto hungConn = sdbus::createSessionBusConnectionWithAddress(bus_.address());
    auto hungProxy = sdbus::createProxy(*hungConn, "org.rdtmon1", "/org/rdtmon1");
    for (int i = 0; i < 3000; ++i) {
        const char* method = i % 3 == 0   ? "ListGroups"
                             : i % 3 == 1 ? "GetCounters"
                                          : "GarbageCollect";
        auto call = hungProxy->createMethodCall("org.rdtmon1.Manager", method);
        if (i % 3 == 1) {
            call << std::string("busy");
        }
        hungProxy->callMethod(call, [](sdbus::MethodReply&, const sdbus::Error*) {});
    }
    // Flooding peers: tight loops of synchronous calls from several threads.
    std::atomic<bool> stop{false};
    std::atomic<long> floodCalls{0};
    std::vector<std::thread> flood;
    for (int t = 0; t < 3; ++t) {
        flood.emplace_back([&, t] {
            RdtmonClient c(bus_.address());
            while (!stop) {
                if (t == 0) {
                    c.getCounters("busy");
                } else if (t == 1) {
                    c.listGroups();
                } else {
                    c.createGroup("../bad", pid);
                    c.garbageCollect();
                }
                ++floodCalls;
            }
        });
    }
    // The normal caller: hooks with the default timeout (scaled for slow builds). Each must
    // finish well inside it.
    const auto hookTimeout = scaledDeadline(std::chrono::seconds(5));
    const std::string timeoutArg = "--timeout=" + std::to_string(hookTimeout.count());
    const Sleepers inits(15);
    std::chrono::milliseconds worst{0};
    for (int i = 0; i < 15; ++i) {
        const std::string id = "normal-" + std::to_string(i);
        CommandResult r = hook("create", id, inits.pid(static_cast<std::size_t>(i)),
                               {"--fail-closed", timeoutArg});
        EXPECT_EQ(r.exitCode, 0) << r.err;
        worst = std::max(worst, std::chrono::duration_cast<std::chrono::milliseconds>(r.elapsed));
        CommandResult del = hook("delete", id, p.pid(), {"--fail-closed", timeoutArg});
        EXPECT_EQ(del.exitCode, 0) << del.err;
        worst = std::max(worst, std::chrono::duration_cast<std::chrono::milliseconds>(del.elapsed));
    }
    stop = true;
    for (std::thread& t : flood) {
        t.join();
    }
    EXPECT_LT(worst, hookTimeout) << "the hook's default timeout is 5 s (x" << kSlowdown << ")";
    EXPECT_GT(floodCalls.load(), 0);
    EXPECT_TRUE(d.running());
    std::printf("[faults] slowest hook next to a hung peer (3000 unread calls) and %ld flood "
                "calls: %lld ms\n",
                floodCalls.load(), static_cast<long long>(worst.count()));
    faultCounts["hung and flooding peers"] += 1;
}

TEST_F(KillTest, AThousandConcurrentCreatesGiveExactlyOneGroupPerId) {
    Rdtmond d(bus_, {.resctrl = emu_.path(), .configJson = config()});
    constexpr int kCalls = 1000;
    constexpr int kIds = 300;      // so about 3 calls per id, from different clients
    const Sleepers inits(kIds, 1); // one container init per id
    constexpr int kClients = 16;
    std::atomic<int> next{0};
    std::mutex mu;
    std::map<std::string, int> errors;
    std::map<std::string, std::set<std::string>> pathsPerId;
    std::vector<std::thread> clients;
    for (int t = 0; t < kClients; ++t) {
        clients.emplace_back([&, t] {
            RdtmonClient c(bus_.address());
            std::mt19937 rng(static_cast<unsigned>(t));
            for (int i; (i = next++) < kCalls;) {
                const auto n = static_cast<std::size_t>((i * 7 + rng() % 3) % kIds);
                const std::string id = "same-" + std::to_string(n);
                sdbus::ObjectPath path;
                CallResult r = c.createGroup(id, inits.upid(n), &path);
                std::lock_guard<std::mutex> lock(mu);
                if (!r.ok()) {
                    ++errors[r.error + ": " + r.message];
                } else {
                    pathsPerId[id].insert(path);
                }
            }
        });
    }
    for (std::thread& t : clients) {
        t.join();
    }
    EXPECT_TRUE(errors.empty()) << errors.begin()->first;
    RdtmonClient c(bus_.address());
    std::set<std::string> listed = c.listedIds();
    std::set<std::string> used;
    for (const auto& [id, paths] : pathsPerId) {
        used.insert(id);
        EXPECT_EQ(paths.size(), 1u) << id << " got more than one object path";
    }
    EXPECT_EQ(listed, used);
    EXPECT_EQ(c.listGroups().size(), used.size()) << "exactly one group per id";
    EXPECT_EQ(entries(emu_.path() + "/mon_groups"), used);
    expectConsistent(c, d.stateDir());
    EXPECT_EQ(c.property<uint32_t>("GroupCount"), used.size());
    faultCounts["1000 concurrent CreateGroup calls"] += 1;
}

} // namespace
