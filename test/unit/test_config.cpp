#include "Config.h"
#include "Errors.h"

#include "TempDir.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace rdtmon::test {
namespace {

namespace fs = std::filesystem;

// parseConfig(text) must fail with InvalidArgument and a message starting with `prefix`.
void expectInvalid(const std::string& text, const std::string& prefix) {
    SCOPED_TRACE(text);
    std::string msg = expectError(ErrorKind::InvalidArgument, [&] { parseConfig(text); });
    EXPECT_EQ(msg.rfind(prefix, 0), 0u) << "message: " << msg << "\nexpected prefix: " << prefix;
}

void expectDefaultSources(const std::vector<SourceConfig>& s) {
    ASSERT_EQ(s.size(), 1u);
    EXPECT_EQ(s[0].stateDirs,
              (std::vector<std::string>{"/run/containerd/runc/*", "/run/runc", "/run/crun"}));
    EXPECT_TRUE(s[0].command.empty());
}

TEST(Config, EmptyObjectGivesDefaults) {
    Config c = parseConfig("{}");
    EXPECT_EQ(c.resctrlPath, "/sys/fs/resctrl");
    EXPECT_FALSE(c.resctrlPathExplicit);
    EXPECT_TRUE(c.mount);
    EXPECT_EQ(c.mountOptions, "");
    EXPECT_EQ(c.gcInterval, std::chrono::seconds(60));
    EXPECT_EQ(c.gcGrace, std::chrono::seconds(30));
    EXPECT_TRUE(c.waitForRmid);
    expectDefaultSources(c.sources);
    expectDefaultSources(Config::defaultSources());
    expectDefaultSources(Config{}.sources);
}

TEST(Config, EveryKey) {
    Config c = parseConfig(R"({
      "resctrl": { "path": "/tmp/emu", "mount": false, "mountOptions": "cdp,mba_MBps" },
      "gc": { "intervalSeconds": 5, "graceSeconds": 0 },
      "containerSources": [
        { "stateDirs": ["/a/*", "/b"] },
        { "command": ["crictl", "ps", "-a", "-q"] },
        { "command": ["/usr/bin/list"], "timeoutSeconds": 2.5 }
      ]
    })");
    EXPECT_EQ(c.resctrlPath, "/tmp/emu");
    EXPECT_TRUE(c.resctrlPathExplicit);
    EXPECT_FALSE(c.mount);
    EXPECT_EQ(c.mountOptions, "cdp,mba_MBps");
    EXPECT_EQ(c.gcInterval, std::chrono::seconds(5));
    EXPECT_EQ(c.gcGrace, std::chrono::seconds(0));
    ASSERT_EQ(c.sources.size(), 3u);
    EXPECT_EQ(c.sources[0].stateDirs, (std::vector<std::string>{"/a/*", "/b"}));
    EXPECT_TRUE(c.sources[0].command.empty());
    EXPECT_EQ(c.sources[1].command, (std::vector<std::string>{"crictl", "ps", "-a", "-q"}));
    EXPECT_TRUE(c.sources[1].stateDirs.empty());
    EXPECT_EQ(c.sources[1].commandTimeout, std::chrono::milliseconds(10000)); // default
    EXPECT_EQ(c.sources[2].commandTimeout, std::chrono::milliseconds(2500));
}

TEST(Config, PartialSectionsKeepOtherDefaults) {
    Config c = parseConfig(R"({"resctrl":{"mount":false},"gc":{"graceSeconds":7}})");
    EXPECT_EQ(c.resctrlPath, "/sys/fs/resctrl");
    EXPECT_FALSE(c.resctrlPathExplicit);
    EXPECT_FALSE(c.mount);
    EXPECT_EQ(c.gcInterval, std::chrono::seconds(60));
    EXPECT_EQ(c.gcGrace, std::chrono::seconds(7));
    expectDefaultSources(c.sources);
}

TEST(Config, EmptySourceListIsAccepted) {
    EXPECT_TRUE(parseConfig(R"({"containerSources":[]})").sources.empty());
}

TEST(Config, InvalidJsonNamesThePosition) {
    std::string msg =
        expectError(ErrorKind::InvalidArgument, [] { parseConfig("{\n  \"gc\": {,\n}"); });
    EXPECT_NE(msg.find("line 2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("column"), std::string::npos) << msg;
    expectError(ErrorKind::InvalidArgument, [] { parseConfig(""); });
    expectError(ErrorKind::InvalidArgument, [] { parseConfig("{} trailing"); });
}

TEST(Config, TopLevelMustBeAnObject) {
    expectError(ErrorKind::InvalidArgument, [] { parseConfig("[]"); });
    expectError(ErrorKind::InvalidArgument, [] { parseConfig("null"); });
    expectError(ErrorKind::InvalidArgument, [] { parseConfig("\"x\""); });
}

TEST(Config, WrongTypesNameTheKey) {
    expectInvalid(R"({"resctrl": 1})", "resctrl: expected an object");
    expectInvalid(R"({"resctrl": {"path": 5}})", "resctrl.path: expected a string");
    expectInvalid(R"({"resctrl": {"path": "relative/x"}})", "resctrl.path: expected an absolute");
    expectInvalid(R"({"resctrl": {"path": ""}})", "resctrl.path: expected an absolute");
    expectInvalid(R"({"resctrl": {"mount": "yes"}})", "resctrl.mount: expected a boolean");
    expectInvalid(R"({"resctrl": {"mount": 1}})", "resctrl.mount: expected a boolean");
    expectInvalid(R"({"resctrl": {"mountOptions": ["cdp"]}})",
                  "resctrl.mountOptions: expected a string");
    expectInvalid(R"({"gc": []})", "gc: expected an object");
    expectInvalid(R"({"gc": {"intervalSeconds": 0}})",
                  "gc.intervalSeconds: expected a positive integer");
    expectInvalid(R"({"gc": {"intervalSeconds": -5}})",
                  "gc.intervalSeconds: expected a positive integer");
    expectInvalid(R"({"gc": {"intervalSeconds": 1.5}})",
                  "gc.intervalSeconds: expected a positive integer");
    expectInvalid(R"({"gc": {"intervalSeconds": "60"}})",
                  "gc.intervalSeconds: expected a positive integer");
    expectInvalid(R"({"gc": {"intervalSeconds": 99999999999999}})",
                  "gc.intervalSeconds: expected a positive integer");
    expectInvalid(R"({"gc": {"graceSeconds": -1}})",
                  "gc.graceSeconds: expected a non-negative integer");
    expectInvalid(R"({"gc": {"graceSeconds": true}})",
                  "gc.graceSeconds: expected a non-negative integer");
    expectInvalid(R"({"containerSources": {}})", "containerSources: expected an array");
    expectInvalid(R"({"containerSources": ["/run/runc"]})",
                  "containerSources[0]: expected an object");
    expectInvalid(R"({"containerSources": [{"stateDirs": "/run/runc"}]})",
                  "containerSources[0].stateDirs: expected an array of strings");
    expectInvalid(R"({"containerSources": [{"stateDirs": []}]})",
                  "containerSources[0].stateDirs: expected a non-empty array");
    expectInvalid(R"({"containerSources": [{"stateDirs": ["/a", 3]}]})",
                  "containerSources[0].stateDirs[1]: expected a string");
    expectInvalid(R"({"containerSources": [{"stateDirs": ["/a", "b/*"]}]})",
                  "containerSources[0].stateDirs[1]: expected an absolute path");
    expectInvalid(R"({"containerSources": [{"stateDirs": [""]}]})",
                  "containerSources[0].stateDirs[0]: expected an absolute path");
    expectInvalid(R"({"containerSources": [{"stateDirs": ["/a"]}, {"command": "crictl ps"}]})",
                  "containerSources[1].command: expected an array of strings");
    expectInvalid(R"({"containerSources": [{"command": []}]})",
                  "containerSources[0].command: expected a non-empty array");
    expectInvalid(R"({"containerSources": [{"command": ["crictl", 1]}]})",
                  "containerSources[0].command[1]: expected a string");
    expectInvalid(R"({"containerSources": [{"command": ["./list"]}]})",
                  "containerSources[0].command[0]: expected an absolute path or a program");
    expectInvalid(R"({"containerSources": [{"command": [""]}]})",
                  "containerSources[0].command[0]: expected an absolute path or a program");
    expectInvalid(R"({"containerSources": [{"command": ["a\u0000b"]}]})",
                  "containerSources[0].command[0]: must not contain a NUL");
    expectInvalid(R"({"containerSources": [{"command": ["x"], "timeoutSeconds": 0}]})",
                  "containerSources[0].timeoutSeconds: expected a positive number");
    expectInvalid(R"({"containerSources": [{"command": ["x"], "timeoutSeconds": -1}]})",
                  "containerSources[0].timeoutSeconds: expected a positive number");
    expectInvalid(R"({"containerSources": [{"command": ["x"], "timeoutSeconds": "5"}]})",
                  "containerSources[0].timeoutSeconds: expected a positive number");
    expectInvalid(R"({"containerSources": [{"stateDirs": ["/a"], "timeoutSeconds": 5}]})",
                  "containerSources[0].timeoutSeconds: only valid with command");
    expectInvalid(R"({"containerSources": [{"stateDirs": ["/a"], "command": ["x"]}]})",
                  "containerSources[0]: expected exactly one of stateDirs or command");
    expectInvalid(R"({"containerSources": [{}]})",
                  "containerSources[0]: expected exactly one of stateDirs or command");
}

TEST(Config, UnknownKeysAtEveryLevel) {
    expectInvalid(R"({"resctl": {}})", "resctl: unknown key");
    expectInvalid(R"({"resctrl": {"paht": "/x"}})", "resctrl.paht: unknown key");
    expectInvalid(R"({"gc": {"interval": 5}})", "gc.interval: unknown key");
    expectInvalid(R"({"containerSources": [{"stateDirs": ["/a"]}, {"comand": ["x"]}]})",
                  "containerSources[1].comand: unknown key");
}

TEST(Config, SmallTimeoutRoundsUpToOneMillisecond) {
    Config c = parseConfig(R"({"containerSources":[{"command":["x"],"timeoutSeconds":0.0001}]})");
    ASSERT_EQ(c.sources.size(), 1u);
    EXPECT_EQ(c.sources[0].commandTimeout, std::chrono::milliseconds(1));
}

TEST(Config, LoadMissingFileGivesDefaults) {
    TempDir t("rdtmon-config");
    Config c = loadConfig(t.file("nope.json"));
    EXPECT_FALSE(c.resctrlPathExplicit);
    EXPECT_EQ(c.gcInterval, std::chrono::seconds(60));
    expectDefaultSources(c.sources);
}

TEST(Config, LoadReadsTheFile) {
    TempDir t("rdtmon-config");
    writeFile(t.file("c.json"), R"({"gc":{"intervalSeconds":9}})");
    EXPECT_EQ(loadConfig(t.file("c.json")).gcInterval, std::chrono::seconds(9));
}

TEST(Config, LoadInvalidContentNamesFileAndKey) {
    TempDir t("rdtmon-config");
    writeFile(t.file("c.json"), R"({"gc":{"intervalSeconds":0}})");
    std::string msg =
        expectError(ErrorKind::InvalidArgument, [&] { loadConfig(t.file("c.json")); });
    EXPECT_NE(msg.find(t.file("c.json")), std::string::npos) << msg;
    EXPECT_NE(msg.find("gc.intervalSeconds"), std::string::npos) << msg;
}

TEST(Config, LoadUnreadableIsFailed) {
    TempDir t("rdtmon-config");
    // A directory at the path.
    std::string msg = expectError(ErrorKind::Failed, [&] { loadConfig(t.path()); });
    EXPECT_NE(msg.find(std::strerror(EISDIR)), std::string::npos) << msg;
    // A path through a regular file.
    writeFile(t.file("f"), "{}");
    msg = expectError(ErrorKind::Failed, [&] { loadConfig(t.file("f") + "/c.json"); });
    EXPECT_NE(msg.find(std::strerror(ENOTDIR)), std::string::npos) << msg;
}

TEST(Config, GroupsWaitForRmid) {
    EXPECT_FALSE(parseConfig(R"({"groups":{"waitForRmid":false}})").waitForRmid);
    EXPECT_TRUE(parseConfig(R"({"groups":{"waitForRmid":true}})").waitForRmid);
    EXPECT_TRUE(parseConfig(R"({"groups":{}})").waitForRmid);
    expectInvalid(R"({"groups":{"waitForRmid":1}})", "groups.waitForRmid: expected a boolean");
    expectInvalid(R"({"groups":{"waitForRmid":"false"}})",
                  "groups.waitForRmid: expected a boolean");
    expectInvalid(R"({"groups":{"waitForRmids":true}})", "groups.waitForRmids: unknown key");
    expectInvalid(R"({"groups":true})", "groups: expected an object");
}

TEST(Config, Counters) {
    const Config d = parseConfig("{}");
    EXPECT_TRUE(d.counters.events.empty()) << "every MBM event the node has";
    EXPECT_EQ(d.counters.cycle, std::chrono::seconds(50));
    EXPECT_TRUE(d.counters.pin.empty());
    EXPECT_EQ(d.counters.maxPinned, 0u);
    const Config c = parseConfig(
        R"({"counters":{"events":["mbm_total_bytes"],"cycleSeconds":30,
            "pin":[{"namespace":"db"},{"namespace":"web","container":"nginx"}],"maxPinned":4}})");
    EXPECT_EQ(c.counters.events, (std::vector<std::string>{"mbm_total_bytes"}));
    EXPECT_EQ(c.counters.cycle, std::chrono::seconds(30));
    ASSERT_EQ(c.counters.pin.size(), 2u);
    EXPECT_EQ(c.counters.pin[1].at("container"), "nginx");
    EXPECT_EQ(c.counters.maxPinned, 4u);
    expectInvalid(
        R"({"counters":{"events":["llc_occupancy"]}})",
        "counters.events: expected mbm_total_bytes or mbm_local_bytes, not llc_occupancy");
    expectInvalid(R"({"counters":{"events":[]}})",
                  "counters.events: expected a non-empty array of event names");
    expectInvalid(R"({"counters":{"cycleSeconds":0}})",
                  "counters.cycleSeconds: expected a positive integer");
    expectInvalid(R"({"counters":{"pin":[{}]}})",
                  "counters.pin: expected an array of objects of label names and values");
    expectInvalid(R"({"counters":{"pin":[{"namespace":1}]}})",
                  "counters.pin.namespace: expected a string");
    expectInvalid(R"({"counters":{"maxPinned":-1}})",
                  "counters.maxPinned: expected a non-negative integer");
    expectInvalid(R"({"counters":{"dwell":1}})", "counters.dwell: unknown key");
}

TEST(Config, LoadRejectsOversizedFile) {
    TempDir t("rdtmon-config");
    std::string big = "{\"gc\":{}" + std::string(1 << 20, ' ') + "}";
    writeFile(t.file("big.json"), big);
    std::string msg =
        expectError(ErrorKind::InvalidArgument, [&] { loadConfig(t.file("big.json")); });
    EXPECT_NE(msg.find("1 MiB"), std::string::npos) << msg;
}

TEST(Config, ShippedExampleParses) {
    // The sample config in the tree must stay valid.
    std::string path = std::string(RDTMON_SOURCE_DIR) + "/service/rdtmond.json.example";
    ASSERT_TRUE(fs::exists(path)) << path;
    Config c = loadConfig(path);
    EXPECT_EQ(c.resctrlPath, "/sys/fs/resctrl");
    EXPECT_TRUE(c.mount);
    EXPECT_EQ(c.gcInterval, std::chrono::seconds(60));
    EXPECT_EQ(c.gcGrace, std::chrono::seconds(30));
    EXPECT_TRUE(c.waitForRmid);
    ASSERT_EQ(c.sources.size(), 2u);
    EXPECT_EQ(c.sources[0].stateDirs, Config::defaultSources()[0].stateDirs);
    EXPECT_EQ(c.sources[1].command, (std::vector<std::string>{"crictl", "ps", "-a", "-q"}));
}

} // namespace
} // namespace rdtmon::test
