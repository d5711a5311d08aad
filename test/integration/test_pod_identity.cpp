// Pod identity and the pidfd handoff, with the real rdtmond on a private bus and the
// emulator: CreateContainerGroup takes the container's init as a pidfd, keeps the labels
// with the ownership record (through a restart) and shows them as the group's Labels; a
// process that exits before or while its threads move leaves no group and no record.

#include "DaemonOnEmulator.h"
#include "EmulatorMount.h"
#include "FakeManager.h"
#include "PrivateBus.h"
#include "Proc.h"
#include "RdtmonClient.h"
#include "RdtmondProcess.h"
#include "Subprocess.h"
#include "TempDir.h"
#include "TestUtil.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <future>
#include <grp.h>
#include <map>
#include <mutex>
#include <poll.h>
#include <set>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace rdtmon::test;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

using LabelMap = std::map<std::string, std::string>;

const LabelMap kPodLabels = {{"pod", "web-7d9f"},
                             {"namespace", "shop"},
                             {"container", "nginx"},
                             {"pod_uid", "3f1c2a9e-0b1d-4c7e-9a55-1d2e3f4a5b6c"}};

// Whether the process of a pidfd has exited, as the service sees it: the pidfd polls
// readable only once every thread of the process is gone. (Its leader shows as a zombie in
// /proc earlier, while the other threads are still exiting.)
bool pidfdSaysExited(int pidfd) {
    pollfd p{pidfd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

class PodIdentity : public ::testing::Test, protected DaemonOnEmulator {
protected:
    PodIdentity() : DaemonOnEmulator(EmulatorOptions{.numRmids = 32}) {}

    std::string groupDir(const std::string& id) { return emu_.path() + "/mon_groups/" + id; }
    std::set<std::string> groupsOnDisk() { return entries(emu_.path() + "/mon_groups"); }
    // The records in the state files: id -> record as JSON.
    std::map<std::string, nlohmann::json> records() { return recordedGroups(daemon_.stateDir()); }
    // Waits until the emulator holds a tasks write (the service is inside its move).
    bool waitForHeldWrite() {
        for (int i = 0; i < 2000; ++i) {
            if (emu_.control("tasks-write-held") == "1") {
                return true;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        return false;
    }
};

TEST_F(PodIdentity, APidfdMakesTheGroupWithItsLabelsAndTheyOutliveARestart) {
    ChildProcess init(spawnSleeper(2));
    Pidfd pidfd(init.pid());
    RdtmonClient client(bus_.address());
    SignalRecorder signals(bus_.address());
    sdbus::ObjectPath path;
    CallResult r = client.createContainerGroup("web-1", pidfd.get(), kPodLabels, &path);
    ASSERT_TRUE(r.ok()) << r.error << ": " << r.message;
    EXPECT_EQ(path, "/org/rdtmon1/group/web_2d1");
    EXPECT_TRUE(signals.waitFor("GroupCreated", "web-1"));
    const std::vector<pid_t> threads = threadsOf(init.pid());
    EXPECT_EQ(tasksOf(groupDir("web-1")), std::set<pid_t>(threads.begin(), threads.end()));
    EXPECT_EQ(client.labelsOf("web-1"), kPodLabels);
    // The pid the service learnt from the pidfd is the group's Pid.
    ASSERT_EQ(client.listGroups().size(), 1u);
    EXPECT_EQ(std::get<2>(client.listGroups()[0]), static_cast<uint32_t>(init.pid()));
    // busctl shows them too.
    CommandResult prop =
        runCommand(bus_.busctl({"--json=short", "get-property", "org.rdtmon1",
                                "/org/rdtmon1/group/web_2d1", "org.rdtmon1.Group", "Labels"}));
    ASSERT_EQ(prop.exitCode, 0) << prop.err;
    EXPECT_EQ(nlohmann::json::parse(prop.out)["data"], nlohmann::json(kPodLabels));
    EXPECT_THAT(daemon_.log(), HasSubstr("container web-1: created group"));
    EXPECT_THAT(daemon_.log(), HasSubstr("pod=web-7d9f"));

    // Idempotent: the same answer, the labels those the group was made with.
    CallResult again = client.createContainerGroup("web-1", pidfd.get(), {{"pod", "other"}});
    EXPECT_TRUE(again.ok()) << again.error << ": " << again.message;
    EXPECT_EQ(client.labelsOf("web-1"), kPodLabels);

    // The labels are in the ownership record: a SIGKILLed and restarted service has them.
    EXPECT_EQ(records().at("web-1")["labels"], nlohmann::json(kPodLabels));
    daemon_.kill9();
    daemon_.start();
    RdtmonClient after(bus_.address());
    EXPECT_EQ(after.labelsOf("web-1"), kPodLabels);
    EXPECT_TRUE(isDir(groupDir("web-1")));
    EXPECT_TRUE(after.removeGroup("web-1").ok());
}

TEST_F(PodIdentity, CreateGroupStaysAndMakesAGroupWithoutLabels) {
    ChildProcess init(spawnSleeper());
    RdtmonClient client(bus_.address());
    ASSERT_TRUE(client.createGroup("old-1", static_cast<uint32_t>(init.pid())).ok());
    EXPECT_TRUE(client.labelsOf("old-1").empty());
    EXPECT_FALSE(records().at("old-1").contains("labels"));
}

TEST_F(PodIdentity, AnExitedProcessIsNoSuchProcessAndNothingIsMade) {
    RdtmonClient client(bus_.address());
    const auto before = groupsOnDisk();
    {
        // Exited and reaped: fdinfo says Pid -1.
        ChildProcess gone(spawnSleeper());
        Pidfd pidfd(gone.pid());
        gone.reset();
        CallResult r = client.createContainerGroup("gone", pidfd.get(), kPodLabels);
        EXPECT_EQ(r.error, "org.rdtmon1.Error.NoSuchProcess") << r.message;
        EXPECT_THAT(r.message, HasSubstr("exited"));
    }
    {
        // Exited, not yet reaped.
        Zombie zombie;
        Pidfd pidfd(zombie.pid());
        CallResult r = client.createContainerGroup("zombie", pidfd.get(), kPodLabels);
        EXPECT_EQ(r.error, "org.rdtmon1.Error.NoSuchProcess") << r.message;
    }
    EXPECT_EQ(groupsOnDisk(), before);
    EXPECT_TRUE(records().empty());
    EXPECT_TRUE(client.listGroups().empty());
}

// The process dies between the service learning its pid and the reply: while the service
// writes its threads into the group (the emulator holds the second write), the test kills
// it. As a zombie its last thread still takes the move, and only the pidfd, polled after
// the move, tells that it is dead; reaped, the move itself finds it gone. Either way the
// group is undone and the answer is NoSuchProcess: no group, no record, no GroupCreated.
TEST_F(PodIdentity, AProcessKilledWhileItsThreadsMoveLeavesNoGroupAndNoRecord) {
    RdtmonClient client(bus_.address());
    SignalRecorder signals(bus_.address());
    for (bool reap : {false, true}) {
        SCOPED_TRACE(reap ? "killed and reaped" : "killed, a zombie");
        const std::string id = reap ? "killed-reaped" : "killed-zombie";
        ChildProcess init(spawnSleeper(1)); // two threads: two tasks writes
        Pidfd pidfd(init.pid());
        emu_.control("hold-tasks-write-after 1");
        auto call = std::async(std::launch::async, [&] {
            RdtmonClient c(bus_.address());
            return c.createContainerGroup(id, pidfd.get(), kPodLabels);
        });
        ASSERT_TRUE(waitForHeldWrite()) << daemon_.log();
        ASSERT_EQ(::kill(init.pid(), SIGKILL), 0);
        if (reap) {
            init.reset();
        } else {
            // Dead (a zombie, not reaped): wait until the pidfd polls readable, which is what
            // the service checks after the move.
            const auto deadline =
                std::chrono::steady_clock::now() + scaledDeadline(std::chrono::seconds(10));
            while (!pidfdSaysExited(pidfd.get()) && std::chrono::steady_clock::now() < deadline) {
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
            }
            ASSERT_TRUE(pidfdSaysExited(pidfd.get())) << "the killed process never exited";
        }
        emu_.control("release-tasks-write");
        CallResult r = call.get();
        EXPECT_EQ(r.error, "org.rdtmon1.Error.NoSuchProcess") << r.message;
        if (!reap) {
            // Every thread still listed was moved: only the pidfd tells that it is dead.
            EXPECT_THAT(r.message, HasSubstr("exited while its threads were being moved"));
        }
        EXPECT_FALSE(isDir(groupDir(id)));
        EXPECT_EQ(records().count(id), 0u);
        EXPECT_TRUE(client.listGroups().empty());
        EXPECT_THAT(daemon_.log(), HasSubstr("container " + id + ": CreateContainerGroup failed"));
    }
    // The service is fine and no GroupCreated was sent for either.
    ChildProcess next(spawnSleeper());
    Pidfd pidfd(next.pid());
    ASSERT_TRUE(client.createContainerGroup("next", pidfd.get(), kPodLabels).ok());
    ASSERT_TRUE(signals.waitFor("GroupCreated", "next"));
    for (const auto& e : signals.events()) {
        EXPECT_EQ(e.id, "next") << e.signal;
    }
}

// CreateContainerGroup(id, pidfd of pid) from a child running as nobody (busctl cannot
// send a file descriptor). Returns the D-Bus error name, "" on success.
std::string createContainerGroupAsNobody(const std::string& address, pid_t pid) {
    return runAsNobody([&] {
        Pidfd pidfd(pid);
        RdtmonClient client(address);
        return client.createContainerGroup("x", pidfd.get(), {{"pod", "p"}}).error;
    });
}

TEST_F(PodIdentity, OnlyRootMayCallIt) {
    ChildProcess init(spawnSleeper());
    EXPECT_EQ(createContainerGroupAsNobody(bus_.address(), init.pid()),
              "org.freedesktop.DBus.Error.AccessDenied");
    // The policy refused it: the call never reached the service.
    EXPECT_THAT(bus_.log(), HasSubstr("member=\"CreateContainerGroup\""));
    EXPECT_THAT(daemon_.log(), Not(HasSubstr("refused")));
    EXPECT_FALSE(isDir(groupDir("x")));
}

TEST(PodIdentityAccess, TheCodeRefusesNonRootEvenWhenThePolicyLetsItThrough) {
    EmulatorMount emu;
    PrivateBus bus(PrivateBus::Policy::Permissive);
    Rdtmond daemon(bus, Rdtmond::Options{.resctrl = emu.path()});
    ChildProcess init(spawnSleeper());
    EXPECT_EQ(createContainerGroupAsNobody(bus.address(), init.pid()),
              "org.freedesktop.DBus.Error.AccessDenied");
    EXPECT_THAT(daemon.log(), HasSubstr("CreateContainerGroup refused"));
    EXPECT_FALSE(isDir(emu.path() + "/mon_groups/x"));
}

// ------------------------------------------------------------------- the hook

std::string ociState(const std::string& id, pid_t pid, const std::string& bundle,
                     const nlohmann::json& annotations) {
    return nlohmann::json{{"ociVersion", "1.0.2"}, {"id", id},
                          {"status", "creating"},  {"pid", pid},
                          {"bundle", bundle},      {"annotations", annotations}}
        .dump();
}

const nlohmann::json kContainerdAnnotations = {
    {"io.kubernetes.cri.container-type", "container"},
    {"io.kubernetes.cri.sandbox-name", "web-7d9f"},
    {"io.kubernetes.cri.sandbox-namespace", "shop"},
    {"io.kubernetes.cri.container-name", "nginx"},
    {"io.kubernetes.cri.sandbox-uid", "3f1c2a9e-0b1d-4c7e-9a55-1d2e3f4a5b6c"}};
const nlohmann::json kCrioAnnotations = {
    {"io.kubernetes.cri-o.ContainerType", "container"},
    {"io.kubernetes.pod.name", "web-7d9f"},
    {"io.kubernetes.pod.namespace", "shop"},
    {"io.kubernetes.container.name", "nginx"},
    {"io.kubernetes.pod.uid", "3f1c2a9e-0b1d-4c7e-9a55-1d2e3f4a5b6c"}};

class HookPodIdentity : public PodIdentity {
protected:
    HookPodIdentity() { writeFile(bundle_.file("config.json"), R"({"ociVersion":"1.0.2"})"); }
    CommandResult hook(const std::string& action, const std::string& state,
                       std::vector<std::string> prefix = {}) {
        std::vector<std::string> argv = std::move(prefix);
        argv.insert(argv.end(), {RDTMON_HOOK_BIN, action});
        return runCommand(argv, CommandOptions{.stdinText = state, .env = {bus_.envEntry()}});
    }
    TempDir bundle_{"rdtmon-bundle"};
};

TEST_F(HookPodIdentity, ContainerdAndCrioAnnotationsBecomeTheGroupsLabels) {
    RdtmonClient client(bus_.address());
    ChildProcess a(spawnSleeper(1)), b(spawnSleeper(1));
    CommandResult r =
        hook("create", ociState("ctrd-1", a.pid(), bundle_.path(), kContainerdAnnotations));
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(r.err, "");
    r = hook("create", ociState("crio-1", b.pid(), bundle_.path(), kCrioAnnotations));
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(client.labelsOf("ctrd-1"), kPodLabels);
    EXPECT_EQ(client.labelsOf("crio-1"), kPodLabels);
    const std::vector<pid_t> threads = threadsOf(a.pid());
    EXPECT_EQ(tasksOf(groupDir("ctrd-1")), std::set<pid_t>(threads.begin(), threads.end()));
    // The hook used the pidfd call (CreateGroup makes no labels), and the labels outlive a
    // SIGKILL of the service.
    EXPECT_THAT(daemon_.log(), Not(HasSubstr("CreateGroup failed")));
    daemon_.kill9();
    daemon_.start();
    RdtmonClient after(bus_.address());
    EXPECT_EQ(after.labelsOf("ctrd-1"), kPodLabels);
    EXPECT_EQ(after.labelsOf("crio-1"), kPodLabels);
    // A container outside Kubernetes gets its group, without labels.
    ChildProcess c(spawnSleeper());
    r = hook("create", ociState("plain-1", c.pid(), bundle_.path(), nlohmann::json::object()));
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_TRUE(after.labelsOf("plain-1").empty());
    // poststop comes after the containers' end.
    a.reset();
    b.reset();
    c.reset();
    for (const char* id : {"ctrd-1", "crio-1", "plain-1"}) {
        r = hook("delete", nlohmann::json{{"id", id}, {"status", "stopped"}}.dump());
        EXPECT_EQ(r.exitCode, 0) << r.err;
        // The delete hook sends the removal without waiting for it.
        EXPECT_TRUE(waitUntil([&] { return !isDir(groupDir(id)); }, std::chrono::seconds(5)));
    }
}

TEST_F(HookPodIdentity, ABadLabelAnnotationIsInvalidArgumentAndNothingIsMade) {
    ChildProcess a(spawnSleeper());
    nlohmann::json ann = kCrioAnnotations;
    ann["io.kubernetes.pod.name"] = std::string(300, 'p');
    for (const char* mode : {"", "--fail-closed"}) {
        CommandResult r = runCommand(
            *mode ? std::vector<std::string>{RDTMON_HOOK_BIN, "create", mode}
                  : std::vector<std::string>{RDTMON_HOOK_BIN, "create"},
            CommandOptions{.stdinText = ociState("bad-label", a.pid(), bundle_.path(), ann),
                           .env = {bus_.envEntry()}});
        EXPECT_EQ(r.exitCode, *mode ? 1 : 0);
        EXPECT_THAT(r.err, HasSubstr("container bad-label: create failed"));
        EXPECT_THAT(r.err, HasSubstr("org.rdtmon1.Error.InvalidArgument: annotation "
                                     "io.kubernetes.pod.name (label pod)"));
    }
    EXPECT_FALSE(isDir(groupDir("bad-label")));
    EXPECT_TRUE(records().empty());
}

// Without a pidfd the hook names the process by its pid and start time (AddContainerByPid),
// which the service checks; the labels come along as with AddContainer.
TEST_F(HookPodIdentity, AKernelWithoutPidfdOpenGetsAddContainerByPid) {
    RdtmonClient client(bus_.address());
    // ENOSYS: a kernel before 5.3; EPERM: a seccomp filter that does not know the call.
    for (int err : {ENOSYS, EPERM}) {
        SCOPED_TRACE(err);
        const std::string id = concat("nopidfd-", err);
        ChildProcess init(spawnSleeper(1));
        CommandResult r = hook("create", ociState(id, init.pid(), bundle_.path(), kCrioAnnotations),
                               {WITHOUT_SYSCALL_BIN, "pidfd_open", std::to_string(err)});
        ASSERT_EQ(r.exitCode, 0) << r.err;
        EXPECT_EQ(r.err, "");
        const std::vector<pid_t> threads = threadsOf(init.pid());
        EXPECT_EQ(tasksOf(groupDir(id)), std::set<pid_t>(threads.begin(), threads.end()));
        EXPECT_EQ(client.labelsOf(id), kPodLabels);
    }
    // Any other pidfd_open failure is the hook's failure line, and nothing is made.
    ChildProcess init(spawnSleeper());
    CommandResult r =
        hook("create", ociState("nopidfd-emfile", init.pid(), bundle_.path(), kCrioAnnotations),
             {WITHOUT_SYSCALL_BIN, "pidfd_open", std::to_string(EMFILE)});
    EXPECT_EQ(r.exitCode, 0);
    EXPECT_THAT(r.err, HasSubstr("container nopidfd-emfile: create failed (fail-open): "));
    EXPECT_THAT(r.err, HasSubstr("pidfd_open"));
    EXPECT_FALSE(isDir(groupDir("nopidfd-emfile")));
}

// ------------------------------------------------- the hook and an older rdtmond

// The hook against a stand-in for an older rdtmond that offers only some methods: it falls
// back to the newest create method the service has, once, and succeeds.
class HookFallback : public ::testing::Test {
protected:
    HookFallback() : old_(bus_.address()) { writeFile(bundle_.file("config.json"), "{}"); }

    CommandResult hook(const std::string& action, const std::string& stdinText) {
        return runCommand({RDTMON_HOOK_BIN, action, "--fail-closed"},
                          CommandOptions{.stdinText = stdinText, .env = {bus_.envEntry()}});
    }

    PrivateBus bus_;
    FakeManager old_;
    TempDir bundle_{"rdtmon-bundle"};
    ChildProcess init_{spawnSleeper()};
};

// As rdtmond was before CreateContainerGroup: it would need a bare pid number, which may
// name another process (another pid namespace, a reused pid). The hook does not send one.
TEST_F(HookFallback, AServiceWithoutAPidfdMethodIsRefusedNotSentAPidNumber) {
    old_.offerCreateGroup();
    old_.offerRemoveGroup();
    old_.serve();
    CommandResult r =
        hook("create", ociState("old-svc", init_.pid(), bundle_.path(), kCrioAnnotations));
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_THAT(r.err, HasSubstr("container old-svc: create failed (fail-closed): "
                                 "org.rdtmon1.Error.NotSupported"));
    EXPECT_THAT(r.err, HasSubstr("upgrade"));
    r = hook("delete", R"({"id":"old-svc","status":"stopped"})");
    EXPECT_EQ(r.exitCode, 0) << r.err;
    EXPECT_TRUE(waitUntil([&] { return old_.calls().size() == 1; }, std::chrono::seconds(5)));
    EXPECT_EQ(old_.calls(), std::vector<std::string>{"RemoveGroup old-svc"});
}

// As rdtmond was before AddContainer.
TEST_F(HookFallback, AServiceWithoutAddContainerGetsCreateContainerGroupOnce) {
    old_.offerCreateContainerGroup();
    old_.offerCreateGroup();
    old_.serve();
    nlohmann::json st = {{"ociVersion", "1.0.2"},
                         {"id", "older"},
                         {"status", "creating"},
                         {"bundle", bundle_.path()},
                         {"pid", init_.pid()}};
    CommandResult r = hook("create", st.dump());
    EXPECT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(old_.calls(), std::vector<std::string>{"CreateContainerGroup older"});
}

} // namespace
