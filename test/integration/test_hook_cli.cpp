// Runs the built rdtmon-hook binary against "no service": a bus address that does not
// exist, and a fake bus endpoint that accepts connections into its backlog but never
// answers. The end-to-end tests with rdtmond live elsewhere.

#include "TempDir.h"
#include "UniqueFd.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <optional>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace rdtmon::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// A unix socket that listens but never accepts: a connect succeeds (backlog), nothing is
// ever answered. connectionAttempted() tells whether anyone connected.
class SilentBus {
public:
    explicit SilentBus(const fs::path& path) : path_(path) {
        sock_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
        if (sock_.get() < 0 ||
            ::bind(sock_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
            ::listen(sock_.get(), 16) != 0) {
            throw std::runtime_error(std::string("fake bus socket: ") + std::strerror(errno));
        }
    }
    std::string address() const { return "unix:path=" + path_.string(); }
    bool connectionAttempted() {
        UniqueFd c(::accept4(sock_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        return c.get() >= 0;
    }

private:
    fs::path path_;
    UniqueFd sock_;
};

struct Result {
    int exitCode = -1; // -1: killed by a signal or by the test's own guard
    std::string err;
    std::string out;
    Clock::duration elapsed{};
};

// Runs the hook with args, feeding `input` on stdin (or keeping stdin open and silent when
// keepStdinOpen), with DBUS_SYSTEM_BUS_ADDRESS set to busAddress. A guard kills the child
// after 30 s so a hung hook fails the test instead of hanging it.
Result runHook(const std::vector<std::string>& args, const std::string& input,
               const std::string& busAddress, bool keepStdinOpen = false) {
    int in[2], out[2], err[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 ||
        ::pipe2(err, O_CLOEXEC) != 0) {
        throw std::runtime_error("pipe2 failed");
    }
    UniqueFd inR(in[0]), inW(in[1]), outR(out[0]), outW(out[1]), errR(err[0]), errW(err[1]);

    std::vector<std::string> argStore = {RDTMON_HOOK_BIN};
    argStore.insert(argStore.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argStore) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    std::string busEnv = "DBUS_SYSTEM_BUS_ADDRESS=" + busAddress;
    std::string pathEnv = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
    std::vector<char*> envp = {busEnv.data(), pathEnv.data(), nullptr};

    auto start = Clock::now();
    pid_t pid = ::fork();
    if (pid < 0) {
        throw std::runtime_error("fork failed");
    }
    if (pid == 0) {
        ::dup2(inR.get(), 0);
        ::dup2(outW.get(), 1);
        ::dup2(errW.get(), 2);
        ::execve(argv[0], argv.data(), envp.data());
        ::_exit(127);
    }
    inR.reset();
    outW.reset();
    errW.reset();

    // stdin from a thread: the hook may stop reading early (cap), then we get EPIPE.
    std::thread feeder([&] {
        std::size_t off = 0;
        while (off < input.size()) {
            ssize_t n = ::write(inW.get(), input.data() + off,
                                std::min<std::size_t>(65536, input.size() - off));
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                break;
            }
            off += static_cast<std::size_t>(n);
        }
        if (!keepStdinOpen) {
            inW.reset();
        }
    });

    Result r;
    auto guard = start + std::chrono::seconds(30);
    bool outOpen = true, errOpen = true;
    while (outOpen || errOpen) {
        pollfd p[2] = {{outOpen ? outR.get() : -1, POLLIN, 0},
                       {errOpen ? errR.get() : -1, POLLIN, 0}};
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(guard - Clock::now());
        if (left.count() <= 0) {
            ::kill(pid, SIGKILL);
            ADD_FAILURE() << "rdtmon-hook did not finish within 30 s; killed";
            break;
        }
        ::poll(p, 2, static_cast<int>(left.count()));
        char buf[4096];
        for (int i = 0; i < 2; ++i) {
            if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t n = ::read(p[i].fd, buf, sizeof(buf));
                if (n > 0) {
                    (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
                } else if (n == 0 || errno != EINTR) {
                    (i == 0 ? outOpen : errOpen) = false;
                }
            }
        }
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    r.elapsed = Clock::now() - start;
    inW.reset(); // lets the feeder finish if it is blocked (keepStdinOpen, or a full pipe)
    feeder.join();
    r.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

std::size_t lineCount(const std::string& s) {
    return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

#define EXPECT_ONE_LINE_WITH(result, text)                                                         \
    do {                                                                                           \
        EXPECT_EQ(lineCount((result).err), 1u) << "stderr: " << (result).err;                      \
        EXPECT_FALSE((result).err.empty() || (result).err.back() != '\n')                          \
            << "stderr: " << (result).err;                                                         \
        EXPECT_NE((result).err.find(text), std::string::npos)                                      \
            << "stderr \"" << (result).err << "\" lacks \"" << (text) << "\"";                     \
    } while (0)

class HookCli : public ::testing::Test {
protected:
    void SetUp() override {
        oldPipe_ = std::signal(SIGPIPE, SIG_IGN);
        bundle_ = dir_.file("bundle");
        fs::create_directory(bundle_);
        writeConfig(R"({"ociVersion":"1.0.2","linux":{}})");
        noBus_ = "unix:path=" + dir_.file("none");
    }
    void TearDown() override { std::signal(SIGPIPE, oldPipe_); }

    void writeConfig(const std::string& text) {
        std::ofstream(bundle_ / "config.json", std::ios::trunc) << text;
    }
    // The pid is the test's own: alive, so the hook gets as far as its call.
    std::string createState(const std::string& id = "ctr-1", const std::string& extra = "") {
        return R"({"ociVersion":"1.0.2","id":")" + id + R"(","status":"creating","pid":)" +
               std::to_string(::getpid()) + R"(,"bundle":")" + bundle_.string() + "\"" + extra +
               "}";
    }
    std::string deleteState(const std::string& id = "ctr-1") {
        return R"({"ociVersion":"1.0.2","id":")" + id + R"(","status":"stopped","bundle":")" +
               bundle_.string() + "\"}";
    }

    TempDir dir_{"rdtmon-hookcli"};
    fs::path bundle_;
    std::string noBus_;

private:
    void (*oldPipe_)(int) = nullptr;
};

TEST_F(HookCli, CreateWithoutServiceFailsOpen) {
    Result r = runHook({"create"}, createState("ctr-open"), noBus_);
    EXPECT_EQ(r.exitCode, 0);
    EXPECT_ONE_LINE_WITH(r, "container ctr-open: create failed (fail-open): ");
    // The reason names the D-Bus error.
    EXPECT_NE(r.err.find("org.freedesktop.DBus.Error."), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");
}

TEST_F(HookCli, CreateWithoutServiceFailsClosed) {
    Result r = runHook({"create", "--fail-closed"}, createState("ctr-closed"), noBus_);
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_ONE_LINE_WITH(r, "container ctr-closed: create failed (fail-closed): ");
}

TEST_F(HookCli, CrunCreatedStatusIsTheSameCreate) {
    std::string st =
        R"({"id":"ctr-crun","status":"created","pid":7,"bundle":")" + bundle_.string() + "\"}";
    Result r = runHook({"create", "--fail-closed"}, st, noBus_);
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_ONE_LINE_WITH(r, "container ctr-crun: create failed (fail-closed): org.freedesktop");
}

TEST_F(HookCli, DeleteWithoutServiceFailsOpenAndNeverReadsTheBundle) {
    // A FIFO as config.json would hang or fail a hook that reads the bundle on delete.
    fs::remove(bundle_ / "config.json");
    ASSERT_EQ(::mkfifo((bundle_ / "config.json").c_str(), 0600), 0);
    Result r = runHook({"delete"}, deleteState("ctr-del"), noBus_);
    EXPECT_EQ(r.exitCode, 0);
    EXPECT_ONE_LINE_WITH(r, "container ctr-del: delete failed (fail-open): org.freedesktop.DBus");
    EXPECT_EQ(r.err.find("config.json"), std::string::npos) << r.err;

    r = runHook({"delete", "--fail-closed"}, deleteState("ctr-del"), noBus_);
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_ONE_LINE_WITH(r, "container ctr-del: delete failed (fail-closed)");
}

TEST_F(HookCli, OptionsMayComeInAnyOrder) {
    Result r = runHook({"create", "--timeout", "2", "--fail-closed"}, createState(), noBus_);
    EXPECT_EQ(r.exitCode, 1);
    r = runHook({"create", "--timeout=2.5", "--fail-closed"}, createState(), noBus_);
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_ONE_LINE_WITH(r, "create failed (fail-closed): org.freedesktop.DBus");
}

TEST_F(HookCli, AnnotationOptOutSkipsWithoutBusContact) {
    SilentBus bus(dir_.file("bus"));
    for (const char* action : {"create", "delete"}) {
        SCOPED_TRACE(action);
        Result r = runHook(
            {action, "--fail-closed"},
            createState("ctr-optout", R"(,"annotations":{"org.rdtmon.monitoring":"false"})"),
            bus.address());
        EXPECT_EQ(r.exitCode, 0);
        EXPECT_ONE_LINE_WITH(r, "container ctr-optout: skipped");
        EXPECT_NE(r.err.find("org.rdtmon.monitoring=false"), std::string::npos) << r.err;
        EXPECT_FALSE(bus.connectionAttempted()) << "the hook connected to the bus";
    }
}

TEST_F(HookCli, RuntimeMonitoringSkipsWithoutBusContact) {
    writeConfig(R"({"linux":{"intelRdt":{"closID":"gold","enableMonitoring":true}}})");
    SilentBus bus(dir_.file("bus"));
    Result r = runHook({"create", "--fail-closed"}, createState("ctr-native"), bus.address());
    EXPECT_EQ(r.exitCode, 0);
    EXPECT_ONE_LINE_WITH(r, "container ctr-native: skipped");
    EXPECT_NE(r.err.find("enableMonitoring"), std::string::npos) << r.err;
    EXPECT_FALSE(bus.connectionAttempted()) << "the hook connected to the bus";
}

TEST_F(HookCli, OtherAnnotationValueIsNoSkip) {
    SilentBus bus(dir_.file("bus"));
    Result r = runHook({"create", "--timeout", "0.3"},
                       createState("ctr-on", R"(,"annotations":{"org.rdtmon.monitoring":"true"})"),
                       bus.address());
    EXPECT_EQ(r.exitCode, 0);
    EXPECT_ONE_LINE_WITH(r, "container ctr-on: create failed (fail-open)");
    EXPECT_TRUE(bus.connectionAttempted()) << "the hook should have tried the bus";
}

TEST_F(HookCli, BadBundleFailsBeforeBusContact) {
    SilentBus bus(dir_.file("bus"));
    fs::remove(bundle_ / "config.json");
    Result r = runHook({"create"}, createState("ctr-nocfg"), bus.address());
    EXPECT_EQ(r.exitCode, 0);
    EXPECT_ONE_LINE_WITH(r, "container ctr-nocfg: create failed (fail-open): "
                            "org.rdtmon1.Error.InvalidArgument: ");
    EXPECT_NE(r.err.find("config.json"), std::string::npos) << r.err;
    EXPECT_FALSE(bus.connectionAttempted());

    fs::create_symlink("/dev/null", bundle_ / "config.json");
    r = runHook({"create", "--fail-closed"}, createState("ctr-symlink"), bus.address());
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_ONE_LINE_WITH(r, "container ctr-symlink: create failed (fail-closed)");
    EXPECT_FALSE(bus.connectionAttempted());
}

TEST_F(HookCli, ABadLabelAnnotationFailsBeforeBusContact) {
    SilentBus bus(dir_.file("bus"));
    Result r = runHook(
        {"create"}, createState("ctr-label", R"(,"annotations":{"io.kubernetes.pod.name":"a\nb"})"),
        bus.address());
    EXPECT_EQ(r.exitCode, 0);
    EXPECT_ONE_LINE_WITH(r, "container ctr-label: create failed (fail-open): "
                            "org.rdtmon1.Error.InvalidArgument: annotation io.kubernetes.pod.name "
                            "(label pod) contains a control character");
    EXPECT_FALSE(bus.connectionAttempted());
}

TEST_F(HookCli, BadStatesFailOpenNamingTheId) {
    struct Case {
        std::string state;
        std::string idInLine;
        std::string mention;
    };
    std::vector<Case> cases = {
        {"", "container <unknown>:", "not valid JSON"},
        {"[1,2]", "container <unknown>:", "array"},
        {R"({"pid":1})", "container <unknown>:", "no \"id\""},
        {R"({"id":"ctr-pid","pid":"1"})", "container ctr-pid:", "\"pid\""},
        {R"({"id":"ctr-neg","pid":-5})", "container ctr-neg:", "\"pid\" is -5"},
        {R"({"id":"ctr-big","pid":4294967295})", "container ctr-big:", "\"pid\""},
        {R"({"id":"ctr-ann","pid":1,"annotations":[]})", "container ctr-ann:", "annotations"},
        {R"({"id":"bad\nid","pid":1})", "container bad\\x0aid:", "invalid container id"},
        {std::string(100000, '['), "container <unknown>:", "nests deeper"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.state.substr(0, 60));
        Result r = runHook({"create"}, c.state, noBus_);
        EXPECT_EQ(r.exitCode, 0);
        EXPECT_ONE_LINE_WITH(r, c.idInLine);
        EXPECT_NE(r.err.find("create failed (fail-open): org.rdtmon1.Error.InvalidArgument"),
                  std::string::npos)
            << r.err;
        EXPECT_NE(r.err.find(c.mention), std::string::npos) << r.err;

        r = runHook({"create", "--fail-closed"}, c.state, noBus_);
        EXPECT_EQ(r.exitCode, 1);
        EXPECT_ONE_LINE_WITH(r, c.idInLine);
    }
}

TEST_F(HookCli, BadOptionsAfterAKnownActionFollowFailMode) {
    for (const std::vector<std::string>& args : {std::vector<std::string>{"create", "--timeout"},
                                                 {"create", "--timeout", "abc"},
                                                 {"create", "--timeout", "0"},
                                                 {"create", "--timeout", "-1"},
                                                 {"create", "--bogus"},
                                                 {"delete", "--timeout=nan"}}) {
        SCOPED_TRACE(args.back());
        Result r = runHook(args, createState("ctr-args"), noBus_);
        EXPECT_EQ(r.exitCode, 0);
        EXPECT_ONE_LINE_WITH(r, "container ctr-args: " + args[0] +
                                    " failed (fail-open): "
                                    "org.rdtmon1.Error.InvalidArgument");
        std::vector<std::string> closed = args;
        closed.insert(closed.begin() + 1, "--fail-closed");
        r = runHook(closed, createState("ctr-args"), noBus_);
        EXPECT_EQ(r.exitCode, 1);
        EXPECT_ONE_LINE_WITH(r, "container ctr-args: ");
    }
}

TEST_F(HookCli, UsageErrorsExitTwo) {
    for (const std::vector<std::string>& args : {std::vector<std::string>{},
                                                 {"start"},
                                                 {"CREATE"},
                                                 {"--fail-closed"},
                                                 {"--fail-closed", "create"},
                                                 {""},
                                                 {"creating"}}) {
        SCOPED_TRACE(args.empty() ? "(none)" : args[0]);
        Result r = runHook(args, createState(), noBus_);
        EXPECT_EQ(r.exitCode, 2);
        EXPECT_NE(r.err.find("usage: rdtmon-hook create|delete"), std::string::npos) << r.err;
    }
}

TEST_F(HookCli, HugeStdinIsRefusedQuickly) {
    std::string huge = R"({"id":"ctr-huge","pid":1,"x":")" + std::string(100u << 20, 'x');
    Result r = runHook({"create"}, huge, noBus_);
    EXPECT_EQ(r.exitCode, 0);
    EXPECT_ONE_LINE_WITH(r, "container <unknown>: create failed (fail-open): "
                            "org.rdtmon1.Error.InvalidArgument");
    EXPECT_NE(r.err.find("larger than"), std::string::npos) << r.err;
    EXPECT_LT(r.elapsed, std::chrono::seconds(2));
}

TEST_F(HookCli, SilentBusTimesOutWithinTheDeadline) {
    SilentBus bus(dir_.file("bus"));
    Result r = runHook({"create", "--timeout", "1"}, createState("ctr-hang"), bus.address());
    EXPECT_EQ(r.exitCode, 0);
    EXPECT_ONE_LINE_WITH(r, "container ctr-hang: create failed (fail-open)");
    EXPECT_TRUE(bus.connectionAttempted());
    EXPECT_GE(r.elapsed, std::chrono::milliseconds(900));
    EXPECT_LT(r.elapsed, std::chrono::milliseconds(3500)); // timeout + 1 s deadline + slack

    r = runHook({"delete", "--fail-closed", "--timeout=0.5"}, deleteState("ctr-hang"),
                bus.address());
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_ONE_LINE_WITH(r, "container ctr-hang: delete failed (fail-closed)");
    EXPECT_LT(r.elapsed, std::chrono::milliseconds(3000));
}

TEST_F(HookCli, StdinThatNeverEndsHitsTheDeadline) {
    Result r = runHook({"create", "--timeout", "0.5", "--fail-closed"}, "{\"id\":", noBus_,
                       /*keepStdinOpen=*/true);
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_ONE_LINE_WITH(r, "container <unknown>: create failed (fail-closed)");
    EXPECT_NE(r.err.find("deadline"), std::string::npos) << r.err;
    EXPECT_LT(r.elapsed, std::chrono::milliseconds(3000));
}

} // namespace
} // namespace rdtmon::test
