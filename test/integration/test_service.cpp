// rdtmond and rdtmon-hook end to end: a private dbus-daemon with the real policy file,
// the resctrl emulator, and the real binaries.

#include "DaemonOnEmulator.h"
#include "EmulatorMount.h"
#include "PrivateBus.h"
#include "Proc.h"
#include "RdtmonClient.h"
#include "RdtmondProcess.h"
#include "Subprocess.h"
#include "TempDir.h"
#include "TestUtil.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <dirent.h>
#include <fstream>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <thread>

using namespace rdtmon::test;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

// Every directory under root (relative paths), skipping mon_data and info, which have no
// group in them: the "nothing was made anywhere" check.
void listDirs(const std::string& root, const std::string& rel, std::set<std::string>& out) {
    DIR* d = ::opendir((root + "/" + rel).c_str());
    if (d == nullptr) {
        return;
    }
    while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == ".." || name == "mon_data" || name == "info") {
            continue;
        }
        std::string sub = rel.empty() ? name : rel + "/" + name;
        if (isDir(root + "/" + sub)) {
            out.insert(sub);
            listDirs(root, sub, out);
        }
    }
    ::closedir(d);
}

std::set<std::string> treeOf(const std::string& root) {
    std::set<std::string> out;
    listDirs(root, "", out);
    return out;
}

std::string ociState(const std::string& id, std::optional<pid_t> pid, const std::string& bundle,
                     const std::string& status = "creating",
                     const nlohmann::json& annotations = nlohmann::json::object()) {
    nlohmann::json j = {{"ociVersion", "1.0.2"},
                        {"id", id},
                        {"status", status},
                        {"bundle", bundle},
                        {"annotations", annotations}};
    if (pid) {
        j["pid"] = *pid;
    }
    return j.dump();
}

class ServiceTest : public ::testing::Test, protected DaemonOnEmulator {
protected:
    explicit ServiceTest(EmulatorOptions eo = EmulatorOptions{.numRmids = 64},
                         std::string configJson = "{}")
        : DaemonOnEmulator(eo, configJson) {
        std::ofstream(bundle_.file("config.json")) << R"({"ociVersion":"1.0.2","linux":{}})";
    }

    CommandResult hook(const std::string& action, const std::string& state,
                       std::vector<std::string> extra = {}) {
        std::vector<std::string> argv = {RDTMON_HOOK_BIN, action};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return runCommand(argv, CommandOptions{.stdinText = state, .env = {bus_.envEntry()}});
    }

    std::string groupDir(const std::string& id, const std::string& ctrl = "") {
        return emu_.path() + (ctrl.empty() ? "" : "/" + ctrl) + "/mon_groups/" + id;
    }

    TempDir bundle_{"rdtmon-bundle"};
};

constexpr const char* kDeprecated = "org.freedesktop.DBus.Deprecated";

// One member's element in introspection XML: from <KIND name="NAME" to the next member.
std::string introspectedMember(const std::string& xml, const std::string& kind,
                               const std::string& name) {
    const std::size_t b = xml.find("<" + kind + " name=\"" + name + "\"");
    if (b == std::string::npos) {
        return "";
    }
    std::size_t e = std::string::npos;
    for (const char* next : {"<method ", "<property ", "<signal ", "</interface>"}) {
        e = std::min(e, xml.find(next, b + 1));
    }
    return xml.substr(b, e == std::string::npos ? e : e - b);
}

TEST_F(ServiceTest, HookCreateMovesEveryThreadAndDeleteRemovesTheGroup) {
    ChildProcess proc(spawnSleeper(3));
    const std::vector<pid_t> threads = threadsOf(proc.pid());
    ASSERT_EQ(threads.size(), 4u);
    SignalRecorder signals(bus_.address());

    CommandResult r = hook("create", ociState("web-1", proc.pid(), bundle_.path()));
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(r.err, "");
    ASSERT_TRUE(isDir(groupDir("web-1")));
    std::set<pid_t> tasks = tasksOf(groupDir("web-1"));
    for (pid_t t : threads) {
        EXPECT_TRUE(tasks.count(t)) << "thread " << t << " not moved";
    }
    EXPECT_EQ(signals.waitFor("GroupCreated", "web-1"),
              std::optional<std::string>("/org/rdtmon1/group/web_2d1"));

    // busctl is a first-class client.
    CommandResult ls =
        runCommand(bus_.busctl({"--json=short", "call", "org.rdtmon1", "/org/rdtmon1",
                                "org.rdtmon1.Manager", "ListGroups"}));
    ASSERT_EQ(ls.exitCode, 0) << ls.err;
    nlohmann::json rows = nlohmann::json::parse(ls.out)["data"][0];
    ASSERT_EQ(rows.size(), 1u) << ls.out;
    EXPECT_EQ(rows[0][0], "web-1");
    EXPECT_EQ(rows[0][1], groupDir("web-1"));
    EXPECT_EQ(rows[0][2], proc.pid());
    EXPECT_GT(rows[0][3].get<uint64_t>(), 1600000000000000u);
    EXPECT_EQ(rows[0][4], "/org/rdtmon1/group/web_2d1");

    CommandResult gc =
        runCommand(bus_.busctl({"--json=short", "call", "org.rdtmon1", "/org/rdtmon1",
                                "org.rdtmon1.Manager", "GetCounters", "s", "web-1"}));
    ASSERT_EQ(gc.exitCode, 0) << gc.err;
    nlohmann::json counters = nlohmann::json::parse(gc.out)["data"][0];
    ASSERT_TRUE(counters.contains("mon_L3_00")) << gc.out;
    ASSERT_TRUE(counters.contains("mon_L3_01")) << gc.out;
    for (const char* dom : {"mon_L3_00", "mon_L3_01"}) {
        for (const char* ev : {"llc_occupancy", "mbm_total_bytes", "mbm_local_bytes"}) {
            EXPECT_TRUE(counters[dom].contains(ev)) << dom << " " << ev << ": " << gc.out;
        }
    }
    // The group object answers too.
    CommandResult prop =
        runCommand(bus_.busctl({"get-property", "org.rdtmon1", "/org/rdtmon1/group/web_2d1",
                                "org.rdtmon1.Group", "ContainerId"}));
    EXPECT_EQ(prop.out, "s \"web-1\"\n") << prop.err;

    proc.reset(); // poststop comes after the container's end
    CommandResult d = hook("delete", ociState("web-1", std::nullopt, bundle_.path(), "stopped"));
    ASSERT_EQ(d.exitCode, 0) << d.err;
    EXPECT_EQ(d.err, "");
    // The delete hook does not wait for the removal: the signal says it is done.
    EXPECT_EQ(signals.waitFor("GroupRemoved", "web-1"), std::optional<std::string>("requested"));
    EXPECT_FALSE(isDir(groupDir("web-1")));
    RdtmonClient client(bus_.address());
    EXPECT_TRUE(client.listGroups().empty());
    EXPECT_EQ(client.property<uint32_t>("GroupCount"), 0u);
    // The service logged both with the container id.
    EXPECT_THAT(daemon_.log(), HasSubstr("container web-1: created group"));
    EXPECT_THAT(daemon_.log(), HasSubstr("container web-1: removed group"));
}

TEST_F(ServiceTest, GroupGoesUnderTheCtrlMonGroupThatHoldsThePid) {
    ChildProcess proc(spawnSleeper(1));
    ASSERT_EQ(::mkdir((emu_.path() + "/clos1").c_str(), 0755), 0) << std::strerror(errno);
    for (pid_t t : threadsOf(proc.pid())) {
        std::ofstream(emu_.path() + "/clos1/tasks") << t << "\n";
    }
    CommandResult r = hook("create", ociState("db", proc.pid(), bundle_.path(), "created"));
    ASSERT_EQ(r.exitCode, 0) << r.err;
    ASSERT_TRUE(isDir(groupDir("db", "clos1")));
    EXPECT_FALSE(isDir(groupDir("db")));
    EXPECT_TRUE(tasksOf(groupDir("db", "clos1")).count(proc.pid()));
    RdtmonClient client(bus_.address());
    auto rows = client.listGroups();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(std::get<1>(rows[0]), groupDir("db", "clos1"));
    CommandResult cg =
        runCommand(bus_.busctl({"get-property", "org.rdtmon1", "/org/rdtmon1/group/db",
                                "org.rdtmon1.Group", "ControlGroup"}));
    EXPECT_EQ(cg.out, "s \"clos1\"\n");
    // The name that cannot be read as a cgroup; ControlGroup stays, deprecated.
    CommandResult ctrl =
        runCommand(bus_.busctl({"get-property", "org.rdtmon1", "/org/rdtmon1/group/db",
                                "org.rdtmon1.Group", "CtrlMonGroup"}));
    EXPECT_EQ(ctrl.out, "s \"clos1\"\n");
    const std::string group = runCommand(bus_.busctl({"introspect", "--xml-interface",
                                                      "org.rdtmon1", "/org/rdtmon1/group/db"}))
                                  .out;
    EXPECT_THAT(introspectedMember(group, "property", "ControlGroup"), HasSubstr(kDeprecated));
    EXPECT_THAT(introspectedMember(group, "property", "CtrlMonGroup"), Not(HasSubstr(kDeprecated)));
}

// AddContainer is the create method; the two older ones say they are deprecated.
TEST_F(ServiceTest, TheOlderCreateMethodsAreDeprecated) {
    const std::string manager =
        runCommand(bus_.busctl({"introspect", "--xml-interface", "org.rdtmon1", "/org/rdtmon1"}))
            .out;
    EXPECT_THAT(introspectedMember(manager, "method", "CreateGroup"), HasSubstr(kDeprecated));
    EXPECT_THAT(introspectedMember(manager, "method", "CreateContainerGroup"),
                HasSubstr(kDeprecated));
    EXPECT_THAT(introspectedMember(manager, "method", "AddContainer"),
                AllOf(HasSubstr("container_id"), Not(HasSubstr(kDeprecated))));
}

TEST_F(ServiceTest, CreateIsIdempotentForTheSameId) {
    ChildProcess proc(spawnSleeper(0));
    RdtmonClient client(bus_.address());
    sdbus::ObjectPath p1, p2;
    ASSERT_TRUE(client.createGroup("same", static_cast<uint32_t>(proc.pid()), &p1).ok());
    // A thread started later inherits; a thread moved away by hand comes back on retry.
    std::ofstream(emu_.path() + "/tasks") << proc.pid() << "\n";
    EXPECT_FALSE(tasksOf(groupDir("same")).count(proc.pid()));
    CallResult again = client.createGroup("same", static_cast<uint32_t>(proc.pid()), &p2);
    ASSERT_TRUE(again.ok()) << again.error << ": " << again.message;
    EXPECT_EQ(p1, p2);
    EXPECT_TRUE(tasksOf(groupDir("same")).count(proc.pid()));
    EXPECT_EQ(client.listGroups().size(), 1u);
}

TEST_F(ServiceTest, BadIdsAreInvalidArgumentAndTouchNothing) {
    ChildProcess proc(spawnSleeper(0));
    RdtmonClient client(bus_.address());
    const std::set<std::string> before = treeOf(emu_.path());
    const std::vector<std::string> bad = {
        "..",         ".",        "a/b", "",          std::string(129, 'a'), "a\nb", "info",
        "mon_groups", "mon_data", "a b", "../escape", "semi;colon",          "x/.."};
    for (const std::string& id : bad) {
        CallResult r = client.createGroup(id, static_cast<uint32_t>(proc.pid()));
        EXPECT_EQ(r.error, "org.rdtmon1.Error.InvalidArgument") << "id '" << id << "'";
        EXPECT_EQ(client.removeGroup(id).error, "org.rdtmon1.Error.InvalidArgument") << id;
        EXPECT_EQ(client.getCounters(id).error, "org.rdtmon1.Error.InvalidArgument") << id;
    }
    EXPECT_EQ(treeOf(emu_.path()), before);
    // 128 characters is the longest valid id.
    EXPECT_TRUE(client.createGroup(std::string(128, 'a'), static_cast<uint32_t>(proc.pid())).ok());
    EXPECT_EQ(client.createGroup("ok", 0).error, "org.rdtmon1.Error.InvalidArgument");
}

TEST_F(ServiceTest, EachErrorNameComesFromARealSituation) {
    RdtmonClient client(bus_.address());
    ChildProcess proc(spawnSleeper(0));
    const auto pid = static_cast<uint32_t>(proc.pid());

    EXPECT_EQ(client.removeGroup("never-made").error, "org.rdtmon1.Error.NoSuchGroup");
    EXPECT_EQ(client.getCounters("never-made").error, "org.rdtmon1.Error.NoSuchGroup");

    pid_t gone = 0;
    {
        ChildProcess dead(spawnSleeper(0));
        gone = dead.pid();
    }
    CallResult nsp = client.createGroup("ghost", static_cast<uint32_t>(gone));
    EXPECT_EQ(nsp.error, "org.rdtmon1.Error.NoSuchProcess") << nsp.message;
    EXPECT_FALSE(isDir(groupDir("ghost")));

    ASSERT_EQ(::mkdir(groupDir("native").c_str(), 0755), 0);
    CallResult ae = client.createGroup("native", pid);
    EXPECT_EQ(ae.error, "org.rdtmon1.Error.AlreadyExists") << ae.message;
    EXPECT_TRUE(isDir(groupDir("native"))) << "a foreign group must be left alone";
    EXPECT_EQ(client.removeGroup("native").error, "org.rdtmon1.Error.NoSuchGroup");
    EXPECT_TRUE(isDir(groupDir("native")));

    emu_.control("fail-next-mkdir EIO");
    CallResult f = client.createGroup("eio", pid);
    EXPECT_EQ(f.error, "org.rdtmon1.Error.Failed") << f.message;
    EXPECT_FALSE(isDir(groupDir("eio")));
    EXPECT_TRUE(client.listGroups().empty());
}

class SmallEmulatorTest : public ServiceTest {
protected:
    // RMID 0 is the root's: two left for groups. Limbo long enough to see Busy. Without
    // waiting for an RMID, as before it existed (waiting: test_wait_rmid.cpp).
    SmallEmulatorTest()
        : ServiceTest(EmulatorOptions{.numRmids = 3, .limboMs = 60000},
                      R"({"groups":{"waitForRmid":false}})") {}
};

TEST_F(SmallEmulatorTest, OutOfRmidsAndBusyAreReportedAndLeaveNothing) {
    RdtmonClient client(bus_.address());
    // One container init per id (a process can be in one container's group only).
    const Sleepers inits(3);
    ASSERT_TRUE(client.createGroup("a", inits.upid(0)).ok());
    ASSERT_TRUE(client.createGroup("b", inits.upid(1)).ok());
    const uint32_t pid = inits.upid(2);
    CallResult full = client.createGroup("c", pid);
    EXPECT_EQ(full.error, "org.rdtmon1.Error.OutOfRmids") << full.message;
    EXPECT_FALSE(isDir(groupDir("c")));

    // A freed RMID sits in limbo: the next mkdir is EBUSY until it is reusable.
    ASSERT_TRUE(client.removeGroup("b").ok());
    CallResult busy = client.createGroup("c", pid);
    EXPECT_EQ(busy.error, "org.rdtmon1.Error.Busy") << busy.message;
    EXPECT_FALSE(isDir(groupDir("c")));
    emu_.control("limbo-ms 0");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CallResult later = client.createGroup("c", pid);
    EXPECT_TRUE(later.ok()) << later.error << ": " << later.message;

    // Full again (a and c hold both RMIDs). The hook is fail-open by default and
    // fail-closed on request.
    ChildProcess other(spawnSleeper(0));
    CommandResult open = hook("create", ociState("e", other.pid(), bundle_.path()));
    EXPECT_EQ(open.exitCode, 0);
    EXPECT_THAT(open.err, HasSubstr("e"));
    EXPECT_THAT(open.err, HasSubstr("OutOfRmids"));
    EXPECT_EQ(std::count(open.err.begin(), open.err.end(), '\n'), 1) << open.err;
    CommandResult closed =
        hook("create", ociState("e", other.pid(), bundle_.path()), {"--fail-closed"});
    EXPECT_NE(closed.exitCode, 0);
    EXPECT_THAT(closed.err, HasSubstr("OutOfRmids"));
    EXPECT_FALSE(isDir(groupDir("e")));
}

TEST_F(ServiceTest, HookIsFailOpenWithNoServiceAndFailClosedOnRequest) {
    ChildProcess proc(spawnSleeper(0));
    daemon_.stop();
    CommandResult open = hook("create", ociState("nosvc", proc.pid(), bundle_.path()));
    EXPECT_EQ(open.exitCode, 0);
    EXPECT_THAT(open.err, HasSubstr("nosvc"));
    EXPECT_EQ(std::count(open.err.begin(), open.err.end(), '\n'), 1) << open.err;
    CommandResult closed =
        hook("create", ociState("nosvc", proc.pid(), bundle_.path()), {"--fail-closed"});
    EXPECT_NE(closed.exitCode, 0);
    EXPECT_THAT(closed.err, HasSubstr("nosvc"));
}

TEST_F(ServiceTest, HookSkipRules) {
    ChildProcess proc(spawnSleeper(0));
    CommandResult optOut = hook("create", ociState("optout", proc.pid(), bundle_.path(), "creating",
                                                   {{"org.rdtmon.monitoring", "false"}}));
    EXPECT_EQ(optOut.exitCode, 0);
    EXPECT_THAT(optOut.err, HasSubstr("optout"));
    EXPECT_FALSE(isDir(groupDir("optout")));

    TempDir native("rdtmon-bundle");
    std::ofstream(native.file("config.json"))
        << R"({"ociVersion":"1.2.0","linux":{"intelRdt":{"enableMonitoring":true}}})";
    CommandResult nat = hook("create", ociState("native", proc.pid(), native.path()));
    EXPECT_EQ(nat.exitCode, 0);
    EXPECT_THAT(nat.err, HasSubstr("native"));
    EXPECT_FALSE(isDir(groupDir("native")));
    RdtmonClient client(bus_.address());
    EXPECT_TRUE(client.listGroups().empty());
}

TEST_F(ServiceTest, DeleteOfAnUnknownGroupIsSuccess) {
    CommandResult d = hook("delete", ociState("unknown", std::nullopt, bundle_.path(), "stopped"));
    EXPECT_EQ(d.exitCode, 0);
    EXPECT_EQ(d.err, "");
}

TEST_F(ServiceTest, MutatingCallsAsNobodyAreDeniedByThePolicyReadsWork) {
    ChildProcess proc(spawnSleeper(0));
    CommandOptions nobody{.uid = 65534};
    CommandResult c =
        runCommand(bus_.busctl({"call", "org.rdtmon1", "/org/rdtmon1", "org.rdtmon1.Manager",
                                "CreateGroup", "su", "x", std::to_string(proc.pid())}),
                   nobody);
    EXPECT_NE(c.exitCode, 0);
    EXPECT_THAT(c.err, HasSubstr("Access denied"));
    EXPECT_FALSE(isDir(groupDir("x")));
    for (const char* m : {"RemoveGroup", "GarbageCollect"}) {
        std::vector<std::string> args = {"call", "org.rdtmon1", "/org/rdtmon1",
                                         "org.rdtmon1.Manager", m};
        if (std::string(m) == "RemoveGroup") {
            args.insert(args.end(), {"s", "x"});
        }
        CommandResult r = runCommand(bus_.busctl(args), nobody);
        EXPECT_NE(r.exitCode, 0) << m;
        EXPECT_THAT(r.err, HasSubstr("Access denied")) << m;
    }
    // dbus-daemon refused them: none of the calls reached the service.
    EXPECT_THAT(daemon_.log(), Not(HasSubstr("refused")));
    for (const char* m : {"CreateGroup", "RemoveGroup", "GarbageCollect"}) {
        EXPECT_THAT(bus_.log(), HasSubstr("Rejected send message"));
        EXPECT_THAT(bus_.log(), HasSubstr(std::string("member=\"") + m + "\"")) << m;
    }
    CommandResult ls = runCommand(
        bus_.busctl({"call", "org.rdtmon1", "/org/rdtmon1", "org.rdtmon1.Manager", "ListGroups"}),
        nobody);
    EXPECT_EQ(ls.exitCode, 0) << ls.err;
    EXPECT_EQ(ls.out, "a(ssuto) 0\n");
    CommandResult rt = runCommand(bus_.busctl({"call", "org.rdtmon1", "/org/rdtmon1",
                                               "org.rdtmon1.Manager", "ListRuntimeGroups"}),
                                  nobody);
    EXPECT_EQ(rt.exitCode, 0) << rt.err;
    EXPECT_EQ(rt.out, "a(ssuta{ss}) 0\n");
    CommandResult props = runCommand(bus_.busctl({"get-property", "org.rdtmon1", "/org/rdtmon1",
                                                  "org.rdtmon1.Manager", "Supported"}),
                                     nobody);
    EXPECT_EQ(props.out, "b true\n") << props.err;
    CommandResult intro =
        runCommand(bus_.busctl({"introspect", "org.rdtmon1", "/org/rdtmon1"}), nobody);
    EXPECT_EQ(intro.exitCode, 0) << intro.err;
    EXPECT_THAT(intro.out, HasSubstr("CreateGroup"));
}

TEST(ServiceAccess, TheCodeRefusesNonRootEvenWhenThePolicyLetsItThrough) {
    EmulatorMount emu;
    PrivateBus bus(PrivateBus::Policy::Permissive);
    Rdtmond daemon(bus, Rdtmond::Options{.resctrl = emu.path()});
    ChildProcess proc(spawnSleeper(0));
    CommandOptions nobody{.uid = 65534};
    CommandResult c =
        runCommand(bus.busctl({"call", "org.rdtmon1", "/org/rdtmon1", "org.rdtmon1.Manager",
                               "CreateGroup", "su", "x", std::to_string(proc.pid())}),
                   nobody);
    EXPECT_NE(c.exitCode, 0);
    EXPECT_THAT(c.err, HasSubstr("Access denied"));
    // The call got through the bus and the service itself refused it.
    EXPECT_THAT(daemon.log(), HasSubstr("CreateGroup refused"));
    EXPECT_THAT(daemon.log(), HasSubstr("(uid 65534) is not root"));
    EXPECT_FALSE(isDir(emu.path() + "/mon_groups/x"));
    CommandResult g = runCommand(bus.busctl({"call", "org.rdtmon1", "/org/rdtmon1",
                                             "org.rdtmon1.Manager", "GarbageCollect"}),
                                 nobody);
    EXPECT_THAT(g.err, HasSubstr("Access denied"));
    EXPECT_THAT(daemon.log(), HasSubstr("GarbageCollect refused"));
    // And root gets through the same bus.
    CommandResult ok =
        runCommand(bus.busctl({"call", "org.rdtmon1", "/org/rdtmon1", "org.rdtmon1.Manager",
                               "CreateGroup", "su", "x", std::to_string(proc.pid())}));
    EXPECT_EQ(ok.exitCode, 0) << ok.err;
    EXPECT_TRUE(isDir(emu.path() + "/mon_groups/x"));
    EXPECT_THAT(daemon.log(), HasSubstr("is not root"));
}

TEST(ServiceSupport, NoResctrlMeansSupportedFalseAndNotSupported) {
    TempDir notResctrl("not-resctrl");
    PrivateBus bus;
    Rdtmond daemon(bus, Rdtmond::Options{.resctrl = notResctrl.path()});
    RdtmonClient client(bus.address());
    EXPECT_FALSE(client.property<bool>("Supported"));
    ChildProcess proc(spawnSleeper(0));
    CallResult r = client.createGroup("c1", static_cast<uint32_t>(proc.pid()));
    EXPECT_EQ(r.error, "org.rdtmon1.Error.NotSupported") << r.message;
    EXPECT_TRUE(treeOf(notResctrl.path()).empty());
}

TEST_F(ServiceTest, FiftyHooksInParallelAllSucceed) {
    constexpr int kN = 50;
    std::vector<std::unique_ptr<ChildProcess>> procs;
    for (int i = 0; i < kN; ++i) {
        procs.push_back(std::make_unique<ChildProcess>(spawnSleeper(i % 3)));
    }
    std::vector<CommandResult> results(kN);
    std::vector<std::thread> threads;
    for (int i = 0; i < kN; ++i) {
        threads.emplace_back([&, i] {
            results[static_cast<size_t>(i)] =
                hook("create",
                     ociState("par-" + std::to_string(i), procs[static_cast<size_t>(i)]->pid(),
                              bundle_.path()),
                     {"--fail-closed"});
        });
    }
    for (std::thread& t : threads) {
        t.join();
    }
    for (int i = 0; i < kN; ++i) {
        const std::string id = "par-" + std::to_string(i);
        EXPECT_EQ(results[static_cast<size_t>(i)].exitCode, 0)
            << id << ": " << results[static_cast<size_t>(i)].err;
        std::set<pid_t> tasks = tasksOf(groupDir(id));
        for (pid_t t : threadsOf(procs[static_cast<size_t>(i)]->pid())) {
            EXPECT_TRUE(tasks.count(t)) << id << " thread " << t;
        }
    }
    RdtmonClient client(bus_.address());
    EXPECT_EQ(client.listGroups().size(), static_cast<size_t>(kN));
    EXPECT_EQ(client.property<uint32_t>("GroupCount"), static_cast<uint32_t>(kN));
}

TEST_F(ServiceTest, SigtermStopsCleanlyAndGroupsStayAndComeBackOwned) {
    ChildProcess proc(spawnSleeper(0));
    ASSERT_EQ(hook("create", ociState("keep", proc.pid(), bundle_.path())).exitCode, 0);
    daemon_.stop();
    EXPECT_EQ(daemon_.lastExitStatus(), 0) << daemon_.log();
    EXPECT_TRUE(isDir(groupDir("keep"))) << "groups belong to running containers";
    daemon_.start();
    RdtmonClient client(bus_.address());
    auto rows = client.listGroups();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(std::get<0>(rows[0]), "keep");
    EXPECT_TRUE(client.removeGroup("keep").ok());
    EXPECT_FALSE(isDir(groupDir("keep")));
}

TEST_F(ServiceTest, CountersLeaveOutWordsWithoutFailing) {
    ChildProcess proc(spawnSleeper(0));
    RdtmonClient client(bus_.address());
    ASSERT_TRUE(client.createGroup("cnt", static_cast<uint32_t>(proc.pid())).ok());
    emu_.control("counter mon_groups/cnt llc_occupancy Unavailable");
    emu_.control("counter mon_groups/cnt mbm_local_bytes Unassigned");
    CountersMap m;
    CallResult r = client.getCounters("cnt", &m);
    ASSERT_TRUE(r.ok()) << r.error << ": " << r.message;
    ASSERT_EQ(m.size(), 2u);
    for (auto& [dom, events] : m) {
        EXPECT_EQ(events.count("llc_occupancy"), 0u) << dom;
        EXPECT_EQ(events.count("mbm_local_bytes"), 0u) << dom;
        EXPECT_EQ(events.count("mbm_total_bytes"), 1u) << dom;
    }
}

TEST_F(ServiceTest, AGroupRemovedBehindTheServiceIsDroppedAsVanished) {
    ChildProcess proc(spawnSleeper(0));
    RdtmonClient client(bus_.address());
    SignalRecorder signals(bus_.address());
    ASSERT_TRUE(client.createGroup("gone", static_cast<uint32_t>(proc.pid())).ok());
    ASSERT_EQ(::rmdir(groupDir("gone").c_str()), 0);
    EXPECT_TRUE(client.removeGroup("gone").ok());
    EXPECT_EQ(signals.waitFor("GroupRemoved", "gone"), std::optional<std::string>("vanished"));
    EXPECT_TRUE(client.listGroups().empty());
}

} // namespace

// The unit's ExecStartPre=+rdtmond --mount-only honours resctrl.mount: with mounting off
// (the key, or --no-mount) it only looks, and leaves an unmounted resctrl unmounted.
TEST(RdtmondCommandLine, MountOnlyNeverMountsWhenMountingIsOff) {
    TempDir dir("rdtmon-mount-only");
    const std::string target = dir.file("resctrl");
    ASSERT_EQ(::mkdir(target.c_str(), 0755), 0);
    writeFile(dir.file("off.json"), R"({"resctrl":{"mount":false}})");
    writeFile(dir.file("on.json"), R"({"resctrl":{"mount":true}})");
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"--config", dir.file("off.json")},
          std::vector<std::string>{"--config", dir.file("on.json"), "--no-mount"}}) {
        std::vector<std::string> argv = {RDTMOND_BIN, "--mount-only", "--resctrl", target};
        argv.insert(argv.end(), args.begin(), args.end());
        const CommandResult r = runCommand(argv);
        EXPECT_EQ(r.exitCode, 0) << r.err;
        EXPECT_EQ(r.err, "<5>resctrl not mounted: " + target +
                             " is not a resctrl mount (no info/) and mounting is off\n");
        EXPECT_EQ(readFile("/proc/self/mountinfo").find(" " + target + " "), std::string::npos);
    }
}

TEST(RdtmondCommandLine, VersionHelpAndBadArguments) {
    const CommandResult version = runCommand({RDTMOND_BIN, "--version"});
    EXPECT_EQ(version.exitCode, 0);
    EXPECT_THAT(version.out, ::testing::StartsWith("rdtmond "));
    const CommandResult help = runCommand({RDTMOND_BIN, "--help"});
    EXPECT_EQ(help.exitCode, 0);
    EXPECT_THAT(help.out, ::testing::HasSubstr("--mount-only"));
    const CommandResult bad = runCommand({RDTMOND_BIN, "--no-such-option"});
    EXPECT_EQ(bad.exitCode, 2);
    EXPECT_THAT(bad.err, ::testing::HasSubstr("--no-such-option"));
    EXPECT_EQ(runCommand({RDTMOND_BIN, "--config"}).exitCode, 2);
}

// openat2 refused with EPERM (a seccomp filter written before it, older systemd's
// SystemCallFilter=) or ENOSYS (a kernel before 5.6): rdtmond probes once and opens
// component by component with openat, and every create still works.
TEST(RdtmondSyscalls, OpenatTwoRefusedMeansOpenatNotFailure) {
    EmulatorMount emu;
    PrivateBus bus;
    for (int err : {EPERM, ENOSYS}) {
        SCOPED_TRACE(err);
        Rdtmond d(
            bus, Rdtmond::Options{.resctrl = emu.path(),
                                  .prefix = {WITHOUT_SYSCALL_BIN, "openat2", std::to_string(err)}});
        RdtmonClient c(bus.address());
        ChildProcess p(spawnSleeper(1));
        const CallResult r = c.createGroup("c1", static_cast<uint32_t>(p.pid()));
        ASSERT_TRUE(r.ok()) << r.error << ": " << r.message << "\n" << d.log();
        const std::vector<pid_t> threads = threadsOf(p.pid());
        EXPECT_EQ(tasksOf(emu.path() + "/mon_groups/c1"),
                  std::set<pid_t>(threads.begin(), threads.end()));
        EXPECT_TRUE(c.removeGroup("c1").ok());
        EXPECT_FALSE(isDir(emu.path() + "/mon_groups/c1"));
    }
}
