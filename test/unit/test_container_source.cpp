#include "ContainerSource.h"
#include "Errors.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace rdtmon::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Ids = std::set<std::string>;

class LocalTempDir {
public:
    // `base` defaults to $TMPDIR or /tmp.
    explicit LocalTempDir(fs::path base = fs::temp_directory_path()) {
        std::string tmpl = (base / "rdtmon-sources-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        path_ = tmpl;
    }
    ~LocalTempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

void mkdirs(const std::string& path) {
    fs::create_directories(path);
}

// A runc-style container: <root>/<id>/state.json.
void runcContainer(const std::string& root, const std::string& id) {
    mkdirs(root + "/" + id);
    writeFile(root + "/" + id + "/state.json", "{}");
}

std::string script(const LocalTempDir& t, const std::string& name, const std::string& body) {
    std::string path = t.file(name);
    writeFile(path, "#!/bin/sh\n" + body + "\n");
    EXPECT_EQ(::chmod(path.c_str(), 0755), 0);
    return path;
}

// This test process has no other children, so any child left behind (zombie or not)
// shows up here.
void expectNoChildren() {
    int status = 0;
    errno = 0;
    EXPECT_EQ(::waitpid(-1, &status, WNOHANG), -1) << "a child process was left behind";
    EXPECT_EQ(errno, ECHILD);
}

// ---- StateDirSource ----

TEST(StateDirSource, RuncStyleRootListsContainerDirectoriesOnly) {
    LocalTempDir t;
    std::string root = t.file("runc");
    runcContainer(root, "abc123");
    runcContainer(root, "def-456.x_y");
    writeFile(root + "/regular-file", "x");                         // a file is not a container
    mkdirs(root + "/.hidden");                                      // hidden entries are skipped
    mkdirs(root + "/mon_groups");                                   // not a valid id
    mkdirs(root + "/" + std::string(129, 'a'));                     // too long to be an id
    fs::create_directory_symlink(root + "/abc123", root + "/link"); // not followed
    StateDirSource src({root});
    EXPECT_EQ(src.list(), (Ids{"abc123", "def-456.x_y"}));
    EXPECT_NE(src.describe().find(root), std::string::npos);
}

TEST(StateDirSource, ContainerdStyleGlobOverNamespaces) {
    LocalTempDir t;
    std::string base = t.file("containerd/runc");
    runcContainer(base + "/k8s.io", "pod1");
    runcContainer(base + "/k8s.io", "pod2");
    runcContainer(base + "/moby", "dock1");
    mkdirs(base + "/default");            // an empty namespace
    writeFile(base + "/stray-file", "x"); // matched by the glob, not a root
    std::string other = t.file("crun");
    runcContainer(other, "crun1");
    StateDirSource src({base + "/*", other, t.file("absent"), t.file("absent2/*")});
    EXPECT_EQ(src.list(), (Ids{"pod1", "pod2", "dock1", "crun1"}));
}

TEST(StateDirSource, MissingRootsAreEmpty) {
    LocalTempDir t;
    EXPECT_TRUE(StateDirSource({t.file("nope")}).list().empty());
    EXPECT_TRUE(StateDirSource({t.file("nope/*")}).list().empty());
    EXPECT_TRUE(StateDirSource({t.file("nope/deeper/*/x")}).list().empty());
    EXPECT_TRUE(StateDirSource({}).list().empty());
}

TEST(StateDirSource, RootThatIsAFileFails) {
    LocalTempDir t;
    writeFile(t.file("file"), "x");
    std::string msg =
        expectError(ErrorKind::Failed, [&] { StateDirSource({t.file("file")}).list(); });
    EXPECT_NE(msg.find(t.file("file")), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::strerror(ENOTDIR)), std::string::npos) << msg;
    // One bad root poisons the whole list even when another root is fine.
    runcContainer(t.file("ok"), "c1");
    expectError(ErrorKind::Failed, [&] { StateDirSource({t.file("ok"), t.file("file")}).list(); });
}

TEST(StateDirSource, FiveThousandContainersAreCheap) {
    // Creating 5,000 directories is slow on some disks; tmpfs keeps the test fast and
    // is what /run is anyway.
    LocalTempDir t(fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path());
    std::string root = t.file("runc");
    mkdirs(root);
    for (int i = 0; i < 5000; ++i) {
        ASSERT_EQ(::mkdir((root + "/c" + std::to_string(i)).c_str(), 0700), 0);
    }
    auto start = std::chrono::steady_clock::now();
    Ids ids = StateDirSource({root}).list();
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(ids.size(), 5000u);
    EXPECT_TRUE(ids.count("c0") && ids.count("c4999"));
    EXPECT_LT(took, 1s);
}

// ---- CommandSource ----

TEST(CommandSource, PrintsIds) {
    LocalTempDir t;
    std::string s = script(t, "list.sh",
                           "printf 'abc\\n\\n  \\ndef  \\nghi\\r\\n'\n"
                           "printf 'jkl'\n" // no final newline
                           "echo 'noise on stderr' >&2");
    CommandSource src({s}, 5s);
    EXPECT_EQ(src.list(), (Ids{"abc", "def", "ghi", "jkl"}));
    expectNoChildren();
}

TEST(CommandSource, ArgumentsArePassedWithoutAShell) {
    LocalTempDir t;
    std::string s = script(t, "args.sh", "for a in \"$@\"; do echo \"$a\"; done");
    // A shell would expand the glob or split on spaces; these become invalid ids if it did.
    CommandSource src({s, "id1", "id2"}, 5s);
    EXPECT_EQ(src.list(), (Ids{"id1", "id2"}));
    expectError(ErrorKind::Failed, [&] { CommandSource({s, "a b"}, 5s).list(); });
}

TEST(CommandSource, BareNameIsLookedUpInPath) {
    CommandSource src({"sh", "-c", "echo fromsh"}, 5s);
    EXPECT_EQ(src.list(), (Ids{"fromsh"}));
    expectNoChildren();
}

TEST(CommandSource, EmptyOutputIsAnEmptyList) {
    LocalTempDir t;
    EXPECT_TRUE(CommandSource({script(t, "empty.sh", "exit 0")}, 5s).list().empty());
}

TEST(CommandSource, StdinIsDevNull) {
    LocalTempDir t;
    // `cat` would block on an inherited stdin; with /dev/null it sees EOF at once.
    std::string s = script(t, "cat.sh", "cat; echo done1");
    EXPECT_EQ(CommandSource({s}, 5s).list(), (Ids{"done1"}));
}

TEST(CommandSource, OtherFdsAreClosedInTheChild) {
    LocalTempDir t;
    int leaked = ::open("/dev/null", O_RDONLY); // deliberately without O_CLOEXEC
    ASSERT_GE(leaked, 3);
    std::string s =
        script(t, "fds.sh", "if [ -e /proc/self/fd/$1 ]; then echo leaked; exit 3; fi; echo clean");
    Ids ids;
    EXPECT_NO_THROW(ids = CommandSource({s, std::to_string(leaked)}, 5s).list());
    ::close(leaked);
    EXPECT_EQ(ids, (Ids{"clean"}));
}

TEST(CommandSource, NonZeroExitFailsWithStatusAndStderr) {
    LocalTempDir t;
    std::string s = script(t, "fail.sh", "echo c1; echo 'runtime is down' >&2; exit 1");
    std::string msg = expectError(ErrorKind::Failed, [&] { CommandSource({s}, 5s).list(); });
    EXPECT_NE(msg.find("status 1"), std::string::npos) << msg;
    EXPECT_NE(msg.find("runtime is down"), std::string::npos) << msg;
    expectNoChildren();
}

TEST(CommandSource, KilledBySignalFails) {
    LocalTempDir t;
    std::string s = script(t, "sig.sh", "echo c1; kill -TERM $$; sleep 5");
    std::string msg = expectError(ErrorKind::Failed, [&] { CommandSource({s}, 5s).list(); });
    EXPECT_NE(msg.find("signal 15"), std::string::npos) << msg;
    expectNoChildren();
}

TEST(CommandSource, MissingProgramFails) {
    LocalTempDir t;
    std::string msg = expectError(ErrorKind::Failed,
                                  [&] { CommandSource({t.file("no-such-program")}, 5s).list(); });
    EXPECT_NE(msg.find("no-such-program"), std::string::npos) << msg;
    expectError(ErrorKind::Failed,
                [&] { CommandSource({"rdtmon-no-such-program-in-path"}, 5s).list(); });
    expectNoChildren();
}

TEST(CommandSource, GarbageOutputFails) {
    LocalTempDir t;
    for (const std::string& body : {
             std::string("echo c1; echo 'CONTAINER ID   IMAGE'"), // a table header
             std::string("echo c1; echo '../etc'"),
             std::string("echo ' leading'"),
             std::string("echo mon_groups"),
             std::string("printf 'c1\\000c2\\n'"),
         }) {
        SCOPED_TRACE(body);
        std::string msg = expectError(ErrorKind::Failed,
                                      [&] { CommandSource({script(t, "g.sh", body)}, 5s).list(); });
        EXPECT_NE(msg.find("not a container id"), std::string::npos) << msg;
    }
    expectNoChildren();
}

// While alive, orphans of this process's children are re-parented to this process (not to
// PID 1), so a test can see and reap exactly what a command left behind.
class Subreaper {
public:
    Subreaper() { EXPECT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0); }
    ~Subreaper() { ::prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0); }
};

pid_t readPid(const std::string& path) {
    std::ifstream in(path);
    pid_t pid = 0;
    in >> pid;
    return pid;
}

// Reaps every child of this process, waiting up to 2 s for them to exit; returns
// pid -> wait status. Anything still running after that is a test failure (and is killed).
std::map<pid_t, int> reapAll(const std::vector<pid_t>& known) {
    std::map<pid_t, int> out;
    auto deadline = std::chrono::steady_clock::now() + 2s;
    for (;;) {
        int status = 0;
        pid_t r = ::waitpid(-1, &status, WNOHANG);
        if (r > 0) {
            out[r] = status;
            continue;
        }
        if (r < 0 && errno == ECHILD) {
            break;
        }
        if (std::chrono::steady_clock::now() > deadline) {
            ADD_FAILURE() << "a process the command started is still running";
            std::vector<pid_t> victims = known;
            std::ifstream children("/proc/self/task/" + std::to_string(::getpid()) + "/children");
            for (pid_t p; children >> p;) {
                victims.push_back(p);
            }
            for (pid_t p : victims) {
                if (p > 0 && out.count(p) == 0) {
                    ::kill(p, SIGKILL);
                }
            }
            deadline += 2s;
        }
        std::this_thread::sleep_for(5ms);
    }
    return out;
}

TEST(CommandSource, TimeoutKillsTheWholeChildAndReapsIt) {
    LocalTempDir t;
    Subreaper subreaper;
    // The script leaves a background child holding stdout and records both pids.
    std::string pidFile = t.file("sh.pid");
    std::string bgFile = t.file("bg.pid");
    std::string s =
        script(t, "slow.sh",
               "echo $$ > " + pidFile + "; sleep 30 & echo $! > " + bgFile + "; echo c1; sleep 30");
    auto start = std::chrono::steady_clock::now();
    std::string msg = expectError(ErrorKind::Failed, [&] { CommandSource({s}, 300ms).list(); });
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_NE(msg.find("timed out after 0.3s"), std::string::npos) << msg;
    EXPECT_GE(took, 300ms);
    EXPECT_LT(took, 2s);
    pid_t sh = readPid(pidFile);
    pid_t bg = readPid(bgFile);
    ASSERT_GT(sh, 0);
    ASSERT_GT(bg, 0);
    auto reaped = reapAll({sh, bg});
    // list() reaped the script itself: it is not left for anyone else.
    EXPECT_EQ(reaped.count(sh), 0u) << "the command was left unreaped";
    // Its background child was killed with it (SIGKILL to the process group): reapAll found
    // nothing still running, and bg is gone. It was reaped either by us (as an orphan) or by
    // the shell, which may reap it in the instant before its own SIGKILL lands.
    EXPECT_NE(::access(("/proc/" + std::to_string(bg)).c_str(), F_OK), 0) << "bg " << bg;
    if (reaped.count(bg) != 0) {
        EXPECT_TRUE(WIFSIGNALED(reaped[bg]) && WTERMSIG(reaped[bg]) == SIGKILL) << reaped[bg];
    }
    for (const auto& [pid, status] : reaped) { // e.g. the foreground `sleep`
        EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << pid;
    }
}

TEST(CommandSource, TimeoutAppliesAfterStdoutIsClosed) {
    LocalTempDir t;
    Subreaper subreaper;
    std::string pidFile = t.file("sh.pid");
    std::string s =
        script(t, "linger.sh", "echo $$ > " + pidFile + "; echo c1; exec >&- 2>&-; sleep 30");
    auto start = std::chrono::steady_clock::now();
    std::string msg = expectError(ErrorKind::Failed, [&] { CommandSource({s}, 300ms).list(); });
    EXPECT_NE(msg.find("timed out"), std::string::npos) << msg;
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    pid_t sh = readPid(pidFile);
    ASSERT_GT(sh, 0);
    auto reaped = reapAll({sh});
    EXPECT_EQ(reaped.count(sh), 0u) << "the command was left unreaped";
    for (const auto& [pid, status] : reaped) { // the orphaned `sleep`
        EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << pid;
    }
}

TEST(CommandSource, FiveThousandIds) {
    LocalTempDir t;
    std::string s = script(t, "many.sh",
                           "i=0; while [ $i -lt 5000 ]; do echo \"ctr$i\"; "
                           "i=$((i+1)); done");
    Ids ids = CommandSource({s}, 20s).list();
    EXPECT_EQ(ids.size(), 5000u);
    EXPECT_TRUE(ids.count("ctr0") && ids.count("ctr4999"));
}

TEST(CommandSource, OversizedOutputFails) {
    LocalTempDir t;
    std::string s = script(t, "huge.sh", "yes abcdefgh");
    std::string msg = expectError(ErrorKind::Failed, [&] { CommandSource({s}, 20s).list(); });
    EXPECT_NE(msg.find("16 MiB"), std::string::npos) << msg;
    expectNoChildren();
}

TEST(MakeSources, BuildsOneSourcePerEntry) {
    SourceConfig a;
    a.stateDirs = {"/x/*", "/y"};
    SourceConfig b;
    b.command = {"crictl", "ps", "-q"};
    b.commandTimeout = 1500ms;
    auto sources = makeSources({a, b});
    ASSERT_EQ(sources.size(), 2u);
    EXPECT_NE(dynamic_cast<StateDirSource*>(sources[0].get()), nullptr);
    EXPECT_NE(dynamic_cast<CommandSource*>(sources[1].get()), nullptr);
    EXPECT_NE(sources[0]->describe().find("/x/*"), std::string::npos);
    EXPECT_NE(sources[1]->describe().find("crictl ps -q"), std::string::npos);
    EXPECT_EQ(makeSources(Config::defaultSources()).size(), 1u);
}

} // namespace
} // namespace rdtmon::test
