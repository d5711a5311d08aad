// The runtimes' state files as rdtmond reads them to adopt a container (host/RuntimeState.h),
// and the adopt switch of the configuration.

#include "Config.h"
#include "Errors.h"
#include "RuntimeState.h"
#include "TempDir.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

using namespace rdtmon;
using namespace rdtmon::test;

namespace {

namespace fs = std::filesystem;

// Trimmed from a runc 1.1 state.json on a hybrid cgroup host.
const char* kRunc = R"({"id":"t1","init_process_pid":17142,"init_process_start":3603929,
  "created":"2026-12-05T02:30:35.642423364Z",
  "cgroup_paths":{"":"/sys/fs/cgroup/unified/t1","pids":"/sys/fs/cgroup/pids/t1"},
  "intel_rdt_path":"",
  "config":{"labels":["io.kubernetes.cri.container-name=web",
    "io.kubernetes.cri.sandbox-name=pod1","bundle=/tmp/bx"],"intel_rdt":null}})";

// crun's status and the config.json copy beside it.
const char* kCrunStatus = R"({"pid":139179,"process-start-time":263473330,
  "cgroup-path":"/busybox1","scope":"","rootfs":"rootfs","systemd-cgroup":false,
  "bundle":"/home/u/b","created":"2021-08-29T14:34:52.000293421Z","owner":"root"})";
const char* kCrunConfig = R"({"ociVersion":"1.0.0","annotations":{
  "io.kubernetes.pod.name":"pod2","io.kubernetes.container.name":"db"},
  "linux":{"intelRdt":{"closID":"gold"}}})";

ErrorKind kindOf(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.kind();
    }
    return ErrorKind::Failed;
}

TEST(RuntimeState, RuncStateGivesPidStartCgroupBundleAndAnnotations) {
    RuntimeContainer c = parseRuncState(kRunc, "t1");
    EXPECT_EQ(c.runtime, "runc");
    EXPECT_EQ(c.pid, 17142u);
    EXPECT_EQ(c.startTime, 3603929u);
    EXPECT_EQ(c.cgroupDirs,
              (std::vector<std::string>{"/sys/fs/cgroup/unified/t1", "/sys/fs/cgroup/pids/t1"}));
    EXPECT_EQ(c.bundle, "/tmp/bx");
    EXPECT_EQ(c.annotations.size(), 2u) << "bundle= is runc's, not an annotation";
    EXPECT_EQ(c.annotations.at("io.kubernetes.cri.container-name"), "web");
    EXPECT_FALSE(c.monitoredByRuntime);
    EXPECT_EQ(notAdoptableReason(c), std::nullopt);
    EXPECT_EQ(runtimeLabels(c), (Labels{{"container", "web"}, {"pod", "pod1"}}));
}

TEST(RuntimeState, RuncMonitoringItselfIsNotAdoptable) {
    std::string s = kRunc;
    s.replace(s.find("\"intel_rdt\":null"), 16,
              R"("intel_rdt":{"closID":"","enableMonitoring":true})");
    RuntimeContainer c = parseRuncState(s, "t1");
    EXPECT_TRUE(c.monitoredByRuntime);
    ASSERT_TRUE(notAdoptableReason(c));
    EXPECT_NE(notAdoptableReason(c)->find("monitored by its runtime"), std::string::npos);
}

TEST(RuntimeState, CrunStatusAndConfigGiveTheSame) {
    RuntimeContainer c = parseCrunStatus(kCrunStatus, kCrunConfig, "b1");
    EXPECT_EQ(c.runtime, "crun");
    EXPECT_EQ(c.pid, 139179u);
    EXPECT_EQ(c.startTime, 263473330u);
    EXPECT_EQ(c.cgroupPath, "/busybox1");
    EXPECT_TRUE(c.cgroupDirs.empty());
    EXPECT_EQ(c.bundle, "/home/u/b");
    EXPECT_EQ(runtimeLabels(c), (Labels{{"container", "db"}, {"pod", "pod2"}}));
    EXPECT_FALSE(c.monitoredByRuntime) << "a closID alone is not monitoring";
    RuntimeContainer m =
        parseCrunStatus(kCrunStatus, R"({"linux":{"intelRdt":{"enableMonitoring":true}}})", "b1");
    EXPECT_TRUE(m.monitoredByRuntime);
}

TEST(RuntimeState, SandboxesOptedOutAndCgrouplessAreNotAdoptable) {
    RuntimeContainer c = parseRuncState(kRunc, "t1");
    c.annotations["io.kubernetes.cri.container-type"] = "sandbox";
    EXPECT_NE(notAdoptableReason(c)->find("sandbox"), std::string::npos);
    c = parseRuncState(kRunc, "t1");
    c.annotations["io.kubernetes.cri-o.ContainerType"] = "sandbox";
    EXPECT_NE(notAdoptableReason(c)->find("sandbox"), std::string::npos);
    c = parseRuncState(kRunc, "t1");
    c.annotations["org.rdtmon.monitoring"] = "false";
    EXPECT_NE(notAdoptableReason(c)->find("org.rdtmon.monitoring"), std::string::npos);
    c = parseRuncState(kRunc, "t1");
    c.cgroupDirs.clear();
    EXPECT_NE(notAdoptableReason(c)->find("no cgroup"), std::string::npos);
    RuntimeContainer r = parseCrunStatus(kCrunStatus, kCrunConfig, "b1");
    r.cgroupPath = "/";
    EXPECT_TRUE(notAdoptableReason(r).has_value()) << "the root cgroup is nobody's own";
}

TEST(RuntimeState, BadFilesAreRefusedWithTheProblemNamed) {
    for (const char* bad : {
             "",
             "[]",
             "{",
             R"({"init_process_start":5,"config":{}})",
             R"({"init_process_pid":0,"init_process_start":5,"config":{}})",
             R"({"init_process_pid":-3,"init_process_start":5,"config":{}})",
             R"({"init_process_pid":"7","init_process_start":5,"config":{}})",
             R"({"init_process_pid":4294967295,"init_process_start":5,"config":{}})",
             R"({"init_process_pid":7,"config":{}})",
             R"({"init_process_pid":7,"init_process_start":5})",
             R"({"init_process_pid":7,"init_process_start":5,"config":{"labels":"x"}})",
             R"({"init_process_pid":7,"init_process_start":5,"config":{"labels":[1]}})",
             R"({"init_process_pid":7,"init_process_start":5,"config":{"labels":["novalue"]}})",
             R"({"init_process_pid":7,"init_process_start":5,"config":{"labels":["=v"]}})",
         }) {
        EXPECT_EQ(kindOf([&] { parseRuncState(bad, "t1"); }), ErrorKind::InvalidArgument) << bad;
    }
    EXPECT_EQ(kindOf([] { parseRuncState(kRunc, "../x"); }), ErrorKind::InvalidArgument);
    std::string deep(200, '[');
    EXPECT_EQ(kindOf([&] { parseRuncState(deep, "t1"); }), ErrorKind::InvalidArgument);
    EXPECT_EQ(kindOf([] { parseCrunStatus(R"({"pid":5})", "{}", "b1"); }),
              ErrorKind::InvalidArgument);
    EXPECT_EQ(kindOf([] { parseCrunStatus(kCrunStatus, R"({"annotations":{"a":1}})", "b1"); }),
              ErrorKind::InvalidArgument);
    EXPECT_EQ(kindOf([] { parseCrunStatus(kCrunStatus, "[]", "b1"); }), ErrorKind::InvalidArgument);
    // An escaped quote inside a string does not end it: the brackets after it are text.
    std::string s = kRunc;
    s.replace(s.find("=web\""), 5, "=w\\\"[[[[\"");
    EXPECT_EQ(parseRuncState(s, "t1").annotations.at("io.kubernetes.cri.container-name"),
              "w\"[[[[");
}

TEST(RuntimeState, ALabelBreakingTheRulesNamesItsAnnotation) {
    RuntimeContainer c = parseRuncState(kRunc, "t1");
    c.annotations["io.kubernetes.cri.sandbox-name"] = std::string(300, 'x');
    try {
        runtimeLabels(c);
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("io.kubernetes.cri.sandbox-name"), std::string::npos);
    }
}

TEST(RuntimeState, ReadsRuncThenCrunFilesAndSaysWhyNot) {
    TempDir root("rdtmon-rtstate");
    fs::create_directories(root.path() + "/t1");
    std::ofstream(root.path() + "/t1/state.json") << kRunc;
    fs::create_directories(root.path() + "/b1");
    std::ofstream(root.path() + "/b1/status") << kCrunStatus;
    std::ofstream(root.path() + "/b1/config.json") << kCrunConfig;
    fs::create_directories(root.path() + "/new");
    fs::create_directories(root.path() + "/link");
    fs::create_symlink(root.path() + "/t1/state.json", root.path() + "/link/state.json");
    fs::create_directories(root.path() + "/bad");
    std::ofstream(root.path() + "/bad/state.json") << "{";

    std::string why;
    std::optional<RuntimeContainer> t1 = readRuntimeContainer(root.path(), "t1", why);
    ASSERT_TRUE(t1) << why;
    EXPECT_EQ(t1->runtime, "runc");
    std::optional<RuntimeContainer> b1 = readRuntimeContainer(root.path(), "b1", why);
    ASSERT_TRUE(b1) << why;
    EXPECT_EQ(b1->runtime, "crun");
    EXPECT_FALSE(readRuntimeContainer(root.path(), "new", why));
    EXPECT_NE(why.find("no state file yet"), std::string::npos) << why;
    EXPECT_FALSE(readRuntimeContainer(root.path(), "link", why)) << "followed a symlink";
    EXPECT_FALSE(readRuntimeContainer(root.path(), "bad", why));
    EXPECT_NE(why.find("not valid JSON"), std::string::npos) << why;
    EXPECT_FALSE(readRuntimeContainer(root.path(), "gone", why));
}

TEST(RuntimeState, AdoptIsOnForStateDirsAndImpossibleForACommand) {
    EXPECT_TRUE(
        parseConfig(R"({"containerSources":[{"stateDirs":["/run/runc"]}]})").sources.at(0).adopt);
    EXPECT_FALSE(parseConfig(R"({"containerSources":[{"stateDirs":["/run/runc"],"adopt":false}]})")
                     .sources.at(0)
                     .adopt);
    EXPECT_FALSE(parseConfig(R"({"containerSources":[{"command":["crictl","ps","-q"]}]})")
                     .sources.at(0)
                     .adopt);
    EXPECT_TRUE(Config{}.sources.at(0).adopt);
    try {
        parseConfig(R"({"containerSources":[{"command":["crictl"],"adopt":true}]})");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
        EXPECT_NE(std::string(e.what()).find("containerSources[0].adopt"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("stateDirs"), std::string::npos) << e.what();
    }
    EXPECT_EQ(
        kindOf([] { parseConfig(R"({"containerSources":[{"stateDirs":["/r"],"adopt":"yes"}]})"); }),
        ErrorKind::InvalidArgument);
}

} // namespace
