// rdtmond adopting running containers that never got a group: containers of a runc state
// root (real processes in real cgroups, state.json as runc writes it) started while
// rdtmond was not running. At start-up each gets its group, all its threads, its labels and
// Origin "adopted"; a second restart changes nothing; a SIGKILL in the middle of the
// adoptions leaves no group without a record, and the next start finishes the job.

#include "EmulatorMount.h"
#include "PrivateBus.h"
#include "Proc.h"
#include "ProcFs.h"
#include "RdtmonClient.h"
#include "RdtmondProcess.h"
#include "TempDir.h"
#include "TestCgroup.h"
#include "TestUtil.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace rdtmon;
using namespace rdtmon::test;

namespace {

namespace fs = std::filesystem;

// A container as runc leaves it: its init (with a thread) and a child in a cgroup of its
// own, and <root>/<id>/state.json.
struct FakeContainer {
    std::string id;
    std::unique_ptr<TestCgroup> cg;
    ChildProcess init;
    ChildProcess child;
};

class Adopt : public ::testing::Test {
protected:
    void SetUp() override {
        if (!TestCgroup::available()) {
            GTEST_SKIP() << "needs root and a cgroup mount";
        }
    }
    void startDaemon() {
        if (!daemon_) {
            nlohmann::json cfg;
            cfg["gc"] = {{"intervalSeconds", 3600}, {"graceSeconds", 0}};
            cfg["containerSources"] = {{{"stateDirs", {root_.path()}}}};
            daemon_ = std::make_unique<Rdtmond>(
                bus_, Rdtmond::Options{.resctrl = emu_.path(), .configJson = cfg.dump()});
        } else {
            daemon_->start();
        }
        client_ = std::make_unique<RdtmonClient>(bus_.address());
    }
    void addContainers(std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            FakeContainer c;
            c.id = "adopt-" + std::to_string(containers_.size());
            c.cg = std::make_unique<TestCgroup>();
            c.init = ChildProcess(spawnSleeper(1));
            c.child = ChildProcess(spawnSleeper());
            c.cg->add(c.init.pid());
            c.cg->add(c.child.pid());
            nlohmann::json j;
            j["id"] = c.id;
            j["init_process_pid"] = c.init.pid();
            j["init_process_start"] = readProcStat(c.init.pid())->startTime;
            j["cgroup_paths"] = {{"", c.cg->dir()}};
            j["config"]["labels"] = {"io.kubernetes.cri.container-name=app",
                                     "io.kubernetes.cri.sandbox-name=pod-" + c.id,
                                     "bundle=/run/bundles/" + c.id};
            fs::create_directories(root_.path() + "/" + c.id);
            std::ofstream(root_.path() + "/" + c.id + "/state.json") << j.dump();
            containers_.push_back(std::move(c));
        }
    }
    std::set<pid_t> tasks(const std::string& id) {
        return tasksOf(emu_.path() + "/mon_groups/" + id);
    }
    bool fullyAdopted(const FakeContainer& c) {
        const std::set<pid_t> in = tasks(c.id);
        for (pid_t p : {c.init.pid(), c.child.pid()}) {
            for (pid_t t : rdtmon::test::threadsOf(p)) {
                if (in.count(t) == 0) {
                    return false;
                }
            }
        }
        return true;
    }
    bool allAdopted() {
        for (const FakeContainer& c : containers_) {
            if (!fullyAdopted(c)) {
                return false;
            }
        }
        return true;
    }
    std::set<std::string> groupDirs() {
        std::set<std::string> out;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(emu_.path() + "/mon_groups", ec)) {
            out.insert(e.path().filename());
        }
        return out;
    }

    TempDir root_{"rdtmon-adopt-runc"};
    EmulatorMount emu_{EmulatorOptions{.numRmids = 128}};
    PrivateBus bus_;
    std::unique_ptr<Rdtmond> daemon_;
    std::unique_ptr<RdtmonClient> client_;
    std::vector<FakeContainer> containers_;
};

TEST_F(Adopt, ContainersStartedWhileRdtmondWasDownGetTheirGroupsAtStartUp) {
    addContainers(6);
    startDaemon();
    ASSERT_TRUE(waitUntil([&] { return allAdopted(); }, std::chrono::seconds(20)))
        << daemon_->log();
    for (const FakeContainer& c : containers_) {
        EXPECT_EQ(client_->groupProperty(c.id, "Origin").get<std::string>(), "adopted");
        EXPECT_EQ(client_->labelsOf(c.id), (std::map<std::string, std::string>{
                                               {"container", "app"}, {"pod", "pod-" + c.id}}));
        EXPECT_EQ(client_->groupProperty(c.id, "Cgroup").get<std::string>(), c.cg->dir());
    }
    std::map<std::string, uint64_t> created;
    for (const FakeContainer& c : containers_) {
        created[c.id] = client_->groupProperty(c.id, "CreatedUsec").get<uint64_t>();
    }
    // A second restart changes nothing: same groups, same records, same tasks.
    const std::set<std::string> before = groupDirs();
    daemon_->stop();
    startDaemon();
    ASSERT_TRUE(client_->garbageCollect().ok()); // a whole collection has run after this
    EXPECT_EQ(groupDirs(), before);
    EXPECT_TRUE(allAdopted());
    for (const FakeContainer& c : containers_) {
        EXPECT_EQ(client_->groupProperty(c.id, "CreatedUsec").get<uint64_t>(), created[c.id]);
        EXPECT_EQ(client_->groupProperty(c.id, "Origin").get<std::string>(), "adopted");
    }
    EXPECT_EQ(daemon_->log().find("not adopted"), std::string::npos) << daemon_->log();
    // The container's end through its runtime: RemoveGroup (the poststop hook's call).
    EXPECT_TRUE(client_->removeGroup(containers_[0].id).ok());
    EXPECT_EQ(groupDirs().count(containers_[0].id), 0u);
}

TEST_F(Adopt, AHookedGroupSaysHookAndIsNotAdoptedAgain) {
    addContainers(1);
    startDaemon();
    ASSERT_TRUE(waitUntil([&] { return allAdopted(); }, std::chrono::seconds(20)));
    ChildProcess p(spawnSleeper());
    ASSERT_TRUE(client_->createGroup("hooked", static_cast<uint32_t>(p.pid())).ok());
    EXPECT_EQ(client_->groupProperty("hooked", "Origin").get<std::string>(), "hook");
}

TEST_F(Adopt, AGroupItsRuntimeMadeIsListedAndReadNeverTaken) {
    addContainers(2);
    // containers_[1] is monitored by its runtime, as runc >= 1.4 does it: the group of its
    // name, made by the runtime, its init in it.
    const FakeContainer& native = containers_[1];
    {
        const std::string file = root_.path() + "/" + native.id + "/state.json";
        nlohmann::json j = nlohmann::json::parse(std::ifstream(file));
        j["config"]["intel_rdt"] = {{"closID", ""}, {"enableMonitoring", true}};
        std::ofstream(file) << j.dump();
    }
    const std::string dir = emu_.path() + "/mon_groups/" + native.id;
    ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
    writeFile(dir + "/tasks", std::to_string(native.init.pid()));
    startDaemon();
    ASSERT_TRUE(waitUntil([&] { return fullyAdopted(containers_[0]); }, std::chrono::seconds(20)));
    ASSERT_TRUE(client_->garbageCollect().ok());

    std::vector<RdtmonClient::RuntimeRow> rows = client_->listRuntimeGroups();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(std::get<0>(rows[0]), native.id);
    EXPECT_EQ(std::get<1>(rows[0]), dir);
    EXPECT_EQ(std::get<2>(rows[0]), static_cast<uint32_t>(native.init.pid()));
    EXPECT_EQ(std::get<4>(rows[0]), (std::map<std::string, std::string>{
                                        {"container", "app"}, {"pod", "pod-" + native.id}}));
    EXPECT_EQ(client_->listedIds(), std::set<std::string>{containers_[0].id}) << "not owned";
    auto labels = client_->allCountersLabels();
    EXPECT_EQ(labels[native.id]["origin"], "runtime");
    EXPECT_EQ(labels[containers_[0].id]["origin"], "adopted");
    EXPECT_EQ(labels[containers_[0].id]["container"], "app");
    // Never taken: a create for its name is refused, and its tasks stay as they are.
    CallResult c = client_->createGroup(native.id, static_cast<uint32_t>(native.init.pid()));
    EXPECT_EQ(c.error, "org.rdtmon1.Error.AlreadyExists");
    EXPECT_EQ(tasks(native.id), std::set<pid_t>{native.init.pid()});
    // Its runtime removes it: gone from every view at the next read.
    writeFile(emu_.path() + "/tasks", std::to_string(native.init.pid()));
    ASSERT_EQ(::rmdir(dir.c_str()), 0);
    labels = client_->allCountersLabels();
    EXPECT_EQ(labels.count(native.id), 0u);
    EXPECT_TRUE(client_->listRuntimeGroups().empty());
}

TEST_F(Adopt, AKillInTheMiddleOfTheAdoptionsLeavesNoGroupWithoutARecord) {
    addContainers(40);
    startDaemon();
    // Killed as soon as the first groups appear, in the middle of the queue.
    ASSERT_TRUE(waitUntil([&] { return !groupDirs().empty(); }, std::chrono::seconds(20)));
    daemon_->kill9();
    const std::set<std::string> made = groupDirs();
    const std::set<std::string> recorded =
        recordedIds(daemon_->stateDir(), [](const nlohmann::json&) { return true; });
    for (const std::string& id : made) {
        EXPECT_EQ(recorded.count(id), 1u) << "group " << id << " without a record";
    }
    startDaemon();
    ASSERT_TRUE(waitUntil([&] { return allAdopted(); }, std::chrono::seconds(30)))
        << daemon_->log();
    ASSERT_TRUE(client_->garbageCollect().ok());
    std::set<std::string> ids;
    for (const FakeContainer& c : containers_) {
        ids.insert(c.id);
    }
    EXPECT_EQ(groupDirs(), ids);
    EXPECT_EQ(client_->listedIds(), ids);
    EXPECT_EQ(recordedIds(daemon_->stateDir(),
                          [](const nlohmann::json& g) { return !g.value("pending", false); }),
              ids);
}

} // namespace

namespace {

// The end of a container without its poststop hook, in rdtmond itself: nothing else wakes
// its loop (no followed cgroup, no collection timer), so the grace's own timeout must.
TEST(EndOfAContainer, ItsGroupGoesAfterTheGraceWithNothingElseToWakeTheService) {
    EmulatorMount emu{EmulatorOptions{.numRmids = 8}};
    PrivateBus bus;
    Rdtmond daemon(
        bus, Rdtmond::Options{.resctrl = emu.path(),
                              .configJson = R"({"gc":{"intervalSeconds":3600,"graceSeconds":3600},)"
                                            R"("groups":{"exitGraceSeconds":1}})"});
    RdtmonClient client(bus.address());
    SignalRecorder signals(bus.address());
    ChildProcess init(spawnSleeper(1)); // in the test's own cgroup: not followed
    ASSERT_TRUE(client.createGroup("ended", static_cast<uint32_t>(init.pid())).ok());
    EXPECT_EQ(client.groupProperty("ended", "Cgroup").get<std::string>(), "");
    const auto killed = std::chrono::steady_clock::now();
    init.reset(); // behind its runtime's back: no RemoveGroup
    EXPECT_EQ(signals.waitFor("GroupRemoved", "ended", std::chrono::seconds(15)),
              std::optional<std::string>("exited"))
        << daemon.log();
    EXPECT_GE(std::chrono::steady_clock::now() - killed, std::chrono::milliseconds(900))
        << "removed before the grace";
    EXPECT_FALSE(isDir(emu.path() + "/mon_groups/ended"));
    EXPECT_TRUE(client.listGroups().empty());
}

} // namespace
