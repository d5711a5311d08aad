// Garbage collection against the runtime's container list, crash-safe ownership and restart
// recovery, with the real rdtmond on a private bus and the emulator.

#include "EmulatorMount.h"
#include "PrivateBus.h"
#include "Proc.h"
#include "RdtmonClient.h"
#include "RdtmondProcess.h"
#include "Subprocess.h"
#include "TempDir.h"
#include "TestUtil.h"

#include <atomic>
#include <dirent.h>
#include <fstream>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <thread>

using namespace rdtmon::test;
using ::testing::HasSubstr;

namespace {

class GcTest : public ::testing::Test {
protected:
    GcTest() { ::mkdir(runcRoot().c_str(), 0755); }

    std::string runcRoot() const { return roots_.file("runc"); }
    std::string config(int graceSeconds, const std::string& extraSources = "") const {
        return R"({"gc":{"intervalSeconds":3600,"graceSeconds":)" + std::to_string(graceSeconds) +
               R"(},"containerSources":[{"stateDirs":[")" + runcRoot() + R"("]})" + extraSources +
               "]}";
    }
    // A runc-style state entry: <root>/<id>/state.json.
    void runtimeLists(const std::string& id) {
        ::mkdir((runcRoot() + "/" + id).c_str(), 0700);
        std::ofstream(runcRoot() + "/" + id + "/state.json") << "{}";
    }
    void runtimeForgets(const std::string& id) {
        ::unlink((runcRoot() + "/" + id + "/state.json").c_str());
        ::rmdir((runcRoot() + "/" + id).c_str());
    }
    std::string groupDir(const std::string& id) const { return emu_.path() + "/mon_groups/" + id; }

    TempDir roots_{"rdtmon-roots"};
    EmulatorMount emu_{EmulatorOptions{.numRmids = 128}};
    PrivateBus bus_;
};

TEST_F(GcTest, StaleGroupIsRemovedLiveGroupKept) {
    Rdtmond d(bus_, {.resctrl = emu_.path(), .configJson = config(0)});
    RdtmonClient c(bus_.address());
    SignalRecorder sig(bus_.address());
    ChildProcess p1(spawnSleeper()), p2(spawnSleeper());
    runtimeLists("live");
    runtimeLists("dead");
    ASSERT_TRUE(c.createGroup("live", static_cast<uint32_t>(p1.pid())).ok());
    ASSERT_TRUE(c.createGroup("dead", static_cast<uint32_t>(p2.pid())).ok());
    uint32_t removed = 99;
    ASSERT_TRUE(c.garbageCollect(&removed).ok());
    EXPECT_EQ(removed, 0u) << "both are listed by the runtime";

    runtimeForgets("dead"); // poststop never ran, the runtime deleted its state
    CallResult r = c.garbageCollect(&removed);
    ASSERT_TRUE(r.ok()) << r.error << r.message;
    EXPECT_EQ(removed, 1u);
    EXPECT_FALSE(isDir(groupDir("dead")));
    EXPECT_TRUE(isDir(groupDir("live")));
    EXPECT_EQ(c.listedIds(), std::set<std::string>{"live"});
    EXPECT_EQ(sig.waitFor("GroupRemoved", "dead"), std::optional<std::string>("stale"));
    EXPECT_THAT(d.log(), HasSubstr("container dead: removed stale group"));
}

TEST_F(GcTest, GroupYoungerThanTheGraceIsKept) {
    Rdtmond d(bus_, {.resctrl = emu_.path(), .configJson = config(3600)});
    RdtmonClient c(bus_.address());
    ChildProcess p(spawnSleeper());
    ASSERT_TRUE(c.createGroup("young", static_cast<uint32_t>(p.pid())).ok());
    uint32_t removed = 99;
    ASSERT_TRUE(c.garbageCollect(&removed).ok());
    EXPECT_EQ(removed, 0u);
    EXPECT_TRUE(isDir(groupDir("young")));
}

TEST_F(GcTest, AFailedSourceRemovesNothing) {
    TempDir scripts("rdtmon-scripts");
    const std::string fail = scripts.file("fail.sh");
    const std::string garbage = scripts.file("garbage.sh");
    const std::string slow = scripts.file("slow.sh");
    std::ofstream(fail) << "#!/bin/sh\necho some-id\nexit 3\n";
    std::ofstream(garbage) << "#!/bin/sh\necho 'CONTAINER ID   IMAGE'\n";
    std::ofstream(slow) << "#!/bin/sh\nsleep 30\n";
    for (const std::string& s : {fail, garbage, slow}) {
        ::chmod(s.c_str(), 0755);
    }
    struct Case {
        std::string source;
        std::string logged;
    };
    const std::vector<Case> cases = {
        {R"(,{"command":[")" + fail + R"("]})", "exit"},
        {R"(,{"command":[")" + garbage + R"("]})", "garbage.sh"},
        {R"(,{"command":[")" + slow + R"("],"timeoutSeconds":1})", "timed out"},
        {R"(,{"stateDirs":[")" + scripts.file("fail.sh") + R"("]})", "fail.sh"},
    };
    ChildProcess p(spawnSleeper());
    for (const Case& k : cases) {
        SCOPED_TRACE(k.source);
        Rdtmond d(bus_, {.resctrl = emu_.path(), .configJson = config(0, k.source)});
        RdtmonClient c(bus_.address());
        CallResult cr = c.createGroup("orphan", static_cast<uint32_t>(p.pid()));
        ASSERT_TRUE(cr.ok()) << cr.error << cr.message;
        uint32_t removed = 99;
        const auto t0 = std::chrono::steady_clock::now();
        ASSERT_TRUE(c.garbageCollect(&removed).ok());
        EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
        EXPECT_EQ(removed, 0u);
        EXPECT_TRUE(isDir(groupDir("orphan")));
        EXPECT_THAT(d.log(), HasSubstr("removed nothing"));
        EXPECT_THAT(d.log(), HasSubstr(k.logged));
        ASSERT_TRUE(c.removeGroup("orphan").ok());
    }
}

TEST_F(GcTest, ForeignGroupsSurviveEveryCollection) {
    Rdtmond d(bus_, {.resctrl = emu_.path(), .configJson = config(0)});
    RdtmonClient c(bus_.address());
    ASSERT_EQ(::mkdir(groupDir("native-monitoring").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((emu_.path() + "/clos1").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((emu_.path() + "/clos1/mon_groups/cadvisor").c_str(), 0755), 0);
    for (int i = 0; i < 3; ++i) {
        uint32_t removed = 99;
        ASSERT_TRUE(c.garbageCollect(&removed).ok());
        EXPECT_EQ(removed, 0u);
    }
    d.stop();
    d.start(); // start-up reconcile and collection too
    uint32_t removed = 99;
    ASSERT_TRUE(c.garbageCollect(&removed).ok());
    EXPECT_TRUE(isDir(groupDir("native-monitoring")));
    EXPECT_TRUE(isDir(emu_.path() + "/clos1/mon_groups/cadvisor"));
    EXPECT_TRUE(c.listedIds().empty());
}

TEST_F(GcTest, ACollectionRacingACreateForTheSameIdKeepsTheNewGroup) {
    // A command source that takes a while, once told to, lets the calls below land
    // mid-collection. It notes each start and end, so the test waits for those, not a time.
    TempDir scripts("rdtmon-scripts");
    const std::string slow = scripts.file("slow.sh");
    const std::string calls = scripts.file("calls");
    const std::string slowFlag = scripts.file("be-slow");
    // Long enough that a caller held up by it would take seconds, not milliseconds.
    std::ofstream(slow) << "#!/bin/sh\necho start >>" << calls << "\n[ ! -e " << slowFlag
                        << " ] || sleep 3\necho end >>" << calls << "\n";
    ::chmod(slow.c_str(), 0755);
    const auto lines = [&](const std::string& word) {
        std::istringstream in(readFile(calls));
        int n = 0;
        for (std::string l; std::getline(in, l);) {
            n += l == word ? 1 : 0;
        }
        return n;
    };
    Rdtmond d(bus_, {.resctrl = emu_.path(),
                     .configJson = config(0, R"(,{"command":[")" + slow + R"("]})")});
    RdtmonClient c(bus_.address());
    ChildProcess p(spawnSleeper());
    ChildProcess p2(spawnSleeper());
    const auto pid = static_cast<uint32_t>(p.pid());
    ASSERT_TRUE(c.createGroup("racy", pid).ok());
    // The start-up collection has listed its sources (quickly): a collection asked for now
    // lists them again, slowly.
    ASSERT_TRUE(waitUntil([&] { return lines("end") == 1; }, std::chrono::seconds(30)));
    writeFile(slowFlag, "");

    std::atomic<uint32_t> removed{99};
    std::thread gc([&] {
        RdtmonClient c2(bus_.address());
        uint32_t n = 0;
        EXPECT_TRUE(c2.garbageCollect(&n).ok());
        removed = n;
    });
    ASSERT_TRUE(waitUntil([&] { return lines("start") == 2; }, std::chrono::seconds(30)));
    // While the sources are being listed: the group is removed and made anew.
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(c.removeGroup("racy").ok());
    ASSERT_TRUE(c.createGroup("racy", pid).ok());
    ASSERT_TRUE(c.createGroup("fresh", static_cast<uint32_t>(p2.pid())).ok());
    EXPECT_LT(std::chrono::steady_clock::now() - t0,
              scaledDeadline(std::chrono::milliseconds(1500)))
        << "a running collection must not hold up other callers";
    gc.join();
    EXPECT_EQ(removed.load(), 0u);
    EXPECT_TRUE(isDir(groupDir("racy")));
    EXPECT_TRUE(isDir(groupDir("fresh")));
    EXPECT_EQ(c.listedIds(), (std::set<std::string>{"fresh", "racy"}));
    // The next collection, started after both, judges them.
    uint32_t n = 0;
    ASSERT_TRUE(c.garbageCollect(&n).ok());
    EXPECT_EQ(n, 2u);
}

TEST_F(GcTest, KillNineMidBurstLeavesNoOrphanAndNoLie) {
    ASSERT_EQ(::mkdir(groupDir("foreign").c_str(), 0755), 0);
    Rdtmond d(bus_, {.resctrl = emu_.path(), .configJson = config(3600)});
    std::mt19937 rng(42);
    for (int round = 0; round < 5; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        std::atomic<bool> go{true};
        std::vector<std::thread> clients;
        for (int t = 0; t < 4; ++t) {
            clients.emplace_back([&, t] {
                std::vector<ChildProcess> inits; // one container init per id
                try {
                    RdtmonClient c(bus_.address());
                    for (int i = 0; go && i < 200; ++i) {
                        std::string id = concat("r", round, "-", t, "-", i);
                        inits.emplace_back(spawnSleeper());
                        c.createGroup(id, static_cast<uint32_t>(inits.back().pid()));
                        if (i % 3 == 0) {
                            c.removeGroup(id);
                        }
                    }
                } catch (const std::exception&) {
                    // The service died under us: expected.
                }
            });
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 150));
        d.kill9();
        go = false;
        for (std::thread& t : clients) {
            t.join();
        }
        d.start();
        RdtmonClient c(bus_.address());
        std::set<std::string> listed = c.listedIds();
        std::set<std::string> onDisk = entries(emu_.path() + "/mon_groups");
        onDisk.erase("foreign");
        EXPECT_EQ(listed, onDisk) << "every group on disk is owned, every record has its dir";
        EXPECT_EQ(recordedIds(d.stateDir(),
                              [](const nlohmann::json& g) {
                                  // Waiting containers have no group by design
                                  // (test_wait_rmid.cpp).
                                  return !g.value("waiting", false);
                              }),
                  listed);
        EXPECT_TRUE(isDir(groupDir("foreign")));
    }
}

TEST_F(GcTest, ACorruptStateFileIsMovedAsideAndTheServiceStarts) {
    ChildProcess p(spawnSleeper());
    {
        Rdtmond d(bus_, {.resctrl = emu_.path(), .configJson = config(0)});
        RdtmonClient c(bus_.address());
        ASSERT_TRUE(c.createGroup("before", static_cast<uint32_t>(p.pid())).ok());
        d.stop();
        std::ofstream(d.stateDir() + "/groups.json", std::ios::trunc) << "{\"version\":1,\"gro";
        d.start();
        EXPECT_TRUE(d.running());
        EXPECT_THAT(d.log(), HasSubstr("moved aside"));
        bool aside = false;
        for (const std::string& n : entries(d.stateDir())) {
            aside = aside || n.rfind("groups.json.corrupt-", 0) == 0;
        }
        EXPECT_TRUE(aside);
        // It starts from what it can prove: the old group is no longer its own to touch.
        EXPECT_TRUE(c.listedIds().empty());
        EXPECT_TRUE(isDir(groupDir("before")));
        uint32_t removed = 99;
        ASSERT_TRUE(c.garbageCollect(&removed).ok());
        EXPECT_TRUE(isDir(groupDir("before")));
        ASSERT_TRUE(c.createGroup("after", static_cast<uint32_t>(p.pid())).ok());
        EXPECT_EQ(c.listedIds(), std::set<std::string>{"after"});
    }
}

TEST_F(GcTest, ARecordWhoseDirectoryIsGoneIsDroppedAsVanishedAtStartUp) {
    ChildProcess p(spawnSleeper());
    Rdtmond d(bus_, {.resctrl = emu_.path(), .configJson = config(3600)});
    RdtmonClient c(bus_.address());
    ASSERT_TRUE(c.createGroup("gone", static_cast<uint32_t>(p.pid())).ok());
    ChildProcess p2(spawnSleeper());
    ASSERT_TRUE(c.createGroup("kept", static_cast<uint32_t>(p2.pid())).ok());
    d.stop();
    ASSERT_EQ(::rmdir(groupDir("gone").c_str()), 0);
    SignalRecorder sig(bus_.address());
    d.start();
    EXPECT_EQ(sig.waitFor("GroupRemoved", "gone"), std::optional<std::string>("vanished"));
    EXPECT_EQ(c.listedIds(), std::set<std::string>{"kept"});
    // The group object of the kept group is back on the bus.
    CommandResult prop =
        runCommand(bus_.busctl({"get-property", "org.rdtmon1", "/org/rdtmon1/group/kept",
                                "org.rdtmon1.Group", "ContainerId"}));
    EXPECT_EQ(prop.out, "s \"kept\"\n") << prop.err;
}

} // namespace
