// GroupManager adopting running containers, without a bus: a runtime's state root with
// runc state.json files for real processes in real cgroups, over the emulator. Every check
// of the pid is shown refusing (another start time, a zombie, another cgroup), and what the
// files say keeps a container out (sandbox, opted out, monitored by its runtime).

#include "ContainerSource.h"
#include "EmulatorMount.h"
#include "GarbageCollector.h"
#include "GroupManager.h"
#include "GroupRegistry.h"
#include "ManagerRestart.h"
#include "Proc.h"
#include "ProcFs.h"
#include "TempDir.h"
#include "TestCgroup.h"
#include "TestUtil.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

using namespace rdtmon;
using namespace rdtmon::test;

namespace {

namespace fs = std::filesystem;

uint64_t startOf(pid_t pid) {
    std::optional<ProcStat> st = readProcStat(pid);
    return st ? st->startTime : 0;
}

class GroupManagerAdopt : public ::testing::Test {
protected:
    void SetUp() override {
        if (!TestCgroup::available()) {
            GTEST_SKIP() << "needs root and a cgroup mount";
        }
        reopen();
    }
    void reopen() {
        GroupManager::Events ev;
        ev.created = [this](const GroupRecord& r) { created_.push_back(r.id); };
        reopenManager(mgr_, registry_, state_.file("state"), emulatorOpener(emu_), ev);
    }
    // What a runtime's files would say about the init pid in cgroup dir.
    static AdoptCandidate candidate(const std::string& id, pid_t pid, const std::string& dir) {
        AdoptCandidate c;
        c.container.id = id;
        c.container.runtime = "runc";
        c.container.pid = static_cast<uint32_t>(pid);
        c.container.startTime = startOf(pid);
        c.container.cgroupDirs = {dir};
        c.labels = {{"pod", "web-0"}, {"container", "nginx"}};
        return c;
    }
    // runc's state.json for it, in the state root.
    void writeRuncState(const std::string& id, pid_t pid, const std::string& dir,
                        const std::vector<std::string>& labels, bool monitored = false) {
        nlohmann::json j;
        j["id"] = id;
        j["init_process_pid"] = pid;
        j["init_process_start"] = startOf(pid);
        j["cgroup_paths"] = {{"", dir}};
        j["config"]["labels"] = labels;
        if (monitored) {
            j["config"]["intel_rdt"] = {{"closID", ""}, {"enableMonitoring", true}};
        }
        fs::create_directories(root_.path() + "/" + id);
        std::ofstream(root_.path() + "/" + id + "/state.json") << j.dump();
    }
    std::set<pid_t> groupTasks(const std::string& id) {
        return tasksOf(emu_.path() + "/mon_groups/" + id);
    }
    bool allIn(const std::string& id, pid_t pid) {
        const std::set<pid_t> in = groupTasks(id);
        for (pid_t t : rdtmon::test::threadsOf(pid)) {
            if (in.count(t) == 0) {
                return false;
            }
        }
        return true;
    }
    void expectNothingMade(const std::string& id, pid_t pid) {
        EXPECT_FALSE(fs::exists(emu_.path() + "/mon_groups/" + id));
        EXPECT_FALSE(registry_->find(id).has_value());
        const std::set<pid_t> root = tasksOf(emu_.path());
        EXPECT_EQ(root.count(pid), 1u) << "pid " << pid << " was moved";
    }

    EmulatorMount emu_{EmulatorOptions{.numRmids = 8}};
    TempDir state_{"rdtmon-adopt"};
    TempDir root_{"rdtmon-adopt-root"};
    std::unique_ptr<GroupRegistry> registry_;
    std::unique_ptr<GroupManager> mgr_;
    std::vector<std::string> created_;
};

TEST_F(GroupManagerAdopt, ARunningContainerGetsItsGroupWithEveryThreadOfItsCgroup) {
    TestCgroup cg;
    ChildProcess init(spawnSleeper(2));
    ChildProcess child(spawnSleeper(1)); // started by the container before rdtmond came
    cg.add(init.pid());
    cg.add(child.pid());
    GroupRecord rec = mgr_->adopt(candidate("c1", init.pid(), cg.dir()));
    EXPECT_EQ(rec.origin, Origin::Adopted);
    EXPECT_EQ(rec.cgroup, cg.dir()) << "followed although the init is not alone in it";
    EXPECT_EQ(rec.labels.at("pod"), "web-0");
    EXPECT_FALSE(rec.waiting);
    EXPECT_TRUE(allIn("c1", init.pid()));
    mgr_->resyncPending(); // the follow's first resync: the rest of the cgroup
    EXPECT_TRUE(allIn("c1", child.pid()));
    EXPECT_EQ(mgr_->coverage("c1"), (Coverage{5, 0}));
    EXPECT_EQ(created_, std::vector<std::string>{"c1"});
    // The origin is kept across a restart.
    reopen();
    ASSERT_TRUE(registry_->find("c1"));
    EXPECT_EQ(registry_->find("c1")->origin, Origin::Adopted);
    EXPECT_TRUE(mgr_->following("c1"));
}

TEST_F(GroupManagerAdopt, APidThatNowNamesAnotherProcessIsNeverMoved) {
    TestCgroup cg;
    ChildProcess init(spawnSleeper());
    cg.add(init.pid());
    AdoptCandidate c = candidate("c1", init.pid(), cg.dir());
    c.container.startTime += 1; // the recorded init started at another time: pid reused
    try {
        mgr_->adopt(c);
        FAIL() << "adopted";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::NoSuchProcess);
        EXPECT_NE(std::string(e.what()).find("now names another process"), std::string::npos)
            << e.what();
    }
    expectNothingMade("c1", init.pid());
}

TEST_F(GroupManagerAdopt, AZombieIsNeverMoved) {
    TestCgroup cg;
    pid_t z = ::fork();
    ASSERT_GE(z, 0);
    if (z == 0) {
        ::pause();
        ::_exit(0);
    }
    ChildProcess owner(z);
    cg.add(z);
    AdoptCandidate c = candidate("c1", z, cg.dir());
    ::kill(z, SIGKILL);
    // A zombie until reaped: wait until /proc says so, without reaping it.
    siginfo_t si{};
    ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(z), &si, WEXITED | WNOWAIT), 0);
    try {
        mgr_->adopt(c);
        FAIL() << "adopted a zombie";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::NoSuchProcess) << e.what();
    }
    EXPECT_FALSE(fs::exists(emu_.path() + "/mon_groups/c1"));
    EXPECT_FALSE(registry_->find("c1").has_value());
}

TEST_F(GroupManagerAdopt, AProcessOutsideTheRecordedCgroupIsNeverMoved) {
    TestCgroup cg;
    TestCgroup other;
    ChildProcess init(spawnSleeper());
    cg.add(init.pid());
    try {
        mgr_->adopt(candidate("c1", init.pid(), other.dir()));
        FAIL() << "adopted";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
        EXPECT_NE(std::string(e.what()).find("not in the cgroup its runtime recorded"),
                  std::string::npos)
            << e.what();
    }
    expectNothingMade("c1", init.pid());
}

TEST_F(GroupManagerAdopt, AContainerWithARecordIsLeftAsItIs) {
    TestCgroup cg;
    ChildProcess init(spawnSleeper());
    cg.add(init.pid());
    GroupRecord hooked = mgr_->createGroup("c1", static_cast<uint32_t>(init.pid()));
    EXPECT_EQ(hooked.origin, Origin::Hook);
    mgr_->queueAdoptions({candidate("c1", init.pid(), cg.dir())});
    EXPECT_TRUE(mgr_->adoptionsQueued());
    EXPECT_FALSE(mgr_->adoptNext().has_value());
    EXPECT_FALSE(mgr_->adoptionsQueued());
    EXPECT_EQ(*registry_->find("c1"), hooked);
}

TEST_F(GroupManagerAdopt, WithoutAFreeRmidItWaitsAndGetsOneLaterStillFollowingItsCgroup) {
    Sleepers fill(8);
    for (std::size_t i = 0; i < 7; ++i) { // the default group holds the eighth RMID
        std::string id = "f";             // (GCC 12 warns wrongly about "f" + std::to_string(i))
        id += std::to_string(i);
        mgr_->createGroup(id, fill.upid(i));
    }
    TestCgroup cg;
    ChildProcess init(spawnSleeper());
    ChildProcess child(spawnSleeper());
    cg.add(init.pid());
    cg.add(child.pid());
    GroupRecord w = mgr_->adopt(candidate("c1", init.pid(), cg.dir()));
    EXPECT_TRUE(w.waiting);
    EXPECT_EQ(w.origin, Origin::Adopted);
    EXPECT_EQ(w.cgroup, cg.dir());
    mgr_->removeGroup("f0");
    EXPECT_EQ(mgr_->grantWaiting().granted, 1u);
    std::optional<GroupRecord> g = registry_->find("c1");
    ASSERT_TRUE(g);
    EXPECT_FALSE(g->waiting);
    EXPECT_EQ(g->origin, Origin::Adopted);
    mgr_->resyncPending();
    EXPECT_TRUE(allIn("c1", init.pid()));
    EXPECT_TRUE(allIn("c1", child.pid()));
}

TEST_F(GroupManagerAdopt, ACollectionAdoptsWhatTheStateRootListsAndNothingElse) {
    TestCgroup a, sandbox, optedOut, monitored, hooked;
    ChildProcess pa(spawnSleeper()), ps(spawnSleeper()), po(spawnSleeper()), pm(spawnSleeper()),
        ph(spawnSleeper());
    a.add(pa.pid());
    sandbox.add(ps.pid());
    optedOut.add(po.pid());
    monitored.add(pm.pid());
    hooked.add(ph.pid());
    writeRuncState("a", pa.pid(), a.dir(),
                   {"io.kubernetes.cri.container-name=app", "io.kubernetes.cri.sandbox-name=p1",
                    "io.kubernetes.cri.sandbox-namespace=ns1", "bundle=/run/b/a"});
    writeRuncState("sb", ps.pid(), sandbox.dir(), {"io.kubernetes.cri.container-type=sandbox"});
    writeRuncState("out", po.pid(), optedOut.dir(), {"org.rdtmon.monitoring=false"});
    writeRuncState("mon", pm.pid(), monitored.dir(), {}, /*monitored=*/true);
    writeRuncState("h", ph.pid(), hooked.dir(), {});
    fs::create_directories(root_.path() + "/creating"); // no state.json yet
    mgr_->createGroup("h", static_cast<uint32_t>(ph.pid()));

    std::vector<std::unique_ptr<ContainerSource>> sources;
    sources.push_back(std::make_unique<StateDirSource>(std::vector<std::string>{root_.path()}));
    GarbageCollector gc(std::move(sources), std::chrono::seconds(0));
    GarbageCollector::Decision d = gc.decide(mgr_->collectionSnapshot(), mgr_->now());
    ASSERT_EQ(d.adoptable.size(), 1u);
    EXPECT_EQ(d.adoptable[0].container.id, "a");
    EXPECT_EQ(d.adoptable[0].container.bundle, "/run/b/a");
    EXPECT_EQ(d.adoptable[0].labels,
              (Labels{{"container", "app"}, {"pod", "p1"}, {"namespace", "ns1"}}));
    EXPECT_EQ(d.notAdoptable.size(), 4u);
    for (const char* id : {"sb", "out", "mon", "creating"}) {
        EXPECT_EQ(d.notAdoptable.count(id), 1u) << id;
    }
    EXPECT_EQ(d.notAdoptable.count("h"), 0u) << "a container with a group is not looked at";

    mgr_->applyCollection(mgr_->collectionSnapshot(), d);
    while (mgr_->adoptionsQueued()) {
        mgr_->adoptNext();
    }
    EXPECT_EQ(registry_->find("a")->origin, Origin::Adopted);
    EXPECT_TRUE(allIn("a", pa.pid()));
    for (const char* id : {"sb", "out", "mon"}) {
        EXPECT_FALSE(fs::exists(emu_.path() + "/mon_groups/" + id)) << id;
    }
    // A second collection finds nothing more to do.
    GarbageCollector::Decision again = gc.decide(mgr_->collectionSnapshot(), mgr_->now());
    EXPECT_TRUE(again.adoptable.empty());
    EXPECT_TRUE(again.stale.empty());
}

TEST_F(GroupManagerAdopt, AGroupItsRuntimeMadeIsShownNeverChangedAndGoneWithIt) {
    TestCgroup cg, own;
    ChildProcess p(spawnSleeper()), q(spawnSleeper());
    cg.add(p.pid());
    own.add(q.pid());
    writeRuncState("rt", p.pid(), cg.dir(),
                   {"io.kubernetes.cri.container-name=app", "io.kubernetes.cri.sandbox-name=p1"},
                   /*monitored=*/true);
    // As runc would: the group of its name, the init in it.
    ASSERT_EQ(::mkdir((emu_.path() + "/mon_groups/rt").c_str(), 0755), 0);
    writeFile(emu_.path() + "/mon_groups/rt/tasks", std::to_string(p.pid()));
    ASSERT_EQ(::mkdir((emu_.path() + "/mon_groups/unlisted").c_str(), 0755), 0);
    mgr_->createGroup("own", static_cast<uint32_t>(q.pid()));
    writeRuncState("own", q.pid(), own.dir(), {}); // listed: the collector keeps it

    std::vector<std::unique_ptr<ContainerSource>> sources;
    sources.push_back(std::make_unique<StateDirSource>(std::vector<std::string>{root_.path()}));
    GarbageCollector gc(std::move(sources), std::chrono::seconds(0));
    mgr_->collect(gc);
    while (mgr_->adoptionsQueued()) {
        mgr_->adoptNext();
    }
    std::vector<RuntimeGroup> shown = mgr_->runtimeGroups();
    ASSERT_EQ(shown.size(), 1u) << "only a listed container's group is shown";
    EXPECT_EQ(shown[0].id, "rt");
    EXPECT_EQ(shown[0].ctrl, "");
    EXPECT_EQ(shown[0].pid, static_cast<uint32_t>(p.pid()));
    EXPECT_EQ(shown[0].labels, (Labels{{"container", "app"}, {"pod", "p1"}}));
    EXPECT_FALSE(registry_->find("rt")) << "shown, not owned";
    EXPECT_EQ(tasksOf(emu_.path() + "/mon_groups/rt"), std::set<pid_t>{p.pid()});

    AllCounters all = mgr_->allCounters();
    std::map<std::string, Labels> labels;
    for (const GroupCounters& g : all.groups) {
        labels[g.id] = g.labels;
    }
    ASSERT_EQ(labels.count("rt"), 1u);
    ASSERT_EQ(labels.count("own"), 1u);
    EXPECT_EQ(labels["rt"].at("origin"), "runtime");
    EXPECT_EQ(labels["rt"].at("pod"), "p1");
    EXPECT_EQ(labels["own"].at("origin"), "hook");
    EXPECT_EQ(labels.count("unlisted"), 0u);
    EXPECT_EQ(all.groups.front().id, "own") << "owned groups first";

    // A second collection changes nothing, and never removes it, even unlisted.
    const uint64_t created = shown[0].createdUsec;
    mgr_->collect(gc);
    ASSERT_EQ(mgr_->runtimeGroups().size(), 1u);
    EXPECT_EQ(mgr_->runtimeGroups()[0].createdUsec, created);
    fs::remove_all(root_.path() + "/rt"); // its runtime no longer lists it
    mgr_->collect(gc);
    EXPECT_TRUE(mgr_->runtimeGroups().empty());
    EXPECT_TRUE(fs::exists(emu_.path() + "/mon_groups/rt")) << "rdtmond removed a group it "
                                                               "never made";
    // Listed again, then gone by its runtime's hand: the next read drops it.
    writeRuncState("rt", p.pid(), cg.dir(), {}, true);
    mgr_->collect(gc);
    ASSERT_EQ(mgr_->runtimeGroups().size(), 1u);
    writeFile(emu_.path() + "/tasks", std::to_string(p.pid()));
    ASSERT_EQ(::rmdir((emu_.path() + "/mon_groups/rt").c_str()), 0);
    all = mgr_->allCounters();
    EXPECT_TRUE(mgr_->runtimeGroups().empty());
    for (const GroupCounters& g : all.groups) {
        EXPECT_NE(g.id, "rt");
    }
}

TEST_F(GroupManagerAdopt, ASelftestIdIsNeverAdopted) {
    const std::string selftest = "rdtmon-selftest-4242-1";
    TestCgroup cg, other;
    ChildProcess p(spawnSleeper()), q(spawnSleeper());
    cg.add(p.pid());
    other.add(q.pid());
    writeRuncState(selftest, p.pid(), cg.dir(), {}); // adoptable by its files alone
    writeRuncState("a", q.pid(), other.dir(), {});

    std::vector<std::unique_ptr<ContainerSource>> sources;
    sources.push_back(std::make_unique<StateDirSource>(std::vector<std::string>{root_.path()}));
    GarbageCollector gc(std::move(sources), std::chrono::seconds(0));
    GarbageCollector::Decision d = gc.decide(mgr_->collectionSnapshot(), mgr_->now());
    ASSERT_EQ(d.adoptable.size(), 1u);
    EXPECT_EQ(d.adoptable[0].container.id, "a");
    ASSERT_EQ(d.notAdoptable.count(selftest), 1u);
    EXPECT_NE(d.notAdoptable.at(selftest).find("reserved for rdtmonctl selftest"),
              std::string::npos)
        << d.notAdoptable.at(selftest);
    mgr_->applyCollection(mgr_->collectionSnapshot(), d);
    while (mgr_->adoptionsQueued()) {
        mgr_->adoptNext();
    }
    EXPECT_TRUE(registry_->find("a"));
    expectNothingMade(selftest, p.pid());
    // Nor by adopt() itself, whoever proposes it.
    const std::string why = expectError(
        ErrorKind::InvalidArgument, [&] { mgr_->adopt(candidate(selftest, p.pid(), cg.dir())); });
    EXPECT_NE(why.find("rdtmonctl selftest"), std::string::npos) << why;
    expectNothingMade(selftest, p.pid());
}

TEST_F(GroupManagerAdopt, ACommandSourceDescribesNothing) {
    CommandSource cmd({"/bin/echo", "c1"}, std::chrono::seconds(5));
    std::map<std::string, std::string> whyNot;
    EXPECT_TRUE(cmd.inspect({"c1"}, whyNot).empty());
    StateDirSource off({root_.path()}, /*adopt=*/false);
    TestCgroup cg;
    ChildProcess init(spawnSleeper());
    cg.add(init.pid());
    writeRuncState("c1", init.pid(), cg.dir(), {});
    EXPECT_TRUE(off.inspect({"c1"}, whyNot).empty());
    StateDirSource on({root_.path()});
    EXPECT_EQ(on.inspect({"c1"}, whyNot).size(), 1u);
}

} // namespace
