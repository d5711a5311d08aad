// GroupManager without a bus: the ordering that keeps resctrl and the records consistent,
// driven against resctrl-emu.

#include "Clock.h"
#include "ContainerSource.h"
#include "CountersReader.h"
#include "EmulatorMount.h"
#include "Errors.h"
#include "GarbageCollector.h"
#include "GroupManager.h"
#include "GroupRegistry.h"
#include "ListSource.h"
#include "ManagerRestart.h"
#include "Proc.h"
#include "TempDir.h"
#include "TestUtil.h"
#include "UniqueFd.h"

#include <algorithm>
#include <fcntl.h>
#include <fstream>
#include <gtest/gtest.h>
#include <poll.h>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

using namespace rdtmon;
using namespace rdtmon::test;

namespace {

struct Recorded {
    std::vector<std::string> created;
    std::vector<std::pair<std::string, std::string>> removed; // id, reason
};

class GroupManagerTest : public ::testing::Test {
protected:
    GroupManagerTest() { reopen(); }

    // A fresh registry + manager over the same state dir: what a restart does.
    void reopen() {
        GroupManager::Events ev;
        ev.created = [this](const GroupRecord& r) { rec_.created.push_back(r.id); };
        ev.removed = [this](const GroupRecord& r, RemoveReason why) {
            rec_.removed.emplace_back(r.id, reasonName(why));
        };
        reopenManager(mgr_, registry_, state_.file("state"), emulatorOpener(emu_), ev,
                      [this] { return now_; });
    }
    std::string dir(const std::string& id) const { return emu_.path() + "/mon_groups/" + id; }
    // A collector whose only source lists no container, with no grace.
    static std::unique_ptr<GarbageCollector> nothingRuns() {
        std::vector<std::unique_ptr<ContainerSource>> sources;
        sources.push_back(std::make_unique<ListSource>(std::set<std::string>{}));
        return std::make_unique<GarbageCollector>(std::move(sources), std::chrono::seconds(0));
    }

    EmulatorMount emu_{EmulatorOptions{.numRmids = 8}};
    TempDir state_{"rdtmon-gm"};
    std::unique_ptr<GroupRegistry> registry_;
    std::unique_ptr<GroupManager> mgr_;
    Recorded rec_;
    uint64_t now_ = 1'700'000'000'000'000ULL;
};

TEST_F(GroupManagerTest, CreateMovesEveryThreadAndRecordsTheGroup) {
    ChildProcess p(spawnSleeper(2));
    GroupRecord r = mgr_->createGroup("c1", static_cast<uint32_t>(p.pid()));
    EXPECT_EQ(r.ctrl, "");
    EXPECT_FALSE(r.pending);
    EXPECT_EQ(r.createdUsec, now_);
    std::set<pid_t> want;
    for (pid_t t : threadsOf(p.pid())) {
        want.insert(t);
    }
    EXPECT_EQ(tasksOf(dir("c1")), want);
    ASSERT_TRUE(registry_->find("c1"));
    EXPECT_FALSE(registry_->find("c1")->pending);
    EXPECT_EQ(rec_.created, std::vector<std::string>{"c1"});
    mgr_->removeGroup("c1");
    EXPECT_FALSE(isDir(dir("c1")));
    EXPECT_FALSE(registry_->find("c1"));
    ASSERT_EQ(rec_.removed.size(), 1u);
    EXPECT_EQ(rec_.removed[0].second, "requested");
}

TEST_F(GroupManagerTest, APidfdCreateTakesThePidFromTheFdAndKeepsTheLabels) {
    ChildProcess p(spawnSleeper(1));
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, p.pid(), 0)));
    ASSERT_TRUE(pidfd);
    const Labels labels = {{"pod", "web"}, {"namespace", "shop"}};
    GroupRecord r = mgr_->createGroupForPidfd("c1", pidfd.get(), labels);
    EXPECT_EQ(r.pid, static_cast<uint32_t>(p.pid()));
    EXPECT_EQ(r.labels, labels);
    EXPECT_EQ(registry_->find("c1")->labels, labels);
    const std::vector<pid_t> threads = threadsOf(p.pid());
    EXPECT_EQ(tasksOf(dir("c1")), std::set<pid_t>(threads.begin(), threads.end()));

    // Bad labels and a fd that is no pidfd touch nothing.
    expectError(ErrorKind::InvalidArgument, [&] {
        mgr_->createGroupForPidfd("c2", pidfd.get(), {{"Bad", "v"}});
    });
    UniqueFd notPidfd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    expectError(ErrorKind::InvalidArgument,
                [&] { mgr_->createGroupForPidfd("c2", notPidfd.get(), labels); });
    expectError(ErrorKind::InvalidArgument, [&] {
        mgr_->createGroup("c2", static_cast<uint32_t>(p.pid()), {{"", "v"}});
    });
    EXPECT_FALSE(isDir(dir("c2")));
    EXPECT_FALSE(registry_->find("c2"));
    // Exited: NoSuchProcess, nothing made.
    p.reset();
    expectError(ErrorKind::NoSuchProcess,
                [&] { mgr_->createGroupForPidfd("c3", pidfd.get(), labels); });
    EXPECT_FALSE(isDir(dir("c3")));
    EXPECT_FALSE(registry_->find("c3"));
    EXPECT_EQ(rec_.created, std::vector<std::string>{"c1"});
}

TEST_F(GroupManagerTest, AHalfMadeGroupFromACrashIsRemovedAtStartUp) {
    // What a crash between mkdir and the final record leaves: a pending record + the dir.
    ChildProcess p(spawnSleeper());
    GroupRecord pending{"crashed", "", static_cast<uint32_t>(p.pid()), now_, true};
    registry_->put(pending);
    ASSERT_EQ(::mkdir(dir("crashed").c_str(), 0755), 0);
    // And a pending record whose mkdir never happened.
    registry_->put(GroupRecord{"nodir", "", 1, now_, true});
    reopen();
    EXPECT_FALSE(isDir(dir("crashed")));
    EXPECT_FALSE(registry_->find("crashed"));
    EXPECT_FALSE(registry_->find("nodir"));
    EXPECT_TRUE(rec_.removed.empty()) << "nobody was ever told these groups existed";
}

TEST_F(GroupManagerTest, ADirectoryWithoutARecordIsNeverOurs) {
    ASSERT_EQ(::mkdir(dir("foreign").c_str(), 0755), 0);
    reopen();
    EXPECT_EQ(mgr_->collect(*nothingRuns()), 0u);
    EXPECT_TRUE(isDir(dir("foreign")));
    ChildProcess p(spawnSleeper());
    EXPECT_THROW(
        {
            try {
                mgr_->createGroup("foreign", static_cast<uint32_t>(p.pid()));
            } catch (const Error& e) {
                EXPECT_EQ(e.kind(), ErrorKind::AlreadyExists);
                throw;
            }
        },
        Error);
    EXPECT_TRUE(isDir(dir("foreign")));
    EXPECT_FALSE(registry_->find("foreign"));
}

TEST_F(GroupManagerTest, AFailedThreadMoveLeavesNoGroupAndNoRecord) {
    ChildProcess p(spawnSleeper(3));
    emu_.control("fail-tasks-write-after 2 EIO");
    try {
        mgr_->createGroup("half", static_cast<uint32_t>(p.pid()));
        FAIL() << "expected a failure";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Failed) << e.what();
    }
    EXPECT_FALSE(isDir(dir("half")));
    EXPECT_FALSE(registry_->find("half"));
    EXPECT_TRUE(rec_.created.empty());
}

// The undo of a failed create never changes the group of a task that was not ours to move:
// a thread that was in another MON group (not rdtmond's: a runtime's native monitoring
// group) goes back to it, not to the CTRL_MON group as the rmdir alone would put it.
TEST_F(GroupManagerTest, AFailedCreatePutsEachMovedThreadBackWhereItWas) {
    ChildProcess p(spawnSleeper(2));
    ASSERT_EQ(::mkdir(dir("native").c_str(), 0755), 0);
    const std::vector<pid_t> threads = threadsOf(p.pid());
    for (pid_t t : threads) {
        writeFile(dir("native") + "/tasks", std::to_string(t));
    }
    emu_.control("fail-tasks-write-after 1 EIO"); // the first thread moves, the second fails
    expectError(ErrorKind::Failed,
                [&] { mgr_->createGroup("c1", static_cast<uint32_t>(p.pid())); });
    EXPECT_FALSE(isDir(dir("c1")));
    EXPECT_EQ(tasksOf(dir("native")), std::set<pid_t>(threads.begin(), threads.end()));
}

// The same for an idempotent re-create (a runtime's retry) with a process of another
// group: the group stays, and nothing that moved stays in it.
TEST_F(GroupManagerTest, AFailedReCreateLeavesNoMovedThreadInTheGroup) {
    ChildProcess init(spawnSleeper());
    mgr_->createGroup("c1", static_cast<uint32_t>(init.pid()));
    ChildProcess other(spawnSleeper(2));
    ASSERT_EQ(::mkdir(dir("native").c_str(), 0755), 0);
    const std::vector<pid_t> threads = threadsOf(other.pid());
    for (pid_t t : threads) {
        writeFile(dir("native") + "/tasks", std::to_string(t));
    }
    emu_.control("fail-tasks-write-after 1 EIO");
    expectError(ErrorKind::Failed,
                [&] { mgr_->createGroup("c1", static_cast<uint32_t>(other.pid())); });
    EXPECT_EQ(tasksOf(dir("c1")), std::set<pid_t>{init.pid()});
    EXPECT_EQ(tasksOf(dir("native")), std::set<pid_t>(threads.begin(), threads.end()));
    EXPECT_EQ(registry_->find("c1")->pid, static_cast<uint32_t>(init.pid()));
}

TEST_F(GroupManagerTest, AnUnwritableStateDirMeansNoGroup) {
    ChildProcess p(spawnSleeper());
    // Replace the state dir by a file: every persist fails.
    TempDir other("rdtmon-gm2");
    const std::string file = other.file("not-a-dir");
    std::ofstream(file) << "x";
    registry_ = std::make_unique<GroupRegistry>(file + "/state");
    GroupManager::Events ev;
    GroupManager mgr([this](std::string&) { return std::make_unique<Resctrl>(emu_.path()); },
                     *registry_, ev);
    mgr.start();
    try {
        mgr.createGroup("nostate", static_cast<uint32_t>(p.pid()));
        FAIL() << "expected a failure";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Failed) << e.what();
    }
    EXPECT_FALSE(isDir(dir("nostate")));
}

TEST_F(GroupManagerTest, ProcessGoneIsNoSuchProcessAndLeavesNothing) {
    pid_t gone = 0;
    {
        ChildProcess p(spawnSleeper());
        gone = p.pid();
    }
    try {
        mgr_->createGroup("ghost", static_cast<uint32_t>(gone));
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::NoSuchProcess);
    }
    EXPECT_FALSE(isDir(dir("ghost")));
    EXPECT_FALSE(registry_->find("ghost"));
}

TEST_F(GroupManagerTest, CollectionRemovesOnlyStaleOwnedGroupsPastTheGrace) {
    const Sleepers inits(3); // one container init per id
    mgr_->createGroup("old-dead", inits.upid(0));
    mgr_->createGroup("old-live", inits.upid(1));
    now_ += 60'000'000; // one minute later
    mgr_->createGroup("young-dead", inits.upid(2));
    now_ += 10'000'000;
    std::vector<std::unique_ptr<ContainerSource>> sources;
    sources.push_back(std::make_unique<ListSource>(std::set<std::string>{"old-live"}));
    GarbageCollector gc(std::move(sources), std::chrono::seconds(30));
    EXPECT_EQ(mgr_->collect(gc), 1u);
    EXPECT_FALSE(isDir(dir("old-dead")));
    EXPECT_TRUE(isDir(dir("old-live")));
    EXPECT_TRUE(isDir(dir("young-dead")));
    ASSERT_EQ(rec_.removed.size(), 1u);
    EXPECT_EQ(rec_.removed[0], (std::pair<std::string, std::string>{"old-dead", "stale"}));

    std::vector<std::unique_ptr<ContainerSource>> failing;
    failing.push_back(std::make_unique<ListSource>(std::set<std::string>{}, true));
    GarbageCollector broken(std::move(failing), std::chrono::seconds(0));
    EXPECT_EQ(mgr_->collect(broken), 0u);
    EXPECT_TRUE(isDir(dir("old-live")));
    EXPECT_TRUE(isDir(dir("young-dead")));
}

TEST_F(GroupManagerTest, ARecordJudgedStaleButMadeAnewMeanwhileIsKept) {
    ChildProcess p(spawnSleeper());
    const auto pid = static_cast<uint32_t>(p.pid());
    mgr_->createGroup("again", pid);
    now_ += 100'000'000;
    std::vector<GroupRecord> snapshot = mgr_->collectionSnapshot();
    GarbageCollector::Decision d = nothingRuns()->decide(snapshot, now_);
    ASSERT_EQ(d.stale, std::vector<std::string>{"again"});
    // Between the decision and its application: removed and made anew.
    mgr_->removeGroup("again");
    now_ += 1;
    mgr_->createGroup("again", pid);
    EXPECT_EQ(mgr_->applyCollection(snapshot, d), 0u);
    EXPECT_TRUE(isDir(dir("again")));
    EXPECT_TRUE(registry_->find("again"));
}

TEST_F(GroupManagerTest, ASelftestGroupIsNeverCollectedAsStale) {
    const std::string selftest = "rdtmon-selftest-4242-1";
    const Sleepers inits(2);
    mgr_->createGroup(selftest, inits.upid(0));
    mgr_->createGroup("c1", inits.upid(1));
    now_ += 100'000'000;
    EXPECT_EQ(mgr_->collect(*nothingRuns()), 1u);
    EXPECT_TRUE(isDir(dir(selftest)));
    ASSERT_TRUE(registry_->find(selftest));
    EXPECT_FALSE(registry_->find(selftest)->pending);
    EXPECT_FALSE(isDir(dir("c1")));
    EXPECT_EQ(rec_.removed, (std::vector<std::pair<std::string, std::string>>{{"c1", "stale"}}));
}

// A self-test cannot outlive rdtmond: whatever one left (its group, a container waiting for
// an RMID, a create cut short) is gone after the restart; the containers' groups stay.
TEST_F(GroupManagerTest, WhatASelftestLeftIsRemovedAtStartUp) {
    const std::string active = "rdtmon-selftest-4242-1";
    const std::string waiting = "rdtmon-selftest-4242-2";
    const std::string halfMade = "rdtmon-selftest-4242-3";
    const Sleepers inits(8);
    mgr_->createGroup(active, inits.upid(0));
    for (std::size_t i = 1; i < 6; ++i) {
        mgr_->createGroup(concat("c", i), inits.upid(i));
    }
    // A crash between a self-test's mkdir and its final record. With it, the default group
    // and the six above, the 8 RMIDs are taken.
    registry_->put(GroupRecord{halfMade, "", inits.upid(6), now_, true});
    ASSERT_EQ(::mkdir(dir(halfMade).c_str(), 0755), 0);
    ASSERT_TRUE(mgr_->createGroup(waiting, inits.upid(7)).waiting);
    ASSERT_TRUE(rec_.removed.empty());

    reopen();
    for (const std::string& id : {active, waiting, halfMade}) {
        EXPECT_FALSE(isDir(dir(id))) << id;
        EXPECT_FALSE(registry_->find(id)) << id;
    }
    EXPECT_TRUE(mgr_->waitingContainers().empty());
    for (std::size_t i = 1; i < 6; ++i) {
        EXPECT_TRUE(isDir(dir(concat("c", i)))) << i;
        EXPECT_TRUE(registry_->find(concat("c", i))) << i;
    }
    // Told as stale, as nobody asked for it; the half-made one was never announced.
    std::vector<std::pair<std::string, std::string>> removed = rec_.removed;
    std::sort(removed.begin(), removed.end());
    EXPECT_EQ(removed, (std::vector<std::pair<std::string, std::string>>{{active, "stale"},
                                                                         {waiting, "stale"}}));
    // For good: the next start finds nothing of them.
    rec_ = {};
    reopen();
    EXPECT_FALSE(registry_->find(active));
    EXPECT_TRUE(rec_.removed.empty());
    EXPECT_EQ(mgr_->groups().size(), 5u);
}

TEST_F(GroupManagerTest, ResctrlGoingAwayAndComingBackDropsVanishedRecords) {
    ChildProcess p(spawnSleeper());
    mgr_->createGroup("before", static_cast<uint32_t>(p.pid()));
    emu_.stop();
    EXPECT_FALSE(mgr_->supported());
    try {
        mgr_->createGroup("during", static_cast<uint32_t>(p.pid()));
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::NotSupported) << e.what();
    }
    EXPECT_TRUE(registry_->find("before")) << "cannot tell while resctrl is away";
    emu_.restart(); // a fresh tree: the old group is gone
    EXPECT_TRUE(mgr_->supported());
    EXPECT_FALSE(registry_->find("before"));
    ASSERT_EQ(rec_.removed.size(), 1u);
    EXPECT_EQ(rec_.removed[0], (std::pair<std::string, std::string>{"before", "vanished"}));
    EXPECT_NO_THROW(mgr_->createGroup("after", static_cast<uint32_t>(p.pid())));
}

TEST_F(GroupManagerTest, AllCountersOwnedGroupsThenCtrlMonGroupsAGoneGroupLeftOut) {
    ChildProcess a(spawnSleeper());
    ChildProcess b(spawnSleeper());
    ChildProcess c(spawnSleeper());
    ASSERT_EQ(::mkdir((emu_.path() + "/clos1").c_str(), 0755), 0);
    std::ofstream(emu_.path() + "/clos1/tasks") << c.pid() << "\n";
    const Labels labels = {{"pod", "web"}};
    mgr_->createGroup("b", static_cast<uint32_t>(b.pid()), labels);
    mgr_->createGroup("a", static_cast<uint32_t>(a.pid()));
    mgr_->createGroup("c", static_cast<uint32_t>(c.pid()));
    emu_.drive("mon_groups/b", 0, 0, 12345);
    // Removed behind the manager's back: left out and dropped from the records.
    ASSERT_EQ(::rmdir(dir("a").c_str()), 0);

    const uint64_t before = monotonicUsec();
    AllCounters all = mgr_->allCounters();
    EXPECT_GE(all.monotonicUsec, before);
    EXPECT_LE(all.monotonicUsec, monotonicUsec());
    std::vector<std::string> ids;
    for (const GroupCounters& g : all.groups) {
        ids.push_back(g.id);
        EXPECT_EQ(g.counters.size(), 2u) << g.id;
    }
    EXPECT_EQ(ids, (std::vector<std::string>{"b", "c", "/", "/clos1"}));
    Labels withOrigin = labels; // a container's labels say how its group came to be
    withOrigin["origin"] = "hook";
    EXPECT_EQ(all.groups[0].labels, withOrigin);
    EXPECT_TRUE(all.groups[2].labels.empty());
    uint64_t llc = 0;
    for (const auto& [dom, events] : all.groups[0].counters) {
        llc += events.at("llc_occupancy");
    }
    EXPECT_EQ(llc, 12345u);
    EXPECT_FALSE(registry_->find("a"));
    ASSERT_EQ(rec_.removed.size(), 1u);
    EXPECT_EQ(rec_.removed[0], (std::pair<std::string, std::string>{"a", "vanished"}));

    // 8 RMIDs: the default group, clos1, b and c hold one each.
    EXPECT_EQ(mgr_->freeRmids(), 4u);
    emu_.stop();
    expectError(ErrorKind::NotSupported, [&] { (void)mgr_->allCounters(); });
    EXPECT_EQ(mgr_->freeRmids(), 0u);
}

TEST_F(GroupManagerTest, FreeRmidsIsNeverBelowZero) {
    // More groups than RMIDs can only be seen on a resctrl that lies; the emulator refuses
    // the ninth, so fill it: 8 RMIDs, the default group holds one.
    for (int i = 0; i < 7; ++i) {
        ASSERT_EQ(::mkdir(dir("native" + std::to_string(i)).c_str(), 0755), 0) << i;
    }
    EXPECT_EQ(mgr_->freeRmids(), 0u);
}

// The reads of GetAllCounters and GetCounters: a pass on a worker thread, one at a time,
// shared by every reader who asked before it started; the loop only starts and finishes it.
TEST_F(GroupManagerTest, CountersReaderSharesAPassAndKeepsTheLoopFree) {
    ChildProcess p(spawnSleeper());
    mgr_->createGroup("c1", static_cast<uint32_t>(p.pid()));
    CountersReader reader(*mgr_, std::chrono::milliseconds(0));
    std::vector<CountersReader::Outcome> got;
    auto reply = [&](const CountersReader::Outcome& o) { got.push_back(o); };
    // The pass's readers are answered one per call, finish's then answerNext's; the loop
    // does not sleep while one waits.
    auto finishWhenDone = [&](std::size_t readers) {
        pollfd fd{reader.fd(), POLLIN, 0};
        ASSERT_EQ(::poll(&fd, 1, 20000), 1) << "the pass never ended";
        const std::size_t before = got.size();
        reader.finish();
        EXPECT_EQ(got.size(), before + 1);
        for (std::size_t i = 1; i < readers; ++i) {
            EXPECT_EQ(reader.timeoutMs(), 0);
            EXPECT_EQ(reader.answerNext(), i + 1 < readers);
            EXPECT_EQ(got.size(), before + i + 1);
        }
        EXPECT_FALSE(reader.answerNext());
    };
    emu_.control("hold-counter-read");
    reader.request(reply);
    EXPECT_TRUE(reader.running());
    ASSERT_TRUE(waitUntil([&] { return emu_.control("counter-read-held") == "1"; },
                          std::chrono::milliseconds(10000)));
    // The loop is free meanwhile: a create and a removal go through.
    ChildProcess q(spawnSleeper());
    mgr_->createGroup("c2", static_cast<uint32_t>(q.pid()));
    reader.request(reply);
    reader.request(reply);
    reader.request(reply);
    EXPECT_TRUE(got.empty());
    emu_.control("release-counter-read");
    finishWhenDone(1);
    ASSERT_EQ(got.size(), 1u) << "the first reader, from the first pass";
    ASSERT_TRUE(got[0].counters);
    auto ids = [](const AllCounters& a) {
        std::set<std::string> out;
        for (const GroupCounters& g : a.groups) {
            out.insert(g.id);
        }
        return out;
    };
    EXPECT_EQ(ids(*got[0].counters), (std::set<std::string>{"c1", "/"}));
    // The three who asked during it share the next pass, which sees c2.
    EXPECT_TRUE(reader.running());
    finishWhenDone(3);
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(got[1].counters, got[3].counters) << "one pass for the three";
    EXPECT_EQ(ids(*got[1].counters), (std::set<std::string>{"c1", "c2", "/"}));
    EXPECT_EQ(reader.passes(), 2u);
    EXPECT_FALSE(reader.running());
    EXPECT_EQ(reader.timeoutMs(), -1) << "nothing waits: no wake-up";
}

} // namespace
