// Manager.GetAllCounters and Manager.FreeRmids end to end: rdtmond on a private bus with the
// real policy, the resctrl emulator, busctl as an unprivileged client.

#include "DaemonOnEmulator.h"
#include "EmulatorMount.h"
#include "PrivateBus.h"
#include "Proc.h"
#include "RdtmonClient.h"
#include "RdtmondProcess.h"
#include "Subprocess.h"
#include "TestUtil.h"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <future>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <vector>

using namespace rdtmon::test;
using ::testing::HasSubstr;

namespace {

uint64_t monotonicNowUsec() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

struct Entry {
    std::map<std::string, std::string> labels;
    CountersMap counters;
};
struct Reply {
    uint64_t monotonicUsec = 0;
    std::vector<std::string> order; // ids in reply order
    std::map<std::string, Entry> byId;
};

class AllCountersTest : public ::testing::Test, protected DaemonOnEmulator {
protected:
    explicit AllCountersTest(EmulatorOptions eo = EmulatorOptions{.numRmids = 64})
        : DaemonOnEmulator(eo) {}

    // GetAllCounters through busctl as nobody: a read is allowed to everyone.
    CommandResult callAsNobody() {
        return runCommand(bus_.busctl({"--json=short", "call", "org.rdtmon1", "/org/rdtmon1",
                                       "org.rdtmon1.Manager", "GetAllCounters"}),
                          CommandOptions{.uid = 65534});
    }
    Reply call() {
        CommandResult r = callAsNobody();
        EXPECT_EQ(r.exitCode, 0) << r.err;
        nlohmann::json j = nlohmann::json::parse(r.out);
        EXPECT_EQ(j["type"], "ta(sa{ss}a{sa{st}})") << r.out;
        Reply out;
        out.monotonicUsec = j["data"][0].get<uint64_t>();
        for (const auto& row : j["data"][1]) {
            const std::string id = row[0].get<std::string>();
            out.order.push_back(id);
            Entry& e = out.byId[id];
            e.labels = row[1].get<std::map<std::string, std::string>>();
            e.counters = row[2].get<CountersMap>();
        }
        return out;
    }
    // Makes a CTRL_MON group and moves every thread of pid into it.
    void makeClos(const std::string& name, pid_t pid) {
        ASSERT_EQ(::mkdir((emu_.path() + "/" + name).c_str(), 0755), 0) << std::strerror(errno);
        for (pid_t t : threadsOf(pid)) {
            std::ofstream(emu_.path() + "/" + name + "/tasks") << t << "\n";
        }
    }
};

TEST_F(AllCountersTest, OwnedGroupsWithLabelsThenEveryCtrlMonGroupNonRootAllowed) {
    ChildProcess web(spawnSleeper(1));
    ChildProcess db(spawnSleeper(0));
    makeClos("clos1", db.pid());
    RdtmonClient client(bus_.address());
    const std::map<std::string, std::string> labels = {
        {"pod", "web-0"}, {"namespace", "shop"}, {"container", "nginx"}};
    {
        Pidfd fd(web.pid());
        ASSERT_TRUE(client.createContainerGroup("web", fd.get(), labels).ok());
    }
    ASSERT_TRUE(client.createGroup("db", static_cast<uint32_t>(db.pid())).ok());
    // A MON group rdtmond did not make is nobody's container: not in the reply.
    ASSERT_EQ(::mkdir((emu_.path() + "/mon_groups/native").c_str(), 0755), 0);

    const uint64_t before = monotonicNowUsec();
    Reply r = call();
    const uint64_t after = monotonicNowUsec();
    EXPECT_GE(r.monotonicUsec, before);
    EXPECT_LE(r.monotonicUsec, after);
    // Owned groups in id order, then the default group and the other CTRL_MON group.
    EXPECT_EQ(r.order, (std::vector<std::string>{"db", "web", "/", "/clos1"}));
    auto withOrigin = labels; // a container's labels say how its group came to be
    withOrigin["origin"] = "hook";
    EXPECT_EQ(r.byId["web"].labels, withOrigin);
    EXPECT_EQ(r.byId["db"].labels, (decltype(labels){{"origin", "hook"}}));
    EXPECT_TRUE(r.byId["/"].labels.empty());
    EXPECT_TRUE(r.byId["/clos1"].labels.empty());
    for (const auto& [id, e] : r.byId) {
        ASSERT_EQ(e.counters.size(), 2u) << id;
        for (const char* d : {"mon_L3_00", "mon_L3_01"}) {
            ASSERT_EQ(e.counters.count(d), 1u) << id << " " << d;
            EXPECT_EQ(e.counters.at(d).size(), 3u) << id << " " << d;
        }
    }
    // The same numbers GetCounters gives for the group (llc follows the task count, which
    // does not change between the two reads).
    CountersMap one;
    ASSERT_TRUE(client.getCounters("web", &one).ok());
    EXPECT_EQ(one.at("mon_L3_00").at("llc_occupancy"),
              r.byId["web"].counters.at("mon_L3_00").at("llc_occupancy"));
    // A CTRL_MON group's own numbers include its MON groups: clos1 holds only db's process.
    EXPECT_EQ(r.byId["/clos1"].counters.at("mon_L3_01").at("llc_occupancy"),
              r.byId["db"].counters.at("mon_L3_01").at("llc_occupancy"));

    // Free RMIDs: 64 minus root, clos1, web, db and native.
    EXPECT_EQ(client.property<uint32_t>("FreeRmids"), 59u);
    CommandResult free = runCommand(bus_.busctl({"get-property", "org.rdtmon1", "/org/rdtmon1",
                                                 "org.rdtmon1.Manager", "FreeRmids"}),
                                    CommandOptions{.uid = 65534});
    EXPECT_EQ(free.out, "u 59\n") << free.err;
    ASSERT_EQ(::rmdir((emu_.path() + "/mon_groups/native").c_str()), 0);
    EXPECT_EQ(client.property<uint32_t>("FreeRmids"), 60u);
}

TEST_F(AllCountersTest, WordsAreLeftOutAndAGroupRemovedOutsideIsLeftOut) {
    ChildProcess a(spawnSleeper(0));
    ChildProcess b(spawnSleeper(0));
    RdtmonClient client(bus_.address());
    ASSERT_TRUE(client.createGroup("a", static_cast<uint32_t>(a.pid())).ok());
    ASSERT_TRUE(client.createGroup("b", static_cast<uint32_t>(b.pid())).ok());
    emu_.control("counter mon_groups/a llc_occupancy Unavailable");
    emu_.control("counter mon_groups/a mbm_total_bytes Error");
    emu_.control("counter / mbm_local_bytes Unassigned");
    Reply r = call();
    for (const auto& [dom, events] : r.byId["a"].counters) {
        EXPECT_EQ(events.count("llc_occupancy"), 0u) << dom;
        EXPECT_EQ(events.count("mbm_total_bytes"), 0u) << dom;
        EXPECT_EQ(events.count("mbm_local_bytes"), 1u) << dom;
    }
    for (const auto& [dom, events] : r.byId["/"].counters) {
        EXPECT_EQ(events.count("mbm_local_bytes"), 0u) << dom;
        EXPECT_EQ(events.count("llc_occupancy"), 1u) << dom;
    }
    // Every event a word: the group is there, with no counters.
    emu_.control("counter mon_groups/a all Unassigned");
    r = call();
    ASSERT_EQ(r.byId.count("a"), 1u);
    EXPECT_TRUE(r.byId["a"].counters.empty());

    // Removed behind rdtmond's back: left out, the others still answered.
    SignalRecorder signals(bus_.address());
    ASSERT_EQ(::rmdir((emu_.path() + "/mon_groups/b").c_str()), 0);
    r = call();
    EXPECT_EQ(r.order, (std::vector<std::string>{"a", "/"}));
    EXPECT_EQ(signals.waitFor("GroupRemoved", "b"), std::optional<std::string>("vanished"));
}

TEST_F(AllCountersTest, WithoutResctrlItIsTheErrorGetCountersGives) {
    ChildProcess p(spawnSleeper(0));
    RdtmonClient client(bus_.address());
    ASSERT_TRUE(client.createGroup("a", static_cast<uint32_t>(p.pid())).ok());
    emu_.stop();
    auto conn = sdbus::createSessionBusConnectionWithAddress(bus_.address());
    auto proxy = sdbus::createProxy(*conn, "org.rdtmon1", "/org/rdtmon1");
    std::string error;
    try {
        uint64_t t = 0;
        std::vector<sdbus::Struct<std::string, std::map<std::string, std::string>, CountersMap>> g;
        proxy->callMethod("GetAllCounters").onInterface("org.rdtmon1.Manager").storeResultsTo(t, g);
    } catch (const sdbus::Error& e) {
        error = e.getName();
    }
    CallResult single = client.getCounters("a");
    EXPECT_FALSE(single.ok());
    EXPECT_EQ(error, single.error);
    EXPECT_EQ(error, "org.rdtmon1.Error.NotSupported");
    EXPECT_EQ(client.property<uint32_t>("FreeRmids"), 0u);
}

// A read pass runs off the service's loop: while one is stuck in a counter read (the
// emulator holds it), a create is answered at once, and the reader gets its answer when
// the read goes on. (Read on the loop, the create would wait for the hold, 10 s.)
TEST_F(AllCountersTest, ACreateIsAnsweredWhileAReadPassIsStuck) {
    RdtmonClient client(bus_.address());
    ChildProcess a(spawnSleeper(0));
    ASSERT_TRUE(client.createGroup("a", static_cast<uint32_t>(a.pid())).ok());
    emu_.control("hold-counter-read");
    auto reader = std::async(std::launch::async, [this] { return callAsNobody(); });
    ASSERT_TRUE(waitUntil([&] { return emu_.control("counter-read-held") == "1"; },
                          scaledDeadline(std::chrono::milliseconds(10000))));
    ChildProcess b(spawnSleeper(0));
    const auto t0 = std::chrono::steady_clock::now();
    const CallResult created = client.createGroup("b", static_cast<uint32_t>(b.pid()));
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_TRUE(created.ok()) << created.error << ": " << created.message;
    EXPECT_EQ(emu_.control("counter-read-held"), "1") << "the create waited for the read";
    EXPECT_LT(took, scaledDeadline(std::chrono::milliseconds(3000)));
    emu_.control("release-counter-read");
    const CommandResult r = reader.get();
    EXPECT_EQ(r.exitCode, 0) << r.err;
    // It started before b existed: b is not in it, a is.
    EXPECT_THAT(r.out, HasSubstr("\"a\""));
    // The next reader gets a pass that started after its call: b is there.
    EXPECT_EQ(call().byId.count("b"), 1u);
}

class AllCountersSncTest : public AllCountersTest {
protected:
    AllCountersSncTest() : AllCountersTest(EmulatorOptions{.numRmids = 16, .snc = 2}) {}
};

TEST_F(AllCountersSncTest, SubDomainsAreKeyedUnderTheirDomain) {
    ChildProcess p(spawnSleeper(0));
    RdtmonClient client(bus_.address());
    ASSERT_TRUE(client.createGroup("c", static_cast<uint32_t>(p.pid())).ok());
    Reply r = call();
    for (const char* id : {"c", "/"}) {
        std::vector<std::string> keys;
        for (const auto& [k, events] : r.byId[id].counters) {
            keys.push_back(k);
            EXPECT_EQ(events.size(), 3u) << id << " " << k;
        }
        EXPECT_EQ(keys, (std::vector<std::string>{
                            "mon_L3_00", "mon_L3_00/mon_sub_L3_00", "mon_L3_00/mon_sub_L3_01",
                            "mon_L3_01", "mon_L3_01/mon_sub_L3_02", "mon_L3_01/mon_sub_L3_03"}))
            << id;
    }
    // A domain's own numbers are the sum of its sub-domains'.
    const CountersMap& c = r.byId["c"].counters;
    EXPECT_EQ(c.at("mon_L3_00").at("llc_occupancy"),
              c.at("mon_L3_00/mon_sub_L3_00").at("llc_occupancy") +
                  c.at("mon_L3_00/mon_sub_L3_01").at("llc_occupancy"));
}

} // namespace
