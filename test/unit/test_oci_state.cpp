// Unit tests of the hook's bus-free half (hook/OciState.h) and of the configured hooks.d
// files.

#include "Errors.h"
#include "OciState.h"
#include "TempDir.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace rdtmon::test {
namespace {

namespace fs = std::filesystem;

void writeFile(const fs::path& p, const std::string& text) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f << text;
    ASSERT_TRUE(f.good()) << p;
}

// Runs fn and returns the Error it throws; fails the test if it throws nothing or
// something else.
Error errorFrom(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e;
    } catch (const std::exception& e) {
        ADD_FAILURE() << "threw a non-rdtmon exception: " << e.what();
        return Error(ErrorKind::Failed, "wrong exception type");
    }
    ADD_FAILURE() << "did not throw";
    return Error(ErrorKind::Failed, "no exception");
}

void expectInvalidState(const std::string& json, bool requirePid, const std::string& mention) {
    SCOPED_TRACE("state: " + json.substr(0, 120));
    Error e = errorFrom([&] { parseOciState(json, requirePid); });
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument) << e.what();
    EXPECT_NE(std::string(e.what()).find(mention), std::string::npos)
        << "message \"" << e.what() << "\" does not mention \"" << mention << "\"";
}

// ---------------------------------------------------------------- parseOciState

TEST(ParseOciState, RuncCreateRuntimeState) {
    OciState st =
        parseOciState(R"({"ociVersion":"1.0.2","id":"c0ffee-1","status":"creating","pid":4242,)"
                      R"("bundle":"/run/containerd/io.containerd.runtime.v2.task/k8s.io/c0ffee-1",)"
                      R"("annotations":{"io.kubernetes.cri.container-type":"container"}})",
                      true);
    EXPECT_EQ(st.ociVersion, "1.0.2");
    EXPECT_EQ(st.id, "c0ffee-1");
    EXPECT_EQ(st.status, "creating");
    ASSERT_TRUE(st.pid.has_value());
    EXPECT_EQ(*st.pid, 4242);
    EXPECT_EQ(st.bundle, "/run/containerd/io.containerd.runtime.v2.task/k8s.io/c0ffee-1");
    ASSERT_EQ(st.annotations.size(), 1u);
    EXPECT_EQ(st.annotations.at("io.kubernetes.cri.container-type"), "container");
}

TEST(ParseOciState, CrunCreatedStateWithoutAnnotations) {
    OciState st = parseOciState(
        R"({"ociVersion":"1.0.0","id":"abc_DEF.9","status":"created","pid":1,"bundle":"/b"})",
        true);
    EXPECT_EQ(st.id, "abc_DEF.9");
    EXPECT_EQ(st.status, "created");
    EXPECT_EQ(st.pid, std::optional<std::int32_t>(1));
    EXPECT_TRUE(st.annotations.empty());
}

TEST(ParseOciState, MaxPidAccepted) {
    OciState st = parseOciState(R"({"id":"a","pid":2147483647})", true);
    EXPECT_EQ(st.pid, std::optional<std::int32_t>(2147483647));
}

TEST(ParseOciState, PoststopWithoutPid) {
    OciState st = parseOciState(
        R"({"ociVersion":"1.0.2","id":"gone","status":"stopped","bundle":"/b","annotations":null})",
        false);
    EXPECT_EQ(st.id, "gone");
    EXPECT_EQ(st.status, "stopped");
    EXPECT_FALSE(st.pid.has_value());
    EXPECT_TRUE(st.annotations.empty());
}

TEST(ParseOciState, PoststopIgnoresZeroOrOddPid) {
    EXPECT_FALSE(parseOciState(R"({"id":"gone","status":"stopped","pid":0})", false).pid);
    EXPECT_FALSE(parseOciState(R"({"id":"gone","pid":"12"})", false).pid);
    EXPECT_EQ(parseOciState(R"({"id":"gone","pid":12})", false).pid,
              std::optional<std::int32_t>(12));
}

TEST(ParseOciState, CreateRequiresPid) {
    expectInvalidState(R"({"id":"a","status":"creating"})", true, "\"pid\" is missing");
}

TEST(ParseOciState, BadShapes) {
    expectInvalidState("", true, "not valid JSON");
    expectInvalidState("   ", false, "not valid JSON");
    expectInvalidState("id=abc pid=1", true, "not valid JSON");
    expectInvalidState(R"({"id":"a","pid":1)", true, "not valid JSON");
    expectInvalidState(R"({"id":"a","pid":1} trailing)", true, "not valid JSON");
    expectInvalidState(R"(["id","a"])", true, "is a JSON array");
    expectInvalidState(R"("a")", false, "is a JSON string");
    expectInvalidState("null", false, "is a JSON null");
    expectInvalidState(R"({"pid":1})", true, "has no \"id\"");
    expectInvalidState(R"({"id":null,"pid":1})", true, "\"id\" is a null");
    expectInvalidState(R"({"id":42,"pid":1})", true, "\"id\" is a number");
    expectInvalidState(R"({"id":"a","pid":1,"status":7})", true, "\"status\" is a number");
    expectInvalidState(R"({"id":"a","pid":1,"bundle":["/b"]})", true, "\"bundle\" is a array");
}

TEST(ParseOciState, BadPids) {
    expectInvalidState(R"({"id":"a","pid":"1"})", true, "\"pid\" is a string");
    expectInvalidState(R"({"id":"a","pid":-1})", true, "\"pid\" is -1");
    expectInvalidState(R"({"id":"a","pid":0})", true, "\"pid\" is 0");
    expectInvalidState(R"({"id":"a","pid":1.0})", true, "\"pid\" is a number");
    expectInvalidState(R"({"id":"a","pid":12.5})", true, "\"pid\" is a number");
    expectInvalidState(R"({"id":"a","pid":4294967295})", true, "\"pid\" is 4294967295");
    expectInvalidState(R"({"id":"a","pid":2147483648})", true, "\"pid\" is 2147483648");
    expectInvalidState(R"({"id":"a","pid":18446744073709551616})", true, "\"pid\"");
    expectInvalidState(R"({"id":"a","pid":null})", true, "\"pid\" is a null");
    expectInvalidState(R"({"id":"a","pid":true})", true, "\"pid\" is a boolean");
}

TEST(ParseOciState, BadAnnotations) {
    expectInvalidState(R"({"id":"a","pid":1,"annotations":["x"]})", true,
                       "\"annotations\" is a array");
    expectInvalidState(R"({"id":"a","pid":1,"annotations":"x"})", true,
                       "\"annotations\" is a string");
    expectInvalidState(R"({"id":"a","pid":1,"annotations":{"k":1}})", true,
                       "annotation \"k\" is a number");
    expectInvalidState(R"({"id":"a","pid":1,"annotations":{"k":{"x":"y"}}})", true,
                       "annotation \"k\" is a object");
    expectInvalidState(R"({"id":"a","annotations":{"org.rdtmon.monitoring":false}})", false,
                       "annotation \"org.rdtmon.monitoring\" is a boolean");
}

TEST(ParseOciState, DeepNestingIsRefusedWithoutCrashing) {
    expectInvalidState(std::string(100000, '['), true, "nests deeper than");
    std::string objects;
    for (int i = 0; i < 100000; ++i) {
        objects += R"({"a":)";
    }
    expectInvalidState(objects, true, "nests deeper than");
    // Brackets inside strings do not count as nesting.
    std::string id =
        R"({"id":"a","pid":1,"annotations":{"k":")" + std::string(1000, '[') + R"("}})";
    EXPECT_EQ(parseOciState(id, true).annotations.at("k"), std::string(1000, '['));
    // A modest legitimate depth is fine.
    std::string nested =
        R"({"id":"a","pid":1,"x":)" + std::string(32, '[') + std::string(32, ']') + "}";
    EXPECT_EQ(parseOciState(nested, true).id, "a");
}

TEST(ParseOciState, InvalidUtf8IsRefused) {
    expectInvalidState("{\"id\":\"a\xff\",\"pid\":1}", true, "not valid JSON");
    expectInvalidState("{\"id\":\"a\",\"pid\":1,\"annotations\":{\"k\":\"\xc3\x28\"}}", true,
                       "not valid JSON");
}

TEST(ParseOciState, InvalidIdsAreRefused) {
    expectInvalidState(R"({"id":"a\u0000b","pid":1})", true, "invalid container id");
    expectInvalidState(R"({"id":")" + std::string(1000, 'x') + R"(","pid":1})", true,
                       "1000 characters");
    expectInvalidState(R"({"id":"","pid":1})", true, "is empty");
    expectInvalidState(R"({"id":"..","pid":1})", true, "invalid container id");
    expectInvalidState(R"({"id":"../etc","pid":1})", true, "invalid container id");
    expectInvalidState(R"({"id":"a b","pid":1})", true, "invalid container id");
    expectInvalidState(R"({"id":"mon_groups","pid":1})", true, "reserved");
    // 128 characters is the longest valid id.
    EXPECT_EQ(parseOciState(R"({"id":")" + std::string(128, 'x') + R"(","pid":1})", true).id,
              std::string(128, 'x'));
}

TEST(PeekContainerId, FindsIdInRefusedStatesOnly) {
    EXPECT_EQ(peekContainerId(R"({"id":"abc","pid":"x"})"), "abc");
    EXPECT_EQ(peekContainerId("{\"id\":\"a\\nb\"}"), "a\\x0ab");
    EXPECT_EQ(peekContainerId(R"({"id":5})"), "");
    EXPECT_EQ(peekContainerId("not json"), "");
    EXPECT_EQ(peekContainerId(std::string(100000, '[')), "");
    EXPECT_EQ(peekContainerId(R"({"id":")" + std::string(1000, 'x') + "\"}").size(), 131u);
}

// ---------------------------------------------------------------- readCapped

struct Pipe {
    Pipe() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            throw std::runtime_error("pipe2 failed");
        }
        r = fds[0];
        w = fds[1];
    }
    ~Pipe() {
        closeRead();
        closeWrite();
    }
    void closeRead() {
        if (r >= 0) {
            ::close(r);
            r = -1;
        }
    }
    void closeWrite() {
        if (w >= 0) {
            ::close(w);
            w = -1;
        }
    }
    int r = -1;
    int w = -1;
};

// Writes `total` bytes of 'x' to fd from a thread; stops quietly at EPIPE.
std::thread writer(int fd, std::size_t total, std::chrono::milliseconds delay = {}) {
    return std::thread([fd, total, delay] {
        std::this_thread::sleep_for(delay);
        std::string chunk(65536, 'x');
        std::size_t done = 0;
        while (done < total) {
            std::size_t n = std::min(chunk.size(), total - done);
            ssize_t w = ::write(fd, chunk.data(), n);
            if (w < 0 && errno == EINTR) {
                continue;
            }
            if (w <= 0) {
                return;
            }
            done += static_cast<std::size_t>(w);
        }
    });
}

class ReadCapped : public ::testing::Test {
protected:
    void SetUp() override { oldPipe_ = std::signal(SIGPIPE, SIG_IGN); }
    void TearDown() override { std::signal(SIGPIPE, oldPipe_); }

private:
    void (*oldPipe_)(int) = nullptr;
};

TEST_F(ReadCapped, ExactlyCapIsRead) {
    Pipe p;
    std::thread t = writer(p.w, 4096);
    t.join();
    p.closeWrite();
    EXPECT_EQ(readCapped(p.r, 4096), std::string(4096, 'x'));
}

TEST_F(ReadCapped, CapPlusOneIsRefused) {
    Pipe p;
    std::thread t = writer(p.w, 4097);
    t.join();
    p.closeWrite();
    Error e = errorFrom([&] { readCapped(p.r, 4096); });
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("larger than 4096 bytes"), std::string::npos);
}

TEST_F(ReadCapped, EmptyInputIsEmpty) {
    Pipe p;
    p.closeWrite();
    EXPECT_EQ(readCapped(p.r, 10), "");
}

TEST_F(ReadCapped, EndlessWriterIsStoppedAtCap) {
    Pipe p;
    // 100 MiB: readCapped must give up after cap + 1 bytes, not drain the writer.
    std::thread t = writer(p.w, 100u * 1024 * 1024);
    auto start = std::chrono::steady_clock::now();
    Error e = errorFrom([&] { readCapped(p.r, kMaxStateBytes); });
    auto elapsed = std::chrono::steady_clock::now() - start;
    p.closeRead(); // the writer now gets EPIPE and ends
    t.join();
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
    EXPECT_LT(elapsed, std::chrono::seconds(2));
}

TEST_F(ReadCapped, NonBlockingFdWaitsForData) {
    Pipe p;
    ASSERT_EQ(::fcntl(p.r, F_SETFL, O_NONBLOCK), 0);
    std::thread t = writer(p.w, 100, std::chrono::milliseconds(100));
    t.join();
    p.closeWrite();
    EXPECT_EQ(readCapped(p.r, 1000), std::string(100, 'x'));
}

TEST_F(ReadCapped, ReadErrorIsFailed) {
    Error e = errorFrom([&] { readCapped(-1, 10); });
    EXPECT_EQ(e.kind(), ErrorKind::Failed);
    EXPECT_NE(std::string(e.what()).find("Bad file descriptor"), std::string::npos);
}

// ---------------------------------------------------------------- skipReason

TEST(SkipReason, OnlyTheExactFalseValueSkips) {
    OciState st;
    st.id = "a";
    EXPECT_FALSE(skipReason(st));
    st.annotations["org.rdtmon.monitoring"] = "true";
    EXPECT_FALSE(skipReason(st));
    st.annotations["org.rdtmon.monitoring"] = "False";
    EXPECT_FALSE(skipReason(st));
    st.annotations["org.rdtmon.monitoringx"] = "false";
    EXPECT_FALSE(skipReason(st));
    st.annotations["org.rdtmon.monitoring"] = "false";
    auto why = skipReason(st);
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("org.rdtmon.monitoring=false"), std::string::npos);
}

TEST(SkipReason, CriSandboxContainersAreSkipped) {
    for (const char* name :
         {"io.kubernetes.cri.container-type", "io.kubernetes.cri-o.ContainerType"}) {
        OciState st;
        st.id = "a";
        st.annotations[name] = "container";
        EXPECT_FALSE(skipReason(st)) << name;
        st.annotations[name] = "Sandbox";
        EXPECT_FALSE(skipReason(st)) << name;
        st.annotations[name] = "sandbox";
        auto why = skipReason(st);
        ASSERT_TRUE(why) << name;
        EXPECT_NE(why->find("sandbox"), std::string::npos);
        EXPECT_NE(why->find(name), std::string::npos);
    }
    // One runtime's key with the other's meaning does not count.
    OciState st;
    st.id = "a";
    st.annotations["io.kubernetes.cri.ContainerType"] = "sandbox";
    st.annotations["io.kubernetes.cri-o.container-type"] = "sandbox";
    EXPECT_FALSE(skipReason(st));
}

// ---------------------------------------------------------------- bundleEnablesMonitoring

class Bundle : public ::testing::Test {
protected:
    std::string config() const { return dir_.file("config.json"); }
    void writeConfig(const std::string& text) { writeFile(dir_.file("config.json"), text); }
    Error refused() {
        return errorFrom([&] { bundleEnablesMonitoring(dir_.path()); });
    }
    TempDir dir_{"rdtmon-ocistate"};
};

TEST_F(Bundle, EnableMonitoringTrue) {
    writeConfig(R"({"ociVersion":"1.2.0","linux":{"intelRdt":{"closID":"gold",)"
                R"("enableMonitoring":true}}})");
    EXPECT_TRUE(bundleEnablesMonitoring(dir_.path()));
}

TEST_F(Bundle, EnableMonitoringFalseOrAbsent) {
    writeConfig(R"({"linux":{"intelRdt":{"enableMonitoring":false}}})");
    EXPECT_FALSE(bundleEnablesMonitoring(dir_.path()));
    writeConfig(R"({"linux":{"intelRdt":{"closID":"gold"}}})");
    EXPECT_FALSE(bundleEnablesMonitoring(dir_.path()));
    writeConfig(R"({"linux":{"namespaces":[]}})");
    EXPECT_FALSE(bundleEnablesMonitoring(dir_.path()));
    writeConfig(R"({"ociVersion":"1.0.2"})");
    EXPECT_FALSE(bundleEnablesMonitoring(dir_.path()));
    // Only the JSON boolean true counts.
    writeConfig(R"({"linux":{"intelRdt":{"enableMonitoring":"true"}}})");
    EXPECT_FALSE(bundleEnablesMonitoring(dir_.path()));
}

TEST_F(Bundle, MissingConfigIsRefused) {
    Error e = refused();
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("No such file or directory"), std::string::npos)
        << e.what();
}

TEST_F(Bundle, MissingBundleOrRelativePathIsRefused) {
    Error e = errorFrom([&] { bundleEnablesMonitoring(dir_.file("nope")); });
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("cannot open bundle directory"), std::string::npos);
    e = errorFrom([&] { bundleEnablesMonitoring("relative/bundle"); });
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("not an absolute path"), std::string::npos);
    e = errorFrom([&] { bundleEnablesMonitoring(""); });
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
}

TEST_F(Bundle, BundleThatIsAFileIsRefused) {
    writeFile(dir_.file("file"), "{}");
    Error e = errorFrom([&] { bundleEnablesMonitoring(dir_.file("file")); });
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("Not a directory"), std::string::npos) << e.what();
}

TEST_F(Bundle, SymlinkIsRefused) {
    // The target would say "enable monitoring"; a symlink must not be followed at all.
    TempDir other{"rdtmon-ocistate"};
    writeFile(other.file("real.json"), R"({"linux":{"intelRdt":{"enableMonitoring":true}}})");
    fs::create_symlink(other.file("real.json"), dir_.file("config.json"));
    Error e = refused();
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("symbolic link"), std::string::npos) << e.what();
}

// A FIFO would block a plain open(O_RDONLY) forever (no writer). The alarm turns such a
// hang into a test failure (SIGALRM kills the test binary) instead of a hung CI job.
TEST_F(Bundle, FifoIsRefusedWithoutBlocking) {
    ASSERT_EQ(::mkfifo(config().c_str(), 0600), 0) << std::strerror(errno);
    ::alarm(5);
    auto start = std::chrono::steady_clock::now();
    Error e = refused();
    auto elapsed = std::chrono::steady_clock::now() - start;
    ::alarm(0);
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
    EXPECT_LT(elapsed, std::chrono::seconds(1));
}

TEST_F(Bundle, DirectoryIsRefused) {
    fs::create_directory(config());
    Error e = refused();
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
}

TEST_F(Bundle, InvalidConfigIsRefused) {
    writeConfig("{\"linux\":");
    EXPECT_NE(std::string(refused().what()).find("not valid JSON"), std::string::npos);
    writeConfig("[]");
    EXPECT_NE(std::string(refused().what()).find("expected an object"), std::string::npos);
    writeConfig(std::string(100000, '['));
    EXPECT_NE(std::string(refused().what()).find("nests deeper"), std::string::npos);
}

TEST_F(Bundle, OversizedConfigIsRefused) {
    writeConfig("{}");
    ASSERT_EQ(::truncate(config().c_str(), static_cast<off_t>(kMaxConfigBytes) + 1), 0);
    Error e = refused();
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("larger than"), std::string::npos) << e.what();
}

// ---------------------------------------------------------------- hooks.d configs

nlohmann::json readHookConfig(const std::string& name) {
    std::ifstream f(std::string(RDTMON_HOOKSD_BUILD_DIR) + "/" + name);
    EXPECT_TRUE(f.good()) << "configured file " << name << " not found in "
                          << RDTMON_HOOKSD_BUILD_DIR;
    std::stringstream ss;
    ss << f.rdbuf();
    return nlohmann::json::parse(ss.str());
}

void checkHookConfig(const std::string& name, const std::string& action, const std::string& stage) {
    SCOPED_TRACE(name);
    nlohmann::json j = readHookConfig(name);
    EXPECT_EQ(j.at("version"), "1.0.0");
    const auto& hook = j.at("hook");
    EXPECT_EQ(hook.at("path"), RDTMON_HOOK_INSTALLED_PATH);
    EXPECT_EQ(hook.at("path").get<std::string>().rfind('/'),
              hook.at("path").get<std::string>().size() - std::string("/rdtmon-hook").size());
    EXPECT_EQ(hook.at("args"), nlohmann::json::array({"rdtmon-hook", action}));
    ASSERT_TRUE(hook.at("timeout").is_number_integer());
    // The runtime's kill must come after the hook's own deadline (timeout + 1 s), so that
    // the hook's fail-open line and exit code win.
    EXPECT_GT(hook.at("timeout").get<int>(), kDefaultHookTimeoutSeconds + 1.0);
    EXPECT_EQ(j.at("when"), nlohmann::json({{"always", true}}));
    EXPECT_EQ(j.at("stages"), nlohmann::json::array({stage}));
}

TEST(HooksD, CreateConfig) {
    checkHookConfig("50-rdtmon-create.json", "create", "createRuntime");
}

TEST(HooksD, DeleteConfig) {
    checkHookConfig("50-rdtmon-delete.json", "delete", "poststop");
}

} // namespace
} // namespace rdtmon::test
