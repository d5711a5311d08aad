// Issue 8: the bad-input matrix at every entry point (the hook's stdin and bundle, every
// D-Bus method argument, the configuration file) and the security checks (non-root callers,
// symlinks in the state dir, how the hook opens config.json), with the real binaries, a
// private dbus-daemon and the emulator. For every input: no crash, a named error, and not
// one file or directory created or removed (the emulator tree, the state dir and the
// bundle are snapshotted before and after).

#include "Config.h"
#include "DaemonOnEmulator.h"
#include "EmulatorMount.h"
#include "Errors.h"
#include "PrivateBus.h"
#include "Proc.h"
#include "RdtmonClient.h"
#include "RdtmondProcess.h"
#include "Resctrl.h"
#include "Subprocess.h"
#include "Tally.h"
#include "TempDir.h"
#include "TestUtil.h"
#include "UniqueFd.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sdbus-c++/sdbus-c++.h>
#include <sstream>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace rdtmon::test;
using ::testing::HasSubstr;

namespace {

using Clock = std::chrono::steady_clock;

// Every entry below root as "relative-path:type", plus the content of small regular files
// that are not resctrl files (the state file): a snapshot that sees any file or directory
// created, removed or rewritten. mon_data and info of the emulator are skipped (no group
// can live there; reading them costs a /proc scan each).
void snapshotInto(const std::string& root, const std::string& rel, bool withContent,
                  std::map<std::string, std::string>& out) {
    DIR* d = ::opendir((root + "/" + rel).c_str());
    if (d == nullptr) {
        return;
    }
    while (dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name == "." || name == ".." || name == "mon_data" || name == "info") {
            continue;
        }
        const std::string sub = rel.empty() ? name : rel + "/" + name;
        struct stat st {};
        if (::lstat((root + "/" + sub).c_str(), &st) != 0) {
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            out[sub] = "dir";
            snapshotInto(root, sub, withContent, out);
        } else if (S_ISLNK(st.st_mode)) {
            out[sub] = "symlink";
        } else if (S_ISREG(st.st_mode)) {
            out[sub] = withContent ? "file:" + readFile(root + "/" + sub) : "file";
        } else {
            out[sub] = "other";
        }
    }
    ::closedir(d);
}

std::map<std::string, std::string> snapshot(const std::string& root, bool withContent) {
    std::map<std::string, std::string> out;
    snapshotInto(root, "", withContent, out);
    return out;
}

std::size_t countLines(const std::string& s) {
    return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

std::string shortName(const std::string& s) {
    std::string out;
    for (unsigned char c : s.substr(0, 60)) {
        if (c < 0x20 || c > 0x7e) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return s.size() > 60 ? out + "...(" + std::to_string(s.size()) + " bytes)" : out;
}

// How many inputs each matrix ran; printed at the end for docs/reliability.md's figures.
Tally matrixCounts("bad-input matrix", "total", "inputs");

// The emulator, a private bus and rdtmond, plus a valid bundle and a live process: every
// bad input below is one change away from an input that would make a group.
class BadInput : public ::testing::Test, protected DaemonOnEmulator {
protected:
    BadInput() : DaemonOnEmulator(EmulatorOptions{.numRmids = 64}) {
        writeFile(bundle_.file("config.json"), R"({"ociVersion":"1.0.2","linux":{}})");
    }

    struct World {
        std::map<std::string, std::string> resctrl, state, bundle;
        bool operator==(const World&) const = default;
    };
    World world() {
        return {snapshot(emu_.path(), false), snapshot(daemon_.stateDir(), true),
                snapshot(bundle_.path(), false)};
    }

    CommandResult hook(const std::string& action, const std::string& stdinText,
                       std::vector<std::string> extra = {}) {
        std::vector<std::string> argv = {RDTMON_HOOK_BIN, action};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return runCommand(argv, CommandOptions{.stdinText = stdinText,
                                               .env = {bus_.envEntry()},
                                               .timeout = std::chrono::seconds(20)});
    }

    // A create with this stdin fails with exactly one line naming an org.rdtmon1 error,
    // fast, exit 0 (fail-open) and 1 (fail-closed), and changes nothing anywhere.
    void expectRefusedCreate(const std::string& input, const std::string& errorName,
                             const std::string& detail = "") {
        SCOPED_TRACE("stdin: " + shortName(input));
        const World before = world();
        for (bool failClosed : {false, true}) {
            CommandResult r = hook("create", input,
                                   failClosed ? std::vector<std::string>{"--fail-closed"}
                                              : std::vector<std::string>{});
            EXPECT_FALSE(r.timedOut);
            EXPECT_EQ(r.exitCode, failClosed ? 1 : 0) << r.err;
            EXPECT_EQ(countLines(r.err), 1u) << r.err;
            EXPECT_THAT(r.err, HasSubstr(failClosed ? "create failed (fail-closed): "
                                                    : "create failed (fail-open): "));
            EXPECT_THAT(r.err, HasSubstr(errorName));
            if (!detail.empty()) {
                EXPECT_THAT(r.err, HasSubstr(detail));
            }
            EXPECT_EQ(r.out, "");
            EXPECT_LT(r.elapsed, std::chrono::seconds(3));
        }
        EXPECT_TRUE(world() == before) << "a file or directory was created or removed";
        EXPECT_TRUE(daemon_.running());
        ++matrixCounts["hook stdin and bundle"];
    }

    std::string state(const nlohmann::json& id, const nlohmann::json& pid,
                      const nlohmann::json& bundle) {
        nlohmann::json j = {{"ociVersion", "1.0.2"}, {"status", "creating"}};
        if (!id.is_discarded()) {
            j["id"] = id;
        }
        if (!pid.is_discarded()) {
            j["pid"] = pid;
        }
        if (!bundle.is_discarded()) {
            j["bundle"] = bundle;
        }
        return j.dump();
    }
    std::string goodState(const std::string& id = "ok-1") {
        return state(id, proc_.pid(), bundle_.path());
    }

    TempDir bundle_{"rdtmon-bundle"};
    ChildProcess proc_{spawnSleeper(2)};
    const nlohmann::json absent_ = nlohmann::json(nlohmann::json::value_t::discarded);
};

// ----------------------------------------------------------------- hook stdin

TEST_F(BadInput, HookStdinEmptyNonJsonAndWrongShapes) {
    const std::string inv = "org.rdtmon1.Error.InvalidArgument";
    const std::string p = std::to_string(proc_.pid());
    const std::vector<std::string> inputs = {
        "",
        " \n\t ",
        "not json",
        "{",
        "}",
        "{\"id\":\"a\",\"pid\":" + p + "} trailing",
        "{\"id\":\"a\",\"pid\":" + p + ",}",
        "[]",
        "[{\"id\":\"a\",\"pid\":" + p + "}]",
        "null",
        "42",
        "\"a\"",
        "true",
        "{}",
        "{\"pid\":" + p + "}",
        "{\"id\":null,\"pid\":" + p + "}",
        "{\"id\":42,\"pid\":" + p + "}",
        "{\"id\":[\"a\"],\"pid\":" + p + "}",
        "{\"id\":{\"a\":1},\"pid\":" + p + "}",
        "{\"id\":\"a\",\"pid\":" + p + ",\"status\":7}",
        "{\"id\":\"a\",\"pid\":" + p + ",\"bundle\":7}",
        "{\"id\":\"a\",\"pid\":" + p + ",\"ociVersion\":{}}",
        "{\"id\":\"a\",\"pid\":" + p + ",\"annotations\":[]}",
        "{\"id\":\"a\",\"pid\":" + p + ",\"annotations\":{\"k\":1}}",
        "{\"id\":\"a\",\"pid\":" + p + ",\"annotations\":\"x\"}",
        "\xef\xbb\xbf\xef\xbb\xbf{}",
        std::string("{\"id\":\"a\",\0\"pid\":1}", 20),
        std::string("\0", 1),
    };
    for (const std::string& in : inputs) {
        expectRefusedCreate(in, inv);
    }
}

TEST_F(BadInput, HookStdinMissingNullAndWrongTypedPid) {
    const std::string inv = "org.rdtmon1.Error.InvalidArgument";
    const std::vector<nlohmann::json> pids = {
        absent_,                     // missing
        nullptr,                     // null
        std::to_string(proc_.pid()), // a string holding the right number
        -1,
        0,
        static_cast<int64_t>(4294967295),    // 2^32-1
        static_cast<int64_t>(2147483648),    // INT32_MAX + 1
        static_cast<int64_t>(-2147483648LL), // INT32_MIN
        static_cast<uint64_t>(UINT64_MAX),
        1.5,
        static_cast<double>(proc_.pid()), // an integral float
        true,
        nlohmann::json::array({proc_.pid()}),
        nlohmann::json::object({{"pid", proc_.pid()}}),
    };
    for (const nlohmann::json& pid : pids) {
        expectRefusedCreate(state("ok-1", pid, bundle_.path()), inv, "pid");
    }
    // Raw number spellings that JSON allows but a pid is not.
    for (const char* raw : {"1e3", "1.0", "-0", "01", "0x10", "1E400"}) {
        expectRefusedCreate("{\"id\":\"ok-1\",\"pid\":" + std::string(raw) + ",\"bundle\":\"" +
                                bundle_.path() + "\"}",
                            inv);
    }
    // A well-formed pid with no process behind it: the hook's pidfd_open finds none and
    // names it as the service would.
    expectRefusedCreate(state("ok-1", 2147483647, bundle_.path()),
                        "org.rdtmon1.Error.NoSuchProcess");
}

TEST_F(BadInput, HookStdinHostileIds) {
    const std::string inv = "org.rdtmon1.Error.InvalidArgument";
    const std::vector<std::string> ids = {
        "",
        ".",
        "..",
        "a/b",
        "/",
        "/etc",
        "../escape",
        "x/..",
        "../../../../tmp/x",
        "a b",
        " a",
        "a\nb",
        "a\tb",
        "a\rb",
        std::string(1000, 'a'),
        std::string(129, 'a'),
        "info",
        "mon_groups",
        "mon_data",
        std::string("a\0b", 3),
        "a;rm -rf /",
        "$(reboot)",
        "a*",
        "\xc3\xa9t\xc3\xa9", // valid UTF-8, not in the id alphabet
    };
    for (const std::string& id : ids) {
        expectRefusedCreate(state(id, proc_.pid(), bundle_.path()), inv);
    }
    // Bytes JSON cannot carry: invalid UTF-8 (a lone byte, an overlong "/"), raw control
    // characters inside a string.
    for (const std::string& raw : {std::string("\xff\xfe"), std::string("\xc0\xaf"),
                                   std::string("a\x01"), std::string("a\nb")}) {
        expectRefusedCreate("{\"id\":\"" + raw + "\",\"pid\":" + std::to_string(proc_.pid()) +
                                ",\"bundle\":\"" + bundle_.path() + "\"}",
                            inv);
    }
    // Invalid UTF-8 in an annotation value only (the id itself is fine).
    expectRefusedCreate("{\"id\":\"ok-1\",\"pid\":" + std::to_string(proc_.pid()) +
                            ",\"bundle\":\"" + bundle_.path() +
                            "\",\"annotations\":{\"k\":\"\xff\"}}",
                        inv);
}

TEST_F(BadInput, HookStdinLabelAnnotationsThatBreakARule) {
    const std::string inv = "org.rdtmon1.Error.InvalidArgument";
    std::string multibyte; // 127 two-byte characters: 254 bytes
    for (int i = 0; i < 127; ++i) {
        multibyte += "\xc3\xa9";
    }
    const std::vector<std::string> values = {
        std::string(254, 'v'),
        std::string(100000, 'v'),
        multibyte,
        "a\nb",
        "\r",
        "\t",
        "\x1b[2J",
        "\x7f",
        "\xc2\x85",
        std::string("a\0b", 3),
    };
    for (const char* annotation :
         {"io.kubernetes.cri.sandbox-name", "io.kubernetes.cri.sandbox-namespace",
          "io.kubernetes.cri.container-name", "io.kubernetes.cri.sandbox-uid",
          "io.kubernetes.pod.name", "io.kubernetes.pod.namespace", "io.kubernetes.container.name",
          "io.kubernetes.pod.uid"}) {
        for (const std::string& value : values) {
            nlohmann::json j = nlohmann::json::parse(goodState("labelled"));
            j["bundle"] = bundle_.path();
            j["annotations"] = {{annotation, value}};
            expectRefusedCreate(j.dump(), inv, std::string("annotation ") + annotation);
        }
    }
}

TEST_F(BadInput, HookStdinDeepNestingAndOversizedInputs) {
    const std::string inv = "org.rdtmon1.Error.InvalidArgument";
    const std::string p = std::to_string(proc_.pid());
    for (std::size_t depth : {65u, 1000u, 100000u}) {
        expectRefusedCreate(std::string(depth, '[') + std::string(depth, ']'), inv);
        expectRefusedCreate("{\"id\":\"ok-1\",\"pid\":" + p + ",\"annotations\":{\"a\":" +
                                std::string(depth, '[') + std::string(depth, ']') + "}}",
                            inv);
        expectRefusedCreate(std::string(depth, '{'), inv);
    }
    // Just over the 1 MiB cap: refused by size, whatever the content.
    expectRefusedCreate(goodState() + std::string(1024 * 1024, ' '), inv, "larger than");
    // A huge string value within the cap is parsed and refused for what it is.
    expectRefusedCreate("{\"id\":\"" + std::string(900 * 1024, 'a') + "\",\"pid\":" + p + "}", inv);
}

// Runs the hook with `bytes` of stdin written through a pipe, and measures what it cost.
struct HugeRun {
    int status = -1;
    std::string err;
    std::chrono::milliseconds elapsed{0};
    long maxRssKiB = 0;
    std::size_t written = 0;
};

HugeRun runHookWithPipe(const std::string& busEnv, std::size_t bytes) {
    HugeRun out;
    int in[2];
    int errp[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(errp, O_CLOEXEC) != 0) {
        ADD_FAILURE() << "pipe: " << std::strerror(errno);
        return out;
    }
    const auto start = Clock::now();
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(in[0], STDIN_FILENO);
        ::dup2(errp[1], STDERR_FILENO);
        ::putenv(const_cast<char*>(busEnv.c_str()));
        ::execl(RDTMON_HOOK_BIN, RDTMON_HOOK_BIN, "create", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(in[0]);
    ::close(errp[1]);
    // The writer stops at EPIPE: the hook closed stdin after its cap.
    std::thread writer([&] {
        const std::string chunk = "{\"id\":\"huge\",\"x\":\"" + std::string(1 << 20, 'x');
        while (out.written < bytes) {
            ssize_t n = ::write(in[1], chunk.data(), std::min(chunk.size(), bytes - out.written));
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                break;
            }
            out.written += static_cast<std::size_t>(n);
        }
        ::close(in[1]);
    });
    char buf[4096];
    for (ssize_t n; (n = ::read(errp[0], buf, sizeof buf)) != 0;) {
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            break;
        }
        out.err.append(buf, static_cast<std::size_t>(n));
    }
    ::close(errp[0]);
    rusage ru{};
    ::wait4(pid, &out.status, 0, &ru);
    out.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    out.maxRssKiB = ru.ru_maxrss;
    writer.join();
    return out;
}

TEST_F(BadInput, HookRefuses100MiBOnStdinQuicklyWithBoundedMemory) {
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    struct sigaction old {};
    ::sigaction(SIGPIPE, &ign, &old);
    const World before = world();
    HugeRun r = runHookWithPipe(bus_.envEntry(), std::size_t{100} << 20);
    ::sigaction(SIGPIPE, &old, nullptr);
    ASSERT_TRUE(WIFEXITED(r.status)) << r.status;
    EXPECT_EQ(WEXITSTATUS(r.status), 0);
    EXPECT_EQ(countLines(r.err), 1u) << r.err;
    EXPECT_THAT(r.err, HasSubstr("org.rdtmon1.Error.InvalidArgument"));
    EXPECT_THAT(r.err, HasSubstr("larger than"));
    EXPECT_LT(r.elapsed, std::chrono::seconds(2));
    // The hook read its cap (1 MiB + 1) and stopped: far less than 100 MiB went through the
    // pipe, and its peak memory stays far below the input (ASan builds included).
    EXPECT_LT(r.written, std::size_t{8} << 20);
    EXPECT_LT(r.maxRssKiB, 64 * 1024) << "peak RSS " << r.maxRssKiB << " KiB";
    EXPECT_TRUE(world() == before);
    std::printf("[bad-input matrix] 100 MiB stdin: refused in %lld ms, %zu bytes accepted by "
                "the pipe, peak RSS %ld KiB\n",
                static_cast<long long>(r.elapsed.count()), r.written, r.maxRssKiB);
    ++matrixCounts["hook stdin and bundle"];
}

// ----------------------------------------------------------------- hook bundle

TEST_F(BadInput, HookBundleThatIsMissingLoopingOrNotAFile) {
    const std::string inv = "org.rdtmon1.Error.InvalidArgument";
    TempDir t("rdtmon-badbundle");
    auto bundleWith = [&](const std::string& name) {
        std::string b = t.file(name);
        EXPECT_EQ(::mkdir(b.c_str(), 0755), 0);
        return b;
    };
    const std::string p = std::to_string(proc_.pid());
    auto createIn = [&](const std::string& bundle) { return state("ok-1", proc_.pid(), bundle); };

    expectRefusedCreate(createIn(t.file("does-not-exist")), inv);
    expectRefusedCreate(createIn("relative/bundle"), inv);
    expectRefusedCreate(createIn(""), inv);
    expectRefusedCreate(state("ok-1", proc_.pid(), absent_), inv);
    // The bundle path is a symlink loop, or goes through one.
    ASSERT_EQ(::symlink("loop", t.file("loop").c_str()), 0);
    expectRefusedCreate(createIn(t.file("loop")), inv);
    expectRefusedCreate(createIn(t.file("loop") + "/x"), inv);
    // The bundle is a regular file.
    writeFile(t.file("plain"), "{}");
    expectRefusedCreate(createIn(t.file("plain")), inv);

    // config.json: missing, a directory, a FIFO (must not block), a symlink loop, a symlink
    // to a valid file (not followed), a socket-like special file, empty, not JSON, too big.
    expectRefusedCreate(createIn(bundleWith("no-config")), inv);
    std::string b = bundleWith("dir-config");
    ASSERT_EQ(::mkdir((b + "/config.json").c_str(), 0755), 0);
    expectRefusedCreate(createIn(b), inv);
    b = bundleWith("fifo-config");
    ASSERT_EQ(::mkfifo((b + "/config.json").c_str(), 0644), 0);
    expectRefusedCreate(createIn(b), inv);
    b = bundleWith("loop-config");
    ASSERT_EQ(::symlink("config.json", (b + "/config.json").c_str()), 0);
    expectRefusedCreate(createIn(b), inv);
    b = bundleWith("symlink-config");
    ASSERT_EQ(::symlink(bundle_.file("config.json").c_str(), (b + "/config.json").c_str()), 0);
    expectRefusedCreate(createIn(b), inv);
    b = bundleWith("devnull-config");
    ASSERT_EQ(::symlink("/dev/zero", (b + "/config.json").c_str()), 0);
    expectRefusedCreate(createIn(b), inv);
    b = bundleWith("empty-config");
    writeFile(b + "/config.json", "");
    expectRefusedCreate(createIn(b), inv);
    b = bundleWith("garbage-config");
    writeFile(b + "/config.json", "\xff\xfe not json");
    expectRefusedCreate(createIn(b), inv);
    b = bundleWith("deep-config");
    writeFile(b + "/config.json", std::string(100000, '[') + std::string(100000, ']'));
    expectRefusedCreate(createIn(b), inv);
    b = bundleWith("huge-config");
    {
        // 8 MiB + 1 byte, sparse: refused by size before it is read.
        int fd = ::open((b + "/config.json").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::ftruncate(fd, 8 * 1024 * 1024 + 1), 0);
        ::close(fd);
    }
    expectRefusedCreate(createIn(b), inv);
    // And the valid bundle still works after all that: the daemon is fine.
    CommandResult ok = hook("create", goodState());
    EXPECT_EQ(ok.exitCode, 0) << ok.err;
    EXPECT_EQ(ok.err, "");
    EXPECT_TRUE(exists(emu_.path() + "/mon_groups/ok-1"));
}

TEST_F(BadInput, HookDeleteOfBadInputChangesNothing) {
    // delete never reads the bundle and ignores the pid; bad ids and shapes are refused.
    const World before = world();
    const std::vector<std::string> inputs = {
        "",
        "x",
        "[]",
        "{}",
        R"({"id":"../x"})",
        R"({"id":"info"})",
        R"({"id":null})",
        R"({"id":"a/b","pid":1})",
        std::string(100000, '['),
    };
    for (const std::string& in : inputs) {
        SCOPED_TRACE(shortName(in));
        CommandResult r = hook("delete", in);
        EXPECT_EQ(r.exitCode, 0);
        EXPECT_EQ(countLines(r.err), 1u) << r.err;
        EXPECT_THAT(r.err, HasSubstr("delete failed (fail-open): org.rdtmon1.Error."));
        EXPECT_LT(r.elapsed, std::chrono::seconds(3));
        ++matrixCounts["hook stdin and bundle"];
    }
    EXPECT_TRUE(world() == before);
}

TEST_F(BadInput, LeadingDashIdIsAValidIdAndMakesExactlyItsGroup) {
    // "-rf" is in the contract's alphabet: it is a valid id, not an option. It must become
    // exactly <root>/mon_groups/-rf and nothing else.
    const World before = world();
    CommandResult r = hook("create", goodState("-rf"));
    EXPECT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(r.err, "");
    World after = world();
    std::map<std::string, std::string> added;
    for (const auto& [k, v] : after.resctrl) {
        if (!before.resctrl.count(k)) {
            added[k] = v;
        }
    }
    std::set<std::string> topAdded;
    for (const auto& [k, v] : added) {
        topAdded.insert(k.substr(0, k.find('/', std::string("mon_groups/").size())));
    }
    EXPECT_EQ(topAdded, std::set<std::string>{"mon_groups/-rf"});
    proc_.reset(); // poststop comes after the container's end
    r = hook("delete", R"({"id":"-rf","status":"stopped"})");
    EXPECT_EQ(r.exitCode, 0) << r.err;
    // The delete hook sends the removal without waiting for it.
    EXPECT_TRUE(waitUntil([&] { return !exists(emu_.path() + "/mon_groups/-rf"); },
                          std::chrono::seconds(5)))
        << daemon_.log();
    ++matrixCounts["hook stdin and bundle"];
}

// -------------------------------------------------------------- D-Bus arguments

// Calls a Manager method with arbitrary arguments; returns the error name ("" on success).
class RawCaller {
public:
    explicit RawCaller(const std::string& address)
        : conn_(sdbus::createSessionBusConnectionWithAddress(address)),
          proxy_(sdbus::createProxy(*conn_, "org.rdtmon1", "/org/rdtmon1")) {}

    CallResult call(const std::string& iface, const std::string& method,
                    const std::function<void(sdbus::MethodCall&)>& args,
                    const std::string& path = "/org/rdtmon1") {
        try {
            std::unique_ptr<sdbus::IProxy> p =
                path == "/org/rdtmon1" ? nullptr : sdbus::createProxy(*conn_, "org.rdtmon1", path);
            sdbus::IProxy& proxy = p ? *p : *proxy_;
            sdbus::MethodCall m = proxy.createMethodCall(iface, method);
            args(m);
            proxy.callMethod(m, std::chrono::microseconds(std::chrono::seconds(10)).count());
            return {};
        } catch (const sdbus::Error& e) {
            return {e.getName(), e.getMessage()};
        }
    }

private:
    std::unique_ptr<sdbus::IConnection> conn_;
    std::unique_ptr<sdbus::IProxy> proxy_;
};

const std::vector<std::string>& hostileIds() {
    static const std::vector<std::string> ids = {
        "",
        ".",
        "..",
        "a/b",
        "/",
        "../escape",
        "x/..",
        "a b",
        " a",
        "a\nb",
        "a\tb",
        std::string(1000, 'a'),
        std::string(129, 'a'),
        "info",
        "mon_groups",
        "mon_data",
        "a;b",
        "$(x)",
        "\xc3\xa9t\xc3\xa9",
    };
    return ids;
}

TEST_F(BadInput, DbusStringArgumentsAreInvalidArgumentAndTouchNothing) {
    RdtmonClient client(bus_.address());
    const auto pid = static_cast<uint32_t>(proc_.pid());
    // One group that exists, so a bad id can never reach it by accident.
    ASSERT_TRUE(client.createGroup("keep", pid).ok());
    const World before = world();
    for (const std::string& id : hostileIds()) {
        SCOPED_TRACE("id " + shortName(id));
        EXPECT_EQ(client.createGroup(id, pid).error, "org.rdtmon1.Error.InvalidArgument");
        EXPECT_EQ(client.removeGroup(id).error, "org.rdtmon1.Error.InvalidArgument");
        EXPECT_EQ(client.getCounters(id).error, "org.rdtmon1.Error.InvalidArgument");
        matrixCounts["D-Bus arguments"] += 3;
    }
    EXPECT_TRUE(world() == before);
    EXPECT_TRUE(daemon_.running());
    EXPECT_TRUE(exists(emu_.path() + "/mon_groups/keep"));
}

TEST_F(BadInput, DbusPidArgumentsAreNamedErrorsAndTouchNothing) {
    RdtmonClient client(bus_.address());
    // Processes no container's init can be, and one that belongs to a running container.
    Zombie zombie;
    const pid_t kthread = someKernelThread();
    ChildProcess holder(spawnSleeper());
    ASSERT_TRUE(client.createGroup("holder", static_cast<uint32_t>(holder.pid())).ok());
    const World before = world();
    struct Case {
        uint32_t pid;
        std::vector<std::string> allowed;
    };
    std::vector<Case> cases = {
        {0, {"org.rdtmon1.Error.InvalidArgument"}},
        {UINT32_MAX, {"org.rdtmon1.Error.InvalidArgument", "org.rdtmon1.Error.NoSuchProcess"}},
        {0x80000000u, {"org.rdtmon1.Error.InvalidArgument", "org.rdtmon1.Error.NoSuchProcess"}},
        {0x7fffffffu, {"org.rdtmon1.Error.NoSuchProcess"}},
        {4194304u, {"org.rdtmon1.Error.NoSuchProcess"}}, // above any pid_max
        {1, {"org.rdtmon1.Error.InvalidArgument"}},      // the init of rdtmond's namespace
        {2, {"org.rdtmon1.Error.InvalidArgument"}},      // kthreadd
        {static_cast<uint32_t>(daemon_.pid()), {"org.rdtmon1.Error.InvalidArgument"}},
        {static_cast<uint32_t>(zombie.pid()), {"org.rdtmon1.Error.NoSuchProcess"}},
        {static_cast<uint32_t>(holder.pid()), {"org.rdtmon1.Error.Busy"}}, // in "holder"
    };
    if (kthread > 0) {
        cases.push_back({static_cast<uint32_t>(kthread), {"org.rdtmon1.Error.InvalidArgument"}});
    }
    for (const Case& c : cases) {
        SCOPED_TRACE("pid " + std::to_string(c.pid));
        CallResult r = client.createGroup("pid-case", c.pid);
        EXPECT_THAT(c.allowed, ::testing::Contains(r.error)) << r.message;
        EXPECT_FALSE(r.message.empty());
        ++matrixCounts["D-Bus arguments"];
    }
    EXPECT_TRUE(world() == before);
    EXPECT_TRUE(daemon_.running());
}

TEST_F(BadInput, DbusLabelsThatBreakARuleAreInvalidArgumentAndTouchNothing) {
    RdtmonClient client(bus_.address());
    Pidfd pidfd(proc_.pid());
    const World before = world();
    using LabelMap = std::map<std::string, std::string>;
    LabelMap seventeen;
    for (int i = 0; i < 17; ++i) {
        seventeen[concat("k", i)] = "v";
    }
    std::string multibyte; // 127 two-byte characters: 254 bytes
    for (int i = 0; i < 127; ++i) {
        multibyte += "\xc3\xa9";
    }
    const std::vector<LabelMap> cases = {
        seventeen,
        {{"", "v"}},
        {{"Pod", "v"}},
        {{"POD", "v"}},
        {{"pod-name", "v"}},
        {{"pod.name", "v"}},
        {{"pod name", "v"}},
        {{"pod/x", "v"}},
        {{"../pod", "v"}},
        {{"pod\n", "v"}},
        {{std::string("p\xc3\xb6") + "d", "v"}}, // "pöd"
        {{std::string(64, 'k'), "v"}},
        {{std::string(1000, 'k'), "v"}},
        {{"pod", std::string(254, 'v')}},
        {{"pod", std::string(100000, 'v')}},
        {{"pod", multibyte}},
        {{"pod", "a\nb"}},
        {{"pod", "a\rb"}},
        {{"pod", "\t"}},
        {{"pod", "\x1b[31mred"}},
        {{"pod", "\x7f"}},
        {{"pod", "\xc2\x85"}}, // U+0085, a C1 control
        {{"pod", "\xc2\x9b"}}, // U+009B, CSI
        {{"namespace", "ok"}, {"pod", "bad\x01"}},
    };
    for (const LabelMap& labels : cases) {
        SCOPED_TRACE("labels " + shortName(labels.begin()->first) + "=" +
                     shortName(labels.begin()->second) + concat(" (", labels.size(), ")"));
        CallResult r = client.createContainerGroup("labelled", pidfd.get(), labels);
        EXPECT_EQ(r.error, "org.rdtmon1.Error.InvalidArgument") << r.message;
        EXPECT_THAT(r.message, HasSubstr("label"));
        ++matrixCounts["D-Bus arguments"];
    }
    // Invalid UTF-8 cannot cross the bus at all (DbusBytesTheWireCannotCarry... below).
    EXPECT_TRUE(world() == before);
    EXPECT_TRUE(daemon_.running());
    EXPECT_TRUE(client.createContainerGroup("labelled", pidfd.get(), {{"pod", "fine"}}).ok());
}

TEST_F(BadInput, DbusPidfdArgumentsAreNamedErrorsAndTouchNothing) {
    RdtmonClient client(bus_.address());
    Zombie zombie;
    ChildProcess holder(spawnSleeper());
    Pidfd holderFd(holder.pid());
    ASSERT_TRUE(client.createContainerGroup("holder", holderFd.get()).ok());
    ChildProcess reaped(spawnSleeper());
    Pidfd reapedFd(reaped.pid());
    reaped.reset();
    Pidfd zombieFd(zombie.pid());
    Pidfd initFd(1);
    Pidfd daemonFd(daemon_.pid());
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    rdtmon::UniqueFd pipeR(p[0]), pipeW(p[1]);
    rdtmon::UniqueFd file(::open(bundle_.file("config.json").c_str(), O_RDONLY | O_CLOEXEC));
    rdtmon::UniqueFd dir(::open(bundle_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    rdtmon::UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
    rdtmon::UniqueFd procFile(
        ::open(concat("/proc/", proc_.pid(), "/stat").c_str(), O_RDONLY | O_CLOEXEC));
    const World before = world();
    struct Case {
        std::string name;
        int fd;
        std::string error;
    };
    std::vector<Case> cases = {
        {"a pipe", pipeR.get(), "org.rdtmon1.Error.InvalidArgument"},
        {"a regular file", file.get(), "org.rdtmon1.Error.InvalidArgument"},
        {"a directory", dir.get(), "org.rdtmon1.Error.InvalidArgument"},
        {"/dev/null", devnull.get(), "org.rdtmon1.Error.InvalidArgument"},
        {"the process's /proc stat file", procFile.get(), "org.rdtmon1.Error.InvalidArgument"},
        {"pid 1", initFd.get(), "org.rdtmon1.Error.InvalidArgument"},
        {"rdtmond itself", daemonFd.get(), "org.rdtmon1.Error.InvalidArgument"},
        {"a reaped process", reapedFd.get(), "org.rdtmon1.Error.NoSuchProcess"},
        {"a zombie", zombieFd.get(), "org.rdtmon1.Error.NoSuchProcess"},
        {"a process in another container's group", holderFd.get(), "org.rdtmon1.Error.Busy"},
    };
    std::unique_ptr<Pidfd> kthreadFd;
    if (pid_t k = someKernelThread(); k > 0) {
        try {
            kthreadFd = std::make_unique<Pidfd>(k);
            cases.push_back(
                {"a kernel thread", kthreadFd->get(), "org.rdtmon1.Error.InvalidArgument"});
        } catch (const std::exception&) {
            // pidfd_open refuses kernel threads on some kernels: nothing to send then.
        }
    }
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        CallResult r = client.createContainerGroup("pidfd-case", c.fd, {{"pod", "p"}});
        EXPECT_EQ(r.error, c.error) << r.message;
        EXPECT_FALSE(r.message.empty());
        ++matrixCounts["D-Bus arguments"];
    }
    EXPECT_TRUE(world() == before);
    EXPECT_TRUE(daemon_.running());
}

TEST_F(BadInput, DbusWrongSignaturesUnknownMembersAndPathsAreRefused) {
    RawCaller raw(bus_.address());
    const std::string mgr = "org.rdtmon1.Manager";
    const World before = world();
    const auto pid = static_cast<uint32_t>(proc_.pid());
    struct Case {
        std::string name;
        std::string iface, method;
        std::function<void(sdbus::MethodCall&)> args;
        std::string path = "/org/rdtmon1";
    };
    const std::vector<Case> cases = {
        {"CreateGroup()", mgr, "CreateGroup", [](sdbus::MethodCall&) {}},
        {"CreateGroup(s)", mgr, "CreateGroup", [](sdbus::MethodCall& m) { m << std::string("x"); }},
        {"CreateGroup(ss)", mgr, "CreateGroup",
         [&](sdbus::MethodCall& m) { m << std::string("x") << std::to_string(pid); }},
        {"CreateGroup(us)", mgr, "CreateGroup",
         [&](sdbus::MethodCall& m) { m << pid << std::string("x"); }},
        {"CreateGroup(si)", mgr, "CreateGroup",
         [&](sdbus::MethodCall& m) { m << std::string("x") << int32_t{-1}; }},
        {"CreateGroup(sd)", mgr, "CreateGroup",
         [&](sdbus::MethodCall& m) { m << std::string("x") << 1.5; }},
        {"CreateGroup(sus)", mgr, "CreateGroup",
         [&](sdbus::MethodCall& m) { m << std::string("x") << pid << std::string("extra"); }},
        {"CreateGroup(st)", mgr, "CreateGroup",
         [&](sdbus::MethodCall& m) { m << std::string("x") << uint64_t{pid}; }},
        {"CreateGroup(o u)", mgr, "CreateGroup",
         [&](sdbus::MethodCall& m) { m << sdbus::ObjectPath("/x") << pid; }},
        {"CreateGroup(v u)", mgr, "CreateGroup",
         [&](sdbus::MethodCall& m) { m << sdbus::Variant(std::string("x")) << pid; }},
        {"CreateGroup(as u)", mgr, "CreateGroup",
         [&](sdbus::MethodCall& m) { m << std::vector<std::string>{"x"} << pid; }},
        {"CreateContainerGroup()", mgr, "CreateContainerGroup", [](sdbus::MethodCall&) {}},
        {"CreateContainerGroup(su)", mgr, "CreateContainerGroup",
         [&](sdbus::MethodCall& m) { m << std::string("x") << pid; }},
        {"CreateContainerGroup(sua{ss})", mgr, "CreateContainerGroup",
         [&](sdbus::MethodCall& m) {
             m << std::string("x") << pid << std::map<std::string, std::string>{};
         }},
        {"CreateContainerGroup(sh)", mgr, "CreateContainerGroup",
         [&](sdbus::MethodCall& m) { m << std::string("x") << sdbus::UnixFd(0); }},
        {"CreateContainerGroup(sha{sv})", mgr, "CreateContainerGroup",
         [&](sdbus::MethodCall& m) {
             m << std::string("x") << sdbus::UnixFd(0)
               << std::map<std::string, sdbus::Variant>{{"pod", sdbus::Variant(1)}};
         }},
        {"CreateContainerGroup(sha{ss}s)", mgr, "CreateContainerGroup",
         [&](sdbus::MethodCall& m) {
             m << std::string("x") << sdbus::UnixFd(0) << std::map<std::string, std::string>{}
               << std::string("extra");
         }},
        {"AddContainerByPid()", mgr, "AddContainerByPid", [](sdbus::MethodCall&) {}},
        {"AddContainerByPid(su)", mgr, "AddContainerByPid",
         [&](sdbus::MethodCall& m) { m << std::string("x") << pid; }},
        {"AddContainerByPid(suu a{ss})", mgr, "AddContainerByPid",
         [&](sdbus::MethodCall& m) {
             m << std::string("x") << pid << uint32_t{1} << std::map<std::string, std::string>{};
         }},
        {"AddContainerByPid(sut a{ss}) of another start time", mgr, "AddContainerByPid",
         [&](sdbus::MethodCall& m) {
             m << std::string("x") << pid << uint64_t{1} << std::map<std::string, std::string>{};
         }},
        {"RemoveGroup()", mgr, "RemoveGroup", [](sdbus::MethodCall&) {}},
        {"RemoveGroup(u)", mgr, "RemoveGroup", [](sdbus::MethodCall& m) { m << uint32_t{5}; }},
        {"RemoveGroup(ss)", mgr, "RemoveGroup",
         [](sdbus::MethodCall& m) { m << std::string("keep") << std::string("x"); }},
        {"GetCounters(i)", mgr, "GetCounters", [](sdbus::MethodCall& m) { m << int32_t{-1}; }},
        {"GetCounters()", mgr, "GetCounters", [](sdbus::MethodCall&) {}},
        {"GarbageCollect(s)", mgr, "GarbageCollect",
         [](sdbus::MethodCall& m) { m << std::string("x"); }},
        {"ListGroups(u)", mgr, "ListGroups", [](sdbus::MethodCall& m) { m << uint32_t{1}; }},
        {"NoSuchMethod", mgr, "NoSuchMethod", [](sdbus::MethodCall&) {}},
        {"Set Version", "org.freedesktop.DBus.Properties", "Set",
         [&](sdbus::MethodCall& m) {
             m << mgr << std::string("Version") << sdbus::Variant(std::string("9"));
         }},
        {"Set GroupCount", "org.freedesktop.DBus.Properties", "Set",
         [&](sdbus::MethodCall& m) {
             m << mgr << std::string("GroupCount") << sdbus::Variant(uint32_t{0});
         }},
        {"Get unknown property", "org.freedesktop.DBus.Properties", "Get",
         [&](sdbus::MethodCall& m) { m << mgr << std::string("NoSuch"); }},
        {"Get on unknown interface", "org.freedesktop.DBus.Properties", "Get",
         [&](sdbus::MethodCall& m) { m << std::string("org.x") << std::string("Version"); }},
        {"Group.GetCounters on unknown path", "org.rdtmon1.Group", "GetCounters",
         [](sdbus::MethodCall&) {}, "/org/rdtmon1/group/nope"},
        {"Group.GetCounters on escape path", "org.rdtmon1.Group", "GetCounters",
         [](sdbus::MethodCall&) {}, "/org/rdtmon1/group/_2e_2e"},
        {"Manager on group path", mgr, "CreateGroup",
         [&](sdbus::MethodCall& m) { m << std::string("x") << pid; }, "/org/rdtmon1/group"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        CallResult r = raw.call(c.iface, c.method, c.args, c.path);
        EXPECT_FALSE(r.ok()) << c.name << " succeeded";
        EXPECT_THAT(r.error, ::testing::StartsWith("org.")) << r.error;
        ++matrixCounts["D-Bus arguments"];
    }
    EXPECT_TRUE(world() == before);
    EXPECT_TRUE(daemon_.running());
    // Still serving.
    RdtmonClient client(bus_.address());
    EXPECT_TRUE(client.createGroup("after", pid).ok());
}

TEST_F(BadInput, DbusBytesTheWireCannotCarryNeverReachTheService) {
    // D-Bus strings are valid UTF-8 without NUL: sd-bus refuses to send invalid UTF-8, and a
    // dbus-daemon would drop the sender. The service stays up and nothing changes.
    RawCaller raw(bus_.address());
    const World before = world();
    for (const std::string& bad :
         {std::string("\xff\xfe"), std::string("\xc0\xaf"), std::string("a\xed\xa0\x80")}) {
        try {
            CallResult r =
                raw.call("org.rdtmon1.Manager", "CreateGroup", [&](sdbus::MethodCall& m) {
                    m << bad << static_cast<uint32_t>(proc_.pid());
                });
            EXPECT_FALSE(r.ok());
        } catch (const std::exception&) {
            // Refused while building the message: fine.
        }
        ++matrixCounts["D-Bus arguments"];
    }
    EXPECT_TRUE(world() == before);
    EXPECT_TRUE(daemon_.running());
    RdtmonClient client(bus_.address());
    EXPECT_TRUE(client.createGroup("still-up", static_cast<uint32_t>(proc_.pid())).ok());
}

// ------------------------------------------------------------------ config file

struct ConfigCase {
    std::string text;
    std::string named; // what stderr must name
};

TEST(BadConfig, RdtmondRefusesToStartNamingTheKeyAndTouchesNothing) {
    EmulatorMount emu;
    PrivateBus bus;
    TempDir dir("rdtmon-badconfig");
    const std::string cfg = dir.file("rdtmond.json");
    const std::string stateDir = dir.file("state");
    const std::vector<ConfigCase> cases = {
        {"", "invalid JSON"},
        {"not json", "invalid JSON"},
        {"{", "invalid JSON"},
        {"[]", "expected a JSON object"},
        {"null", "expected a JSON object"},
        {"\"x\"", "expected a JSON object"},
        {"42", "expected a JSON object"},
        {R"({"unknown":1})", "unknown"},
        {R"({"resctrl":1})", "resctrl"},
        {R"({"resctrl":null})", "resctrl"},
        {R"({"resctrl":{"path":5}})", "resctrl.path"},
        {R"({"resctrl":{"path":null}})", "resctrl.path"},
        {R"({"resctrl":{"path":"relative"}})", "resctrl.path"},
        {R"({"resctrl":{"path":""}})", "resctrl.path"},
        {R"({"resctrl":{"mount":"yes"}})", "resctrl.mount"},
        {R"({"resctrl":{"mount":1}})", "resctrl.mount"},
        {R"({"resctrl":{"mountOptions":["cdp"]}})", "resctrl.mountOptions"},
        {R"({"resctrl":{"extra":true}})", "extra"},
        {R"({"gc":[]})", "gc"},
        {R"({"gc":{"intervalSeconds":"60"}})", "gc.intervalSeconds"},
        {R"({"gc":{"intervalSeconds":-1}})", "gc.intervalSeconds"},
        {R"({"gc":{"intervalSeconds":0}})", "gc.intervalSeconds"},
        {R"({"gc":{"intervalSeconds":1.5}})", "gc.intervalSeconds"},
        {R"({"gc":{"intervalSeconds":4294967295}})", "gc.intervalSeconds"},
        {R"({"gc":{"intervalSeconds":1e400}})", "invalid JSON"},
        {R"({"gc":{"intervalSeconds":null}})", "gc.intervalSeconds"},
        {R"({"gc":{"graceSeconds":-5}})", "gc.graceSeconds"},
        {R"({"gc":{"graceSeconds":true}})", "gc.graceSeconds"},
        {R"({"containerSources":{}})", "containerSources"},
        {R"({"containerSources":[1]})", "containerSources"},
        {R"({"containerSources":[{}]})", "containerSources"},
        {R"({"containerSources":[{"stateDirs":"x"}]})", "stateDirs"},
        {R"({"containerSources":[{"stateDirs":[1]}]})", "stateDirs"},
        {R"({"containerSources":[{"command":[]}]})", "command"},
        {R"({"containerSources":[{"command":"ls"}]})", "command"},
        {R"({"containerSources":[{"command":["ls"],"stateDirs":["/x"]}]})", "containerSources"},
        {R"({"containerSources":[{"command":["ls"],"timeoutSeconds":"1"}]})", "timeoutSeconds"},
        {R"({"containerSources":[{"command":["ls"],"timeoutSeconds":-1}]})", "timeoutSeconds"},
        {std::string(100000, '[') + std::string(100000, ']'), "rdtmond.json"},
        {"{\"resctrl\":{\"path\":\"/\xff\"}}", "invalid JSON"},
        {std::string("{\"resctrl\":{\"path\":\"/a\0b\"}}", 25), "invalid JSON"},
        {"{\"resctrl\":{\"path\":\"/a\\u0000b\"}}", "resctrl.path"},
        {std::string(2 * 1024 * 1024, ' ') + "{}", "larger than"},
    };
    auto runDaemon = [&](const std::string& configPath) {
        return runCommand(
            {RDTMOND_BIN, "--config", configPath, "--resctrl", emu.path(), "--state-dir", stateDir,
             "--no-mount"},
            CommandOptions{.env = {bus.envEntry()}, .timeout = std::chrono::seconds(20)});
    };
    const auto before = snapshot(emu.path(), false);
    int n = 0;
    auto check = [&](const CommandResult& r, const std::string& named, const std::string& what) {
        SCOPED_TRACE(what);
        EXPECT_FALSE(r.timedOut);
        EXPECT_EQ(r.exitCode, 1) << r.err;
        EXPECT_THAT(r.err, HasSubstr(named));
        EXPECT_THAT(r.err, HasSubstr("configuration"));
        EXPECT_LT(r.elapsed, std::chrono::seconds(5));
        EXPECT_FALSE(exists(stateDir)) << "the state dir was created";
        EXPECT_FALSE(bus.nameHasOwner("org.rdtmon1"));
        EXPECT_EQ(snapshot(emu.path(), false), before);
        ++n;
    };
    for (const ConfigCase& c : cases) {
        writeFile(cfg, c.text);
        check(runDaemon(cfg), c.named, "config " + shortName(c.text));
    }
    // The file itself is the problem: a directory, a FIFO (must not block), a symlink loop,
    // an unreadable special file.
    ::unlink(cfg.c_str());
    ASSERT_EQ(::mkdir(cfg.c_str(), 0755), 0);
    check(runDaemon(cfg), cfg, "config is a directory");
    ::rmdir(cfg.c_str());
    ASSERT_EQ(::mkfifo(cfg.c_str(), 0644), 0);
    check(runDaemon(cfg), cfg, "config is a FIFO");
    ::unlink(cfg.c_str());
    ASSERT_EQ(::symlink("rdtmond.json", cfg.c_str()), 0);
    check(runDaemon(cfg), cfg, "config is a symlink loop");
    ::unlink(cfg.c_str());
    ASSERT_EQ(::symlink("/dev/zero", cfg.c_str()), 0);
    check(runDaemon(cfg), cfg, "config is /dev/zero");
    ::unlink(cfg.c_str());
    writeFile(cfg, "{}");
    ASSERT_EQ(::mkdir(dir.file("notadir").c_str(), 0755), 0);
    check(runDaemon(cfg + "/x"), "rdtmond.json/x", "config path under a regular file");
    matrixCounts["config file"] += n;
}

// --------------------------------------------------------------------- security

TEST(Security, EveryMutatingMethodIsRefusedToNonRootEvenUnderAPermissivePolicy) {
    EmulatorMount emu;
    PrivateBus bus(PrivateBus::Policy::Permissive);
    Rdtmond daemon(bus, Rdtmond::Options{.resctrl = emu.path()});
    ChildProcess proc(spawnSleeper(0));
    RdtmonClient root(bus.address());
    ASSERT_TRUE(root.createGroup("owned", static_cast<uint32_t>(proc.pid())).ok());
    const auto before = snapshot(emu.path(), false);
    const std::string stateBefore = stateFilesText(daemon.stateDir());
    CommandOptions nobody{.uid = 65534};
    const std::string pid = std::to_string(proc.pid());
    struct Case {
        std::string method;
        std::vector<std::string> args;
    };
    const std::vector<Case> cases = {
        {"CreateGroup", {"su", "x", pid}},
        {"CreateGroup", {"su", "owned", pid}},
        {"RemoveGroup", {"s", "owned"}},
        {"RemoveGroup", {"s", "never"}},
        {"GarbageCollect", {}},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.method);
        std::vector<std::string> argv = {"call", "org.rdtmon1", "/org/rdtmon1",
                                         "org.rdtmon1.Manager", c.method};
        argv.insert(argv.end(), c.args.begin(), c.args.end());
        CommandResult r = runCommand(bus.busctl(argv), nobody);
        EXPECT_NE(r.exitCode, 0);
        EXPECT_THAT(r.err, HasSubstr("Access denied"));
        EXPECT_THAT(daemon.log(), HasSubstr(c.method + " refused"));
    }
    // A non-root caller cannot set a property either (they are read-only for everyone).
    CommandResult set = runCommand(bus.busctl({"set-property", "org.rdtmon1", "/org/rdtmon1",
                                               "org.rdtmon1.Manager", "GroupCount", "u", "0"}),
                                   nobody);
    EXPECT_NE(set.exitCode, 0);
    EXPECT_EQ(snapshot(emu.path(), false), before);
    EXPECT_EQ(stateFilesText(daemon.stateDir()), stateBefore);
    // Reads stay open to everyone.
    CommandResult list = runCommand(
        bus.busctl({"call", "org.rdtmon1", "/org/rdtmon1", "org.rdtmon1.Manager", "ListGroups"}),
        nobody);
    EXPECT_EQ(list.exitCode, 0) << list.err;
    EXPECT_THAT(list.out, HasSubstr("owned"));
}

TEST(Security, SymlinksPlantedInTheStateDirAreNotFollowedByTheDaemon) {
    EmulatorMount emu;
    PrivateBus bus;
    TempDir dir("rdtmon-statelinks");
    const std::string stateDir = dir.file("state");
    ASSERT_EQ(::mkdir(stateDir.c_str(), 0700), 0);
    const std::string victim = dir.file("victim");
    const std::string victimTmp = dir.file("victim-tmp");
    const std::string victimJournal = dir.file("victim-journal");
    writeFile(victim, "precious\n");
    writeFile(victimTmp, "precious too\n");
    writeFile(victimJournal, "precious as well\n");
    ASSERT_EQ(::symlink(victim.c_str(), (stateDir + "/groups.json").c_str()), 0);
    ASSERT_EQ(::symlink(victimTmp.c_str(), (stateDir + "/groups.json.tmp").c_str()), 0);
    ASSERT_EQ(::symlink(victimJournal.c_str(), (stateDir + "/groups.journal").c_str()), 0);
    Rdtmond daemon(bus, Rdtmond::Options{.resctrl = emu.path(), .stateDir = stateDir});
    ChildProcess proc(spawnSleeper(0));
    RdtmonClient client(bus.address());
    CallResult r = client.createGroup("c1", static_cast<uint32_t>(proc.pid()));
    EXPECT_TRUE(r.ok()) << r.error << ": " << r.message;
    auto expectUntouched = [&] {
        EXPECT_EQ(readFile(victim), "precious\n");
        EXPECT_EQ(readFile(victimTmp), "precious too\n");
        EXPECT_EQ(readFile(victimJournal), "precious as well\n");
        // Whichever of the state files exist are the daemon's own regular files.
        for (const char* name : {"groups.json", "groups.json.tmp", "groups.journal"}) {
            struct stat st {};
            if (::lstat((stateDir + "/" + name).c_str(), &st) == 0) {
                EXPECT_TRUE(S_ISREG(st.st_mode)) << name;
            }
        }
    };
    expectUntouched();
    EXPECT_EQ(recordedIds(stateDir, [](const nlohmann::json&) { return true; }),
              std::set<std::string>{"c1"});
    EXPECT_TRUE(client.removeGroup("c1").ok());
    daemon.stop(); // writes the snapshot
    expectUntouched();
    struct stat st {};
    ASSERT_EQ(::lstat((stateDir + "/groups.json").c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode)) << "groups.json is a regular file of the daemon's own";
}

// Which names inside dir are opened while f runs (inotify IN_OPEN on the directory).
std::set<std::string> namesOpenedIn(const std::string& dir, const std::function<void()>& f) {
    std::set<std::string> names;
    int fd = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (fd < 0 || ::inotify_add_watch(fd, dir.c_str(), IN_OPEN | IN_ACCESS) < 0) {
        ADD_FAILURE() << "inotify: " << std::strerror(errno);
        return names;
    }
    f();
    alignas(inotify_event) char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) {
            break;
        }
        for (char* p = buf; p < buf + n;) {
            auto* ev = reinterpret_cast<inotify_event*>(p);
            names.insert(ev->len > 0 ? std::string(ev->name) : std::string("."));
            p += sizeof(inotify_event) + ev->len;
        }
    }
    ::close(fd);
    return names;
}

TEST_F(BadInput, HookReadsOnlyConfigJsonFromTheBundle) {
    // Bait: a rootfs, other JSON files and a FIFO that would block any reader.
    ASSERT_EQ(::mkdir(bundle_.file("rootfs").c_str(), 0755), 0);
    writeFile(bundle_.file("state.json"), "{}");
    ASSERT_EQ(::mkfifo(bundle_.file("trap-fifo").c_str(), 0644), 0);
    CommandResult r;
    std::set<std::string> opened =
        namesOpenedIn(bundle_.path(), [&] { r = hook("create", goodState("reader")); });
    EXPECT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(r.err, "");
    opened.erase("."); // the bundle directory itself (opened to openat() relative to it)
    EXPECT_EQ(opened, std::set<std::string>{"config.json"});
    EXPECT_TRUE(exists(emu_.path() + "/mon_groups/reader"));
}

TEST_F(BadInput, HookNeverBlocksOnAFifoConfigEvenWithAWriterAttached) {
    // With a writer holding the FIFO open, a blocking open would succeed and the read hang.
    ASSERT_EQ(::unlink(bundle_.file("config.json").c_str()), 0);
    ASSERT_EQ(::mkfifo(bundle_.file("config.json").c_str(), 0644), 0);
    int w = ::open(bundle_.file("config.json").c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(w, 0);
    CommandResult r = hook("create", goodState("fifo"), {"--fail-closed"});
    ::close(w);
    EXPECT_EQ(r.exitCode, 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr("org.rdtmon1.Error.InvalidArgument"));
    EXPECT_LT(r.elapsed, std::chrono::seconds(2));
    EXPECT_FALSE(exists(emu_.path() + "/mon_groups/fifo"));
}

// ----------------------------------------------------- fuzzer findings, kept as tests

// test/fuzz/regressions/config/number-overflow-out-of-range: a number too large for a
// double made nlohmann throw out_of_range, which parseConfig let escape as a foreign
// exception instead of a named InvalidArgument.
TEST(FuzzRegressions, ConfigNumberOverflowIsInvalidArgument) {
    for (const std::string text : {R"({"gc":{"intervalSeconds":1e400}})",
                                   R"({"gc":{"graceSeconds":-2e999}})", "2e222222222222222"}) {
        SCOPED_TRACE(text);
        try {
            (void)rdtmon::parseConfig(text);
            ADD_FAILURE() << "accepted";
        } catch (const rdtmon::Error& e) {
            EXPECT_EQ(e.kind(), rdtmon::ErrorKind::InvalidArgument);
            EXPECT_THAT(e.what(), HasSubstr("invalid JSON"));
        }
    }
}

// test/fuzz/regressions/resctrl_parsers/*: a res: line was returned as a group name even
// when it held a nested path, "..", or a NUL.
TEST(FuzzRegressions, ProcResctrlLineThatIsNotOneDirectoryIsNoGroup) {
    using rdtmon::parseCpuResctrlGroups;
    using rdtmon::TaskGroups;
    EXPECT_EQ(parseCpuResctrlGroups(std::string("res:c\0\0\x19/closweon_g\nmon:\n", 23)),
              std::nullopt);
    EXPECT_EQ(parseCpuResctrlGroups("res:../../etc\nmon:\n"), std::nullopt);
    EXPECT_EQ(parseCpuResctrlGroups("res:a/b\nmon:\n"), std::nullopt);
    EXPECT_EQ(parseCpuResctrlGroups("res:..\nmon:\n"), std::nullopt);
    EXPECT_EQ(parseCpuResctrlGroups("res:clos1\nmon:..\n"), std::nullopt);
    EXPECT_EQ(parseCpuResctrlGroups("res:clos1\nmon:\n"), (TaskGroups{"clos1", ""}));
    EXPECT_EQ(parseCpuResctrlGroups("res:/\nmon:\n"), (TaskGroups{"", ""}));
}

} // namespace
