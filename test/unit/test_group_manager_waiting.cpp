// GroupManager's waiting for an RMID, without a bus, against resctrl-emu: who waits, in
// which order they get groups, the retry policy, and what survives a restart.

#include "ContainerSource.h"
#include "EmulatorMount.h"
#include "Errors.h"
#include "GarbageCollector.h"
#include "GroupManager.h"
#include "GroupRegistry.h"
#include "ManagerRestart.h"
#include "Proc.h"
#include "ProcFs.h"
#include "TempDir.h"
#include "TestUtil.h"

#include <chrono>
#include <gtest/gtest.h>
#include <set>
#include <sys/stat.h>

using namespace rdtmon;
using namespace rdtmon::test;
using std::chrono::milliseconds;

namespace {

class NoContainers : public ContainerSource {
public:
    std::string describe() const override { return "no containers"; }
    std::set<std::string> list() const override { return {}; }
};

class WaitingTest : public ::testing::Test {
protected:
    // 8 RMIDs: the default group holds one and five foreign groups five, so two are ours.
    WaitingTest() {
        for (int i = 0; i < 5; ++i) {
            EXPECT_EQ(::mkdir(dir(concat("foreign", i)).c_str(), 0755), 0) << i;
        }
        reopen();
    }

    // A fresh registry and manager over the same state dir: what a restart does.
    void reopen() {
        GroupManager::Events ev;
        ev.created = [this](const GroupRecord& r) { created_.push_back(r.id); };
        ev.waiting = [this](const GroupRecord& r) { waiting_.push_back(r.id); };
        ev.removed = [this](const GroupRecord& r, RemoveReason why) {
            removed_.emplace_back(r.id, reasonName(why));
        };
        reopenManager(mgr_, registry_, state_.file("state"), emulatorOpener(emu_), ev,
                      [this] { return now_; });
    }
    std::string dir(const std::string& id) const { return emu_.path() + "/mon_groups/" + id; }
    uint32_t pid(std::size_t i) const { return inits_.upid(i); }
    std::set<pid_t> threads(std::size_t i) const {
        std::vector<pid_t> t = rdtmon::test::threadsOf(inits_.pid(i));
        return {t.begin(), t.end()};
    }
    std::vector<std::string> waitingIds() const {
        std::vector<std::string> out;
        for (const GroupRecord& w : mgr_->waitingContainers()) {
            out.push_back(w.id);
        }
        return out;
    }

    EmulatorMount emu_{EmulatorOptions{.numRmids = 8}};
    TempDir state_{"rdtmon-wait"};
    Sleepers inits_{6, 2};
    std::unique_ptr<GroupRegistry> registry_;
    std::unique_ptr<GroupManager> mgr_;
    std::vector<std::string> created_, waiting_;
    std::vector<std::pair<std::string, std::string>> removed_;
    uint64_t now_ = 1'700'000'000'000'000ULL;
};

TEST_F(WaitingTest, NoFreeRmidWaitsAndRemovalsGrantInArrivalOrder) {
    EXPECT_FALSE(mgr_->createGroup("a", pid(0)).waiting);
    EXPECT_FALSE(mgr_->createGroup("b", pid(1)).waiting);
    for (std::size_t i = 2; i < 5; ++i) {
        const std::string id = concat("w", i);
        GroupRecord r = mgr_->createGroup(id, pid(i), {{"pod", id}});
        EXPECT_TRUE(r.waiting) << id;
        EXPECT_FALSE(isDir(dir(id)));
    }
    EXPECT_EQ(waiting_, (std::vector<std::string>{"w2", "w3", "w4"}));
    EXPECT_EQ(waitingIds(), waiting_);
    EXPECT_EQ(mgr_->groups().size(), 2u) << "waiting containers are not groups";
    EXPECT_FALSE(mgr_->find("w2"));
    expectError(ErrorKind::NoSuchGroup, [&] { (void)mgr_->counters("w2"); });
    // Asking again while waiting answers the same: still waiting, same place.
    EXPECT_TRUE(mgr_->createGroup("w3", pid(3)).waiting);
    EXPECT_EQ(waitingIds(), (std::vector<std::string>{"w2", "w3", "w4"}));

    mgr_->removeGroup("a");
    EXPECT_TRUE(mgr_->grantDue());
    GroupManager::GrantPass p = mgr_->grantWaiting();
    EXPECT_EQ(p.granted, 1u);
    EXPECT_EQ(p.stoppedBy, GroupManager::GrantPass::Stop::NoRmid);
    EXPECT_FALSE(mgr_->retryDelay()) << "no RMID: wait for a removal, no timer";
    EXPECT_EQ(tasksOf(dir("w2")), threads(2));
    ASSERT_TRUE(mgr_->find("w2"));
    EXPECT_FALSE(mgr_->find("w2")->waiting);
    EXPECT_EQ(mgr_->find("w2")->labels, (Labels{{"pod", "w2"}}));

    mgr_->removeGroup("b");
    mgr_->removeGroup("w2");
    p = mgr_->grantWaiting();
    EXPECT_EQ(p.granted, 2u);
    EXPECT_EQ(p.stoppedBy, GroupManager::GrantPass::Stop::Nothing);
    EXPECT_EQ(created_, (std::vector<std::string>{"a", "b", "w2", "w3", "w4"}));
    EXPECT_EQ(tasksOf(dir("w4")), threads(4));
    EXPECT_EQ(registry_->waitingCount(), 0u);
}

TEST_F(WaitingTest, ANewcomerNeverTakesAnRmidBeforeThoseWhoWait) {
    mgr_->createGroup("a", pid(0));
    mgr_->createGroup("b", pid(1));
    EXPECT_TRUE(mgr_->createGroup("first", pid(2)).waiting);
    // Another tool frees an RMID; nobody tells rdtmond.
    ASSERT_EQ(::rmdir(dir("foreign0").c_str()), 0);
    GroupRecord late = mgr_->createGroup("late", pid(3));
    EXPECT_TRUE(late.waiting) << "the free RMID went to the container that asked first";
    EXPECT_TRUE(isDir(dir("first")));
    EXPECT_EQ(tasksOf(dir("first")), threads(2));
    EXPECT_EQ(waitingIds(), std::vector<std::string>{"late"});
}

TEST_F(WaitingTest, LimboIsRetriedWithABackoffAndGrantedWhenItClears) {
    emu_.control("limbo-ms 600000");
    mgr_->createGroup("a", pid(0));
    mgr_->createGroup("b", pid(1));
    EXPECT_TRUE(mgr_->createGroup("w", pid(2)).waiting);
    EXPECT_FALSE(mgr_->retryDelay());
    mgr_->removeGroup("a"); // its RMID goes into limbo: EBUSY
    std::vector<long> delays;
    // What a write changes: the snapshot's inode (a compaction renames a new file into
    // place) or the journal's size (an append).
    auto stateFiles = [this] {
        struct stat snap {};
        struct stat journal {};
        const bool hasSnap = ::stat(state_.file("state/groups.json").c_str(), &snap) == 0;
        const bool hasJournal = ::stat(state_.file("state/groups.journal").c_str(), &journal) == 0;
        return std::pair{hasSnap ? snap.st_ino : 0, hasJournal ? journal.st_size : -1};
    };
    auto files = stateFiles();
    for (int i = 0; i < 7; ++i) {
        GroupManager::GrantPass p = mgr_->grantWaiting();
        EXPECT_EQ(p.stoppedBy, GroupManager::GrantPass::Stop::Limbo);
        ASSERT_TRUE(mgr_->retryDelay());
        delays.push_back(static_cast<long>(mgr_->retryDelay()->count()));
        if (i == 0) {
            files = stateFiles();
        }
        EXPECT_EQ(stateFiles(), files) << "a retry that finds no RMID wrote the records";
    }
    EXPECT_EQ(delays, (std::vector<long>{250, 500, 1000, 2000, 4000, 4000, 4000}));
    // A newcomer meets the same limbo: it queues, and no new timer is needed for it.
    EXPECT_TRUE(mgr_->createGroup("w2", pid(3)).waiting);
    EXPECT_EQ(waitingIds(), (std::vector<std::string>{"w", "w2"}));
    emu_.control("limbo-ms 0");
    GroupManager::GrantPass p = mgr_->grantWaiting();
    EXPECT_EQ(p.granted, 1u);
    EXPECT_FALSE(mgr_->retryDelay()) << "w2 waits for a removal now: no timer";
    EXPECT_EQ(tasksOf(dir("w")), threads(2));
    mgr_->removeGroup("w2");
    mgr_->grantWaiting();
    EXPECT_FALSE(mgr_->retryDelay()) << "nothing waits: no timer";
}

TEST_F(WaitingTest, ACreateThatMeetsLimboAsksForAPassSoThatTheRetryTimerIsArmed) {
    emu_.control("limbo-ms 600000");
    mgr_->createGroup("a", pid(0));
    mgr_->createGroup("b", pid(1));
    mgr_->removeGroup("a");
    mgr_->grantWaiting(); // nothing waits yet
    EXPECT_FALSE(mgr_->grantDue());
    EXPECT_TRUE(mgr_->createGroup("w", pid(2)).waiting); // EBUSY
    EXPECT_TRUE(mgr_->grantDue());
    mgr_->grantWaiting();
    EXPECT_EQ(mgr_->retryDelay(), milliseconds(250));
}

TEST_F(WaitingTest, AGoneOrReusedProcessIsDroppedAndNeverMoved) {
    mgr_->createGroup("a", pid(0));
    mgr_->createGroup("b", pid(1));
    ChildProcess doomed(spawnSleeper());
    EXPECT_TRUE(mgr_->createGroup("gone", static_cast<uint32_t>(doomed.pid())).waiting);
    EXPECT_TRUE(mgr_->createGroup("reused", pid(2)).waiting);
    EXPECT_TRUE(mgr_->createGroup("next", pid(3)).waiting);
    doomed.reset();
    // The pid of "reused" names another process now: another start time.
    GroupRecord r = *registry_->find("reused");
    r.pidStartTime += 1;
    registry_->put(r);

    mgr_->removeGroup("a");
    GroupManager::GrantPass p = mgr_->grantWaiting();
    EXPECT_EQ(p.dropped, 2u);
    EXPECT_EQ(p.granted, 1u);
    EXPECT_FALSE(isDir(dir("reused")));
    EXPECT_EQ(tasksOf(dir("next")), threads(3));
    const std::set<pid_t> root = tasksIn(emu_.path() + "/tasks");
    for (pid_t t : threads(2)) {
        EXPECT_TRUE(root.count(t)) << "thread " << t << " of a process that reused the pid moved";
    }
    EXPECT_EQ(removed_, (std::vector<std::pair<std::string, std::string>>{
                            {"a", "requested"}, {"gone", "stale"}, {"reused", "stale"}}));
    EXPECT_FALSE(registry_->find("gone"));
    EXPECT_FALSE(registry_->find("reused"));
}

TEST_F(WaitingTest, RemovedOrCollectedWhileWaitingIsDropped) {
    mgr_->createGroup("a", pid(0));
    mgr_->createGroup("b", pid(1));
    EXPECT_TRUE(mgr_->createGroup("asked-away", pid(2)).waiting);
    EXPECT_TRUE(mgr_->createGroup("collected", pid(3)).waiting);
    mgr_->removeGroup("asked-away");
    EXPECT_FALSE(registry_->find("asked-away"));
    EXPECT_EQ(removed_.back(), (std::pair<std::string, std::string>{"asked-away", "requested"}));
    expectError(ErrorKind::NoSuchGroup, [&] { mgr_->removeGroup("asked-away"); });

    // After an attempt that found no RMID its record stays pending (no write per retry);
    // the collector judges it all the same.
    mgr_->grantWaiting();
    ASSERT_TRUE(registry_->find("collected"));
    EXPECT_TRUE(registry_->find("collected")->pending);
    std::vector<std::unique_ptr<ContainerSource>> sources;
    sources.push_back(std::make_unique<NoContainers>());
    GarbageCollector gc(std::move(sources), std::chrono::seconds(0));
    now_ += 1'000'000;
    EXPECT_EQ(mgr_->collect(gc), 3u); // a, b and the waiting one
    EXPECT_EQ(registry_->size(), 0u);
    EXPECT_EQ(removed_.back(), (std::pair<std::string, std::string>{"collected", "stale"}));
    EXPECT_TRUE(entries(emu_.path() + "/mon_groups").count("collected") == 0);
}

TEST_F(WaitingTest, WaitingSurvivesARestartAndAGrantCutShortWaitsAgain) {
    mgr_->createGroup("a", pid(0));
    mgr_->createGroup("b", pid(1));
    EXPECT_TRUE(mgr_->createGroup("w1", pid(2)).waiting);
    EXPECT_TRUE(mgr_->createGroup("w2", pid(3)).waiting);
    // A crash in the middle of granting w1: the record says so and the directory exists.
    mgr_->removeGroup("a");
    GroupRecord half = *registry_->find("w1");
    half.pending = true;
    registry_->put(half);
    ASSERT_EQ(::mkdir(dir("w1").c_str(), 0755), 0);

    created_.clear();
    reopen();
    EXPECT_FALSE(isDir(dir("w1"))) << "the half-made group is undone at start-up";
    EXPECT_EQ(waitingIds(), (std::vector<std::string>{"w1", "w2"}));
    EXPECT_FALSE(registry_->find("w1")->pending);
    EXPECT_TRUE(mgr_->grantDue()) << "start-up tries the waiting at once";
    mgr_->grantWaiting();
    EXPECT_EQ(created_, std::vector<std::string>{"w1"});
    EXPECT_EQ(tasksOf(dir("w1")), threads(2));
    EXPECT_EQ(waitingIds(), std::vector<std::string>{"w2"});
}

TEST_F(WaitingTest, SwitchedOffTheErrorsStayAsTheyWere) {
    mgr_->setWaitForRmid(false);
    mgr_->createGroup("a", pid(0));
    mgr_->createGroup("b", pid(1));
    expectError(ErrorKind::OutOfRmids, [&] { mgr_->createGroup("c", pid(2)); });
    emu_.control("limbo-ms 600000");
    mgr_->removeGroup("b");
    expectError(ErrorKind::Busy, [&] { mgr_->createGroup("c", pid(2)); });
    EXPECT_FALSE(registry_->find("c"));
    EXPECT_TRUE(waiting_.empty());
    EXPECT_FALSE(isDir(dir("c")));
}

TEST_F(WaitingTest, TheStartTimeIsTheProcessStatField) {
    std::optional<ProcStat> st = readProcStat(inits_.pid(0));
    ASSERT_TRUE(st);
    EXPECT_GT(st->startTime, 0u);
    mgr_->createGroup("a", pid(0));
    mgr_->createGroup("b", pid(1));
    EXPECT_EQ(mgr_->createGroup("w", pid(2)).pidStartTime, readProcStat(inits_.pid(2))->startTime);
}

// Where RMIDs are per CLOS (Arm MPAM), a waiter whose CLOS is full holds up only the
// waiters of that CLOS: the others get the RMIDs theirs still has.
TEST(WaitingPerClos, AFullClosHoldsUpOnlyItsOwnWaiters) {
    EmulatorMount emu(EmulatorOptions{.numRmids = 3, .rmidsPerClos = true});
    TempDir state("rdtmon-wait-clos");
    std::unique_ptr<GroupRegistry> registry;
    std::unique_ptr<GroupManager> mgr;
    reopenManager(mgr, registry, state.file("state"), emulatorOpener(emu), {});
    mgr->setWaitForRmid(true);
    ASSERT_EQ(::mkdir((emu.path() + "/clos1").c_str(), 0755), 0);
    Sleepers inits(7);
    for (std::size_t i = 4; i < 7; ++i) {
        writeFile(emu.path() + "/clos1/tasks", std::to_string(inits.pid(i)));
    }
    // The default CLOS: its own group holds one RMID, two groups the others; r3 waits.
    EXPECT_FALSE(mgr->createGroup("r1", inits.upid(0)).waiting);
    EXPECT_FALSE(mgr->createGroup("r2", inits.upid(1)).waiting);
    EXPECT_TRUE(mgr->createGroup("r3", inits.upid(2)).waiting);
    // clos1 has RMIDs of its own: a newcomer there does not queue behind r3.
    GroupRecord c1 = mgr->createGroup("c1", inits.upid(4));
    EXPECT_FALSE(c1.waiting);
    EXPECT_EQ(c1.ctrl, "clos1");
    EXPECT_FALSE(mgr->createGroup("c2", inits.upid(5)).waiting);
    EXPECT_TRUE(mgr->createGroup("c3", inits.upid(6)).waiting);
    // An RMID frees in clos1: c3 gets it although r3, before it in the queue, cannot go.
    mgr->removeGroup("c1");
    GroupManager::GrantPass p = mgr->grantWaiting();
    EXPECT_EQ(p.granted, 1u);
    EXPECT_EQ(p.stoppedBy, GroupManager::GrantPass::Stop::NoRmid);
    ASSERT_TRUE(mgr->find("c3"));
    EXPECT_FALSE(mgr->find("c3")->waiting);
    EXPECT_TRUE(isDir(emu.path() + "/clos1/mon_groups/c3"));
    EXPECT_EQ(mgr->waitingContainers().size(), 1u);
    EXPECT_EQ(mgr->waitingContainers().at(0).id, "r3");
}

} // namespace
