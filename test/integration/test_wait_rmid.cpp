// Waiting for an RMID end to end: rdtmond and rdtmon-hook on a private bus with the
// emulator. Containers that arrive when no RMID is free wait (AddContainer says so, their
// objects say State "waiting"), get their groups in arrival order when RMIDs free (a
// removal, or limbo clearing), survive a SIGKILL of the service, and are dropped when they
// go away. Every test ends with no leaked group and no leaked record.

#include "EmulatorMount.h"
#include "PrivateBus.h"
#include "Proc.h"
#include "RdtmonClient.h"
#include "RdtmondProcess.h"
#include "Subprocess.h"
#include "TempDir.h"
#include "TestUtil.h"

#include <chrono>
#include <fcntl.h>
#include <fstream>
#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sdbus-c++/sdbus-c++.h>
#include <set>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <thread>
#include <unistd.h>

using namespace rdtmon::test;
using ::testing::HasSubstr;
using ::testing::Not;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

constexpr const char* kManager = "org.rdtmon1.Manager";
constexpr const char* kGroup = "org.rdtmon1.Group";

std::string objectPath(const std::string& id) {
    char* out = nullptr;
    if (sd_bus_path_encode("/org/rdtmon1/group", id.c_str(), &out) < 0) {
        throw std::runtime_error("sd_bus_path_encode failed");
    }
    std::string p(out);
    std::free(out);
    return p;
}

// The records in the state files: id -> waiting.
std::map<std::string, bool> records(const std::string& stateDir) {
    std::map<std::string, bool> out;
    for (const auto& [id, g] : recordedGroups(stateDir)) {
        out[id] = g.value("waiting", false);
    }
    return out;
}

// rdtmond's CPU time so far (utime + stime), in clock ticks.
long cpuTicks(pid_t pid) {
    std::string stat = readFile(concat("/proc/", pid, "/stat"));
    std::istringstream in(stat.substr(stat.rfind(')') + 2));
    std::string f;
    long ticks = 0;
    for (int i = 3; i <= 15 && in >> f; ++i) {
        if (i == 14 || i == 15) {
            ticks += std::stol(f);
        }
    }
    return ticks;
}

// Calls of the Manager the support client does not have, and the group objects' State
// with its PropertiesChanged.
class WaitClient {
public:
    struct Added {
        CallResult result;
        std::string path;
        std::string state;
    };
    explicit WaitClient(const std::string& address)
        : conn_(sdbus::createSessionBusConnectionWithAddress(address)),
          proxy_(sdbus::createProxy(*conn_, "org.rdtmon1", "/org/rdtmon1")) {
        conn_->setMethodCallTimeout(seconds(30));
    }

    Added addContainer(const std::string& id, pid_t pid,
                       const std::map<std::string, std::string>& labels = {}) {
        Added a;
        try {
            Pidfd fd(pid);
            sdbus::ObjectPath path;
            proxy_->callMethod("AddContainer")
                .onInterface(kManager)
                .withArguments(id, sdbus::UnixFd(fd.get()), labels)
                .storeResultsTo(path, a.state);
            a.path = path;
        } catch (const sdbus::Error& e) {
            a.result = {e.getName(), e.getMessage()};
        }
        return a;
    }
    // The State of the group object of id, or "" when there is no such object.
    std::string state(const std::string& id) {
        try {
            auto g = sdbus::createProxy(*conn_, "org.rdtmon1", objectPath(id));
            return g->getProperty("State").onInterface(kGroup).get<std::string>();
        } catch (const sdbus::Error&) {
            return "";
        }
    }
    std::string resctrlPath(const std::string& id) {
        auto g = sdbus::createProxy(*conn_, "org.rdtmon1", objectPath(id));
        return g->getProperty("ResctrlPath").onInterface(kGroup).get<std::string>();
    }
    // The object paths ObjectManager announces.
    std::set<std::string> managedObjects() {
        std::map<sdbus::ObjectPath, std::map<std::string, std::map<std::string, sdbus::Variant>>>
            objs;
        proxy_->callMethod("GetManagedObjects")
            .onInterface("org.freedesktop.DBus.ObjectManager")
            .storeResultsTo(objs);
        std::set<std::string> out;
        for (const auto& [p, ifaces] : objs) {
            out.insert(p);
        }
        return out;
    }
    uint32_t groupCount() {
        return proxy_->getProperty("GroupCount").onInterface(kManager).get<uint32_t>();
    }

private:
    std::unique_ptr<sdbus::IConnection> conn_;
    std::unique_ptr<sdbus::IProxy> proxy_;
};

// Every State change a group object announces: (object path, new state), in order.
class StateRecorder {
public:
    explicit StateRecorder(const std::string& address)
        : conn_(sdbus::createSessionBusConnectionWithAddress(address)) {
        slot_ = conn_->addMatch(
            "type='signal',sender='org.rdtmon1',interface='org.freedesktop.DBus.Properties',"
            "member='PropertiesChanged'",
            [this](sdbus::Message& msg) {
                std::string iface;
                std::map<std::string, sdbus::Variant> changed;
                msg >> iface >> changed;
                auto it = changed.find("State");
                if (iface == kGroup && it != changed.end()) {
                    std::lock_guard lk(mu_);
                    seen_.emplace_back(msg.getPath(), it->second.get<std::string>());
                }
            });
        conn_->enterEventLoopAsync();
    }
    ~StateRecorder() {
        slot_.reset();
        conn_->leaveEventLoop();
    }
    std::vector<std::pair<std::string, std::string>> seen() const {
        std::lock_guard lk(mu_);
        return seen_;
    }

private:
    std::unique_ptr<sdbus::IConnection> conn_;
    sdbus::Slot slot_;
    mutable std::mutex mu_;
    std::vector<std::pair<std::string, std::string>> seen_;
};

// 9 RMIDs: the default group holds one, 8 are left for MON groups.
class WaitRmidTest : public ::testing::Test {
protected:
    explicit WaitRmidTest(unsigned limboMs = 0)
        : emu_(EmulatorOptions{.numRmids = 9, .limboMs = limboMs}) {
        ::mkdir(runcRoot().c_str(), 0755);
        std::ofstream(bundle_.file("config.json")) << R"({"ociVersion":"1.0.2","linux":{}})";
    }

    std::string runcRoot() const { return roots_.file("runc"); }
    std::string config(bool wait = true) const {
        return std::string(R"({"gc":{"intervalSeconds":3600,"graceSeconds":0},)") +
               R"("groups":{"waitForRmid":)" + (wait ? "true" : "false") +
               R"(},"containerSources":[{"stateDirs":[")" + runcRoot() + R"("]}]})";
    }
    // A runc-style state entry, so the collector sees the container as running.
    void runtimeLists(const std::string& id) {
        ::mkdir((runcRoot() + "/" + id).c_str(), 0700);
        std::ofstream(runcRoot() + "/" + id + "/state.json") << "{}";
    }
    std::string groupDir(const std::string& id) const { return emu_.path() + "/mon_groups/" + id; }
    std::set<pid_t> threads(pid_t pid) const {
        std::vector<pid_t> t = threadsOf(pid);
        return {t.begin(), t.end()};
    }
    CommandResult hookCreate(const std::string& id, pid_t pid,
                             std::vector<std::string> extra = {}) {
        nlohmann::json st = {
            {"ociVersion", "1.0.2"},    {"id", id},   {"status", "creating"},
            {"bundle", bundle_.path()}, {"pid", pid}, {"annotations", nlohmann::json::object()}};
        std::vector<std::string> argv = {RDTMON_HOOK_BIN, "create"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return runCommand(argv, CommandOptions{.stdinText = st.dump(), .env = {bus_.envEntry()}});
    }
    // Nothing leaked: the groups on disk are exactly the active records, and every record
    // is one of `active` or `waiting`.
    void expectOnly(const Rdtmond& d, const std::set<std::string>& active,
                    const std::set<std::string>& waiting = {}) {
        EXPECT_EQ(entries(emu_.path() + "/mon_groups"), active);
        std::map<std::string, bool> want;
        for (const std::string& id : active) {
            want[id] = false;
        }
        for (const std::string& id : waiting) {
            want[id] = true;
        }
        EXPECT_EQ(records(d.stateDir()), want) << stateFilesText(d.stateDir());
    }

    TempDir roots_{"rdtmon-roots"};
    TempDir bundle_{"rdtmon-bundle"};
    EmulatorMount emu_;
    PrivateBus bus_;
};

TEST_F(WaitRmidTest, TwelveContainersEightGroupsFourWaitAndRemovalsGrantThemInOrder) {
    Rdtmond d(bus_, {.resctrl = emu_.path(), .configJson = config()});
    RdtmonClient c(bus_.address());
    WaitClient w(bus_.address());
    SignalRecorder sig(bus_.address());
    StateRecorder states(bus_.address());
    const Sleepers inits(12, 3);
    std::vector<std::string> ids;
    for (int i = 0; i < 12; ++i) {
        ids.push_back(concat("c", i < 10 ? "0" : "", i));
        runtimeLists(ids.back());
    }
    for (int i = 0; i < 11; ++i) {
        WaitClient::Added a = w.addContainer(ids[i], inits.pid(i), {{"pod", ids[i]}});
        ASSERT_TRUE(a.result.ok()) << ids[i] << ": " << a.result.error << a.result.message;
        EXPECT_EQ(a.path, objectPath(ids[i]));
        EXPECT_EQ(a.state, i < 8 ? "active" : "waiting") << ids[i];
    }
    // The twelfth through the hook: one line naming the container, exit 0.
    CommandResult h = hookCreate(ids[11], inits.pid(11));
    EXPECT_EQ(h.exitCode, 0);
    EXPECT_THAT(h.err, HasSubstr("container " + ids[11] + ": waits for an RMID"));
    EXPECT_THAT(h.err, HasSubstr("monitored when one frees"));
    EXPECT_EQ(std::count(h.err.begin(), h.err.end(), '\n'), 1) << h.err;
    // Waiting is not a failure: --fail-closed lets the container start too.
    CommandResult again = hookCreate(ids[11], inits.pid(11), {"--fail-closed"});
    EXPECT_EQ(again.exitCode, 0) << again.err;
    EXPECT_THAT(again.err, HasSubstr("container " + ids[11] + ": waits for an RMID"));

    const std::vector<std::string> waiting(ids.begin() + 8, ids.end());
    for (const std::string& id : waiting) {
        EXPECT_EQ(w.state(id), "waiting") << id;
        EXPECT_EQ(w.resctrlPath(id), "") << id;
        EXPECT_FALSE(isDir(groupDir(id))) << id;
        EXPECT_EQ(c.getCounters(id).error, "org.rdtmon1.Error.NoSuchGroup");
    }
    EXPECT_EQ(w.state(ids[0]), "active");
    EXPECT_EQ(c.listGroups().size(), 8u) << "ListGroups lists only groups that exist";
    EXPECT_EQ(w.groupCount(), 8u);
    EXPECT_EQ(w.managedObjects().size(), 12u) << "waiting containers are objects too";
    // CreateContainerGroup keeps its reply: the same path, also for a waiting container.
    {
        Pidfd fd(inits.pid(9));
        sdbus::ObjectPath p;
        CallResult r = c.createContainerGroup(ids[9], fd.get(), {}, &p);
        EXPECT_TRUE(r.ok()) << r.error << r.message;
        EXPECT_EQ(std::string(p), objectPath(ids[9]));
        EXPECT_EQ(w.state(ids[9]), "waiting");
    }
    expectOnly(d, {ids.begin(), ids.begin() + 8}, {waiting.begin(), waiting.end()});

    const auto t0 = Clock::now();
    for (int i = 0; i < 4; ++i) {
        CallResult r = c.removeGroup(ids[i]);
        ASSERT_TRUE(r.ok()) << r.error << r.message;
    }
    EXPECT_TRUE(waitUntil(
        [&] {
            return std::all_of(waiting.begin(), waiting.end(),
                               [&](const std::string& id) { return isDir(groupDir(id)); });
        },
        scaledDeadline(milliseconds(2000))))
        << "the 4 waiting did not all get groups within 2 s";
    EXPECT_LT(Clock::now() - t0, scaledDeadline(milliseconds(2000)));
    ASSERT_TRUE(waitUntil([&] { return states.seen().size() >= 4; }, seconds(5)));

    std::vector<std::string> createdOrder;
    for (const SignalRecorder::Event& e : sig.events()) {
        if (e.signal == "GroupCreated" &&
            std::find(waiting.begin(), waiting.end(), e.id) != waiting.end()) {
            createdOrder.push_back(e.id);
        }
    }
    EXPECT_EQ(createdOrder, waiting) << "GroupCreated in arrival order";
    std::vector<std::pair<std::string, std::string>> wantStates;
    for (const std::string& id : waiting) {
        wantStates.emplace_back(objectPath(id), "active");
    }
    EXPECT_EQ(states.seen(), wantStates);
    for (std::size_t i = 0; i < waiting.size(); ++i) {
        EXPECT_EQ(w.state(waiting[i]), "active");
        EXPECT_EQ(w.resctrlPath(waiting[i]), groupDir(waiting[i]));
        EXPECT_EQ(tasksOf(groupDir(waiting[i])), threads(inits.pid(8 + i))) << waiting[i];
        if (i < 3) { // the last came through the hook, without pod annotations
            EXPECT_EQ(c.labelsOf(waiting[i]),
                      (std::map<std::string, std::string>{{"pod", waiting[i]}}));
        }
    }
    EXPECT_EQ(c.listGroups().size(), 8u);

    for (int i = 4; i < 12; ++i) {
        EXPECT_TRUE(c.removeGroup(ids[i]).ok()) << ids[i];
    }
    expectOnly(d, {});
    EXPECT_TRUE(w.managedObjects().empty());
}

class WaitRmidLimboTest : public WaitRmidTest {
protected:
    WaitRmidLimboTest() : WaitRmidTest(1500) {}
};

TEST_F(WaitRmidLimboTest, LimboIsBusyThenTheGroupComesAfterTheDelayWithoutABusyLoop) {
    Rdtmond d(bus_, {.resctrl = emu_.path(), .configJson = config()});
    RdtmonClient c(bus_.address());
    WaitClient w(bus_.address());
    SignalRecorder sig(bus_.address());
    const Sleepers inits(9, 1);
    for (int i = 0; i < 8; ++i) {
        ASSERT_EQ(w.addContainer(concat("a", i), inits.pid(i)).state, "active") << i;
    }
    const auto t0 = Clock::now();
    ASSERT_TRUE(c.removeGroup("a0").ok());
    // Its RMID is in limbo: a create now meets EBUSY, and waits.
    WaitClient::Added late = w.addContainer("late", inits.pid(8));
    ASSERT_TRUE(late.result.ok()) << late.result.error << late.result.message;
    EXPECT_EQ(late.state, "waiting");
    EXPECT_THAT(d.log(), HasSubstr("container late: waits for an RMID"));
    const long cpu0 = cpuTicks(d.pid());

    ASSERT_TRUE(sig.waitFor("GroupCreated", "late", scaledDeadline(milliseconds(8000))));
    // The RMID left limbo 1.5 s after the rmdir, which came after t0: never earlier.
    EXPECT_GE(Clock::now() - t0, milliseconds(1400));
    EXPECT_EQ(tasksOf(groupDir("late")), threads(inits.pid(8)));
    // A busy loop would burn the whole wait; the backoff costs a few mkdirs.
    const long cpuMs = (cpuTicks(d.pid()) - cpu0) * 1000 / sysconf(_SC_CLK_TCK);
    EXPECT_LT(cpuMs, 300 * kSlowdown) << "rdtmond used " << cpuMs << " ms of CPU waiting on limbo";
    EXPECT_EQ(w.state("late"), "active");

    for (int i = 1; i < 8; ++i) {
        EXPECT_TRUE(c.removeGroup(concat("a", i)).ok());
    }
    EXPECT_TRUE(c.removeGroup("late").ok());
    expectOnly(d, {});
}

TEST_F(WaitRmidTest, AKillNineAndRestartKeepsTheWaitingWaitingAndTheyGetGroupsLater) {
    Rdtmond d(bus_, {.resctrl = emu_.path(), .configJson = config()});
    WaitClient w(bus_.address());
    const Sleepers inits(10, 2);
    for (int i = 0; i < 10; ++i) {
        runtimeLists(concat("k", i));
        ASSERT_EQ(w.addContainer(concat("k", i), inits.pid(i)).state, i < 8 ? "active" : "waiting")
            << i;
    }
    d.kill9();
    d.start();
    RdtmonClient c(bus_.address());
    SignalRecorder sig(bus_.address());
    EXPECT_EQ(w.state("k8"), "waiting");
    EXPECT_EQ(w.state("k9"), "waiting");
    EXPECT_EQ(w.groupCount(), 8u);
    expectOnly(d, {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"}, {"k8", "k9"});
    uint32_t removed = 99;
    ASSERT_TRUE(c.garbageCollect(&removed).ok());
    EXPECT_EQ(removed, 0u) << "the runtime lists them: nothing to collect";

    ASSERT_TRUE(c.removeGroup("k0").ok());
    ASSERT_TRUE(sig.waitFor("GroupCreated", "k8", scaledDeadline(milliseconds(2000))));
    EXPECT_EQ(w.state("k9"), "waiting");
    ASSERT_TRUE(c.removeGroup("k1").ok());
    ASSERT_TRUE(sig.waitFor("GroupCreated", "k9", scaledDeadline(milliseconds(2000))));
    EXPECT_EQ(tasksOf(groupDir("k8")), threads(inits.pid(8)));
    EXPECT_EQ(tasksOf(groupDir("k9")), threads(inits.pid(9)));
    for (int i = 2; i < 10; ++i) {
        EXPECT_TRUE(c.removeGroup(concat("k", i)).ok());
    }
    expectOnly(d, {});
}

TEST_F(WaitRmidTest, AWaitingContainerThatGoesAwayIsDropped) {
    Rdtmond d(bus_, {.resctrl = emu_.path(), .configJson = config()});
    RdtmonClient c(bus_.address());
    WaitClient w(bus_.address());
    SignalRecorder sig(bus_.address());
    const Sleepers inits(11);
    for (int i = 0; i < 8; ++i) {
        runtimeLists(concat("g", i));
        ASSERT_EQ(w.addContainer(concat("g", i), inits.pid(i)).state, "active");
    }
    runtimeLists("listed");
    ASSERT_EQ(w.addContainer("listed", inits.pid(8)).state, "waiting");
    ASSERT_EQ(w.addContainer("poststop", inits.pid(9)).state, "waiting");
    ASSERT_EQ(w.addContainer("unlisted", inits.pid(10)).state, "waiting");

    // poststop: RemoveGroup of a waiting container succeeds and drops it.
    CallResult r = c.removeGroup("poststop");
    EXPECT_TRUE(r.ok()) << r.error << r.message;
    EXPECT_EQ(sig.waitFor("GroupRemoved", "poststop"), std::optional<std::string>("requested"));
    EXPECT_TRUE(waitUntil([&] { return w.state("poststop").empty(); }, seconds(5)))
        << "its object is gone";
    EXPECT_EQ(c.removeGroup("poststop").error, "org.rdtmon1.Error.NoSuchGroup");
    // The collector: no runtime lists it.
    uint32_t removed = 99;
    ASSERT_TRUE(c.garbageCollect(&removed).ok());
    EXPECT_EQ(removed, 1u);
    EXPECT_EQ(sig.waitFor("GroupRemoved", "unlisted"), std::optional<std::string>("stale"));
    EXPECT_TRUE(waitUntil([&] { return w.state("unlisted").empty(); }, seconds(5)))
        << "its object is gone";
    expectOnly(d, {"g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7"}, {"listed"});

    // The one left gets the next RMID, not the dropped ones.
    ASSERT_TRUE(c.removeGroup("g0").ok());
    ASSERT_TRUE(sig.waitFor("GroupCreated", "listed", scaledDeadline(milliseconds(2000))));
    for (int i = 1; i < 8; ++i) {
        EXPECT_TRUE(c.removeGroup(concat("g", i)).ok());
    }
    EXPECT_TRUE(c.removeGroup("listed").ok());
    expectOnly(d, {});
    for (const SignalRecorder::Event& e : sig.events()) {
        EXPECT_FALSE(e.signal == "GroupCreated" && (e.id == "poststop" || e.id == "unlisted"));
    }
}

TEST_F(WaitRmidLimboTest, SwitchedOffTodaysErrorsStay) {
    Rdtmond d(bus_, {.resctrl = emu_.path(), .configJson = config(false)});
    RdtmonClient c(bus_.address());
    WaitClient w(bus_.address());
    const Sleepers inits(9);
    for (int i = 0; i < 8; ++i) {
        ASSERT_EQ(w.addContainer(concat("s", i), inits.pid(i)).state, "active");
    }
    WaitClient::Added full = w.addContainer("x", inits.pid(8));
    EXPECT_EQ(full.result.error, "org.rdtmon1.Error.OutOfRmids") << full.result.message;
    EXPECT_EQ(c.createGroup("x", inits.upid(8)).error, "org.rdtmon1.Error.OutOfRmids");
    CommandResult h = hookCreate("x", inits.pid(8));
    EXPECT_EQ(h.exitCode, 0);
    EXPECT_THAT(h.err, HasSubstr("create failed (fail-open): org.rdtmon1.Error.OutOfRmids"));
    ASSERT_TRUE(c.removeGroup("s0").ok()); // into limbo
    WaitClient::Added busy = w.addContainer("x", inits.pid(8));
    EXPECT_EQ(busy.result.error, "org.rdtmon1.Error.Busy") << busy.result.message;
    EXPECT_EQ(w.state("x"), "");
    for (int i = 1; i < 8; ++i) {
        EXPECT_TRUE(c.removeGroup(concat("s", i)).ok());
    }
    expectOnly(d, {});
}

// AddContainer from a child running as nobody (busctl cannot send a file descriptor).
// Returns the D-Bus error name, "" on success.
std::string addContainerAsNobody(const std::string& address, pid_t pid) {
    return runAsNobody([&] {
        WaitClient client(address);
        return client.addContainer("x", pid).result.error;
    });
}

TEST_F(WaitRmidTest, OnlyRootMayAddAContainerThePolicyAndTheCodeSayNo) {
    {
        Rdtmond d(bus_, {.resctrl = emu_.path(), .configJson = config()});
        ChildProcess init(spawnSleeper());
        EXPECT_EQ(addContainerAsNobody(bus_.address(), init.pid()),
                  "org.freedesktop.DBus.Error.AccessDenied");
        EXPECT_THAT(bus_.log(), HasSubstr("member=\"AddContainer\""));
        EXPECT_THAT(d.log(), Not(HasSubstr("refused")));
    }
    PrivateBus open(PrivateBus::Policy::Permissive);
    Rdtmond d(open, {.resctrl = emu_.path(), .configJson = config()});
    ChildProcess init(spawnSleeper());
    EXPECT_EQ(addContainerAsNobody(open.address(), init.pid()),
              "org.freedesktop.DBus.Error.AccessDenied");
    EXPECT_THAT(d.log(), HasSubstr("AddContainer refused"));
    expectOnly(d, {});
}

} // namespace
