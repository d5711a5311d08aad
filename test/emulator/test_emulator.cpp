// Semantics suite of resctrl-emu: every check goes through plain syscalls on the mount.
#include "EmulatorMount.h"
#include "Proc.h"
#include "TempDir.h"
#include "UniqueFd.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <set>
#include <sstream>
#include <string>
#include <thread>

using namespace rdtmon::test;
using rdtmon::UniqueFd;

namespace {

// 0 or the errno of open+write (one write(2), O_TRUNC like `echo > file`).
int writeFile(const std::string& path, const std::string& data) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
    if (!fd) {
        return errno;
    }
    ssize_t n = ::write(fd.get(), data.data(), data.size());
    if (n < 0) {
        return errno;
    }
    return n == static_cast<ssize_t>(data.size()) ? 0 : EIO;
}

std::string readFile(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        return "<open failed: " + std::string(std::strerror(errno)) + ">";
    }
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) {
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

int mkdirErr(const std::string& p) {
    return ::mkdir(p.c_str(), 0755) == 0 ? 0 : errno;
}
int rmdirErr(const std::string& p) {
    return ::rmdir(p.c_str()) == 0 ? 0 : errno;
}
bool exists(const std::string& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0;
}

std::set<pid_t> tasksIn(const std::string& file) {
    std::set<pid_t> out;
    std::istringstream in(readFile(file));
    long v;
    while (in >> v) {
        out.insert(static_cast<pid_t>(v));
    }
    return out;
}

// The names in a directory.
std::set<std::string> listDir(const std::string& dir) {
    std::set<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        out.insert(e.path().filename().string());
    }
    return out;
}

uint64_t counter(const std::string& file) {
    std::string s = readFile(file);
    EXPECT_FALSE(s.empty());
    EXPECT_EQ(s.back(), '\n') << file;
    return std::stoull(s);
}

// Runs fn in a forked child (optionally as nobody) and returns fn's result (exit code).
int inChild(const std::function<int()>& fn, bool asNobody = false) {
    pid_t pid = ::fork();
    if (pid == 0) {
        if (asNobody) {
            if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) {
                ::_exit(200);
            }
        }
        ::_exit(fn());
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
}

pid_t deadPid() {
    pid_t pid = ::fork();
    if (pid == 0) {
        ::_exit(0);
    }
    ::waitpid(pid, nullptr, 0);
    return pid;
}

class Emu : public ::testing::Test {
protected:
    void SetUp() override { emu = std::make_unique<EmulatorMount>(opts()); }
    virtual EmulatorOptions opts() { return {}; }
    std::string p(const std::string& rel) const { return emu->path() + "/" + rel; }
    std::string status() const { return readFile(p("info/last_cmd_status")); }
    std::unique_ptr<EmulatorMount> emu;
};

} // namespace

TEST_F(Emu, LayoutAndMountInfo) {
    MountInfo mi = findMount(emu->path());
    EXPECT_EQ(mi.fstype, "fuse.resctrl");
    for (const char* f : {"tasks", "cpus", "cpus_list", "schemata", "mode", "size",
                          "mon_data/mon_L3_00/llc_occupancy", "mon_data/mon_L3_01/mbm_total_bytes",
                          "mon_data/mon_L3_01/mbm_local_bytes", "mon_groups",
                          "info/last_cmd_status", "info/L3_MON/num_rmids",
                          "info/L3_MON/mon_features", "info/L3_MON/max_threshold_occupancy"}) {
        EXPECT_TRUE(exists(p(f))) << f;
    }
    EXPECT_FALSE(exists(p("mon_data/mon_L3_02")));
    EXPECT_EQ(readFile(p("info/L3_MON/num_rmids")), "32\n");
    EXPECT_EQ(readFile(p("info/L3_MON/mon_features")),
              "llc_occupancy\nmbm_total_bytes\nmbm_local_bytes\n");
    EXPECT_EQ(status(), "ok\n");
    struct stat st {};
    ASSERT_EQ(::stat(p("tasks").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0644u);
    EXPECT_EQ(st.st_uid, 0u);
    ASSERT_EQ(::stat(p("mon_groups").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0755u);
    // No control file inside the tree.
    EXPECT_FALSE(exists(p("control")));
    EXPECT_TRUE(tasksIn(p("tasks")).count(static_cast<pid_t>(::gettid())));
}

TEST_F(Emu, MkdirRules) {
    ASSERT_EQ(mkdirErr(p("c1")), 0);
    for (const char* f : {"tasks", "cpus", "cpus_list", "schemata", "mode", "size",
                          "mon_data/mon_L3_01/llc_occupancy", "mon_groups"}) {
        EXPECT_TRUE(exists(p("c1/") + f)) << f;
    }
    ASSERT_EQ(mkdirErr(p("c1/mon_groups/m1")), 0);
    ASSERT_EQ(mkdirErr(p("mon_groups/m1")), 0); // same name under another CLOS is fine
    for (const char* f : {"tasks", "cpus", "cpus_list", "mon_data/mon_L3_00/mbm_total_bytes"}) {
        EXPECT_TRUE(exists(p("c1/mon_groups/m1/") + f)) << f;
    }
    EXPECT_FALSE(exists(p("c1/mon_groups/m1/schemata")));
    EXPECT_FALSE(exists(p("c1/mon_groups/m1/mon_groups")));
    EXPECT_EQ(mkdirErr(p("c1")), EEXIST);
    EXPECT_EQ(mkdirErr(p("info")), EEXIST);
    EXPECT_EQ(mkdirErr(p("c1/mon_groups/m1")), EEXIST);
    EXPECT_EQ(mkdirErr(p("c1/x")), EPERM);
    EXPECT_EQ(mkdirErr(p("info/x")), EPERM);
    EXPECT_EQ(mkdirErr(p("mon_data/x")), EPERM);
    EXPECT_EQ(mkdirErr(p("mon_data/mon_L3_00/x")), EPERM);
    EXPECT_EQ(mkdirErr(p("c1/mon_groups/m1/x")), EPERM);
    EXPECT_EQ(mkdirErr(p("c1/mon_groups/m1/mon_groups")), EPERM);
    EXPECT_EQ(mkdirErr(p("bad\nname")), EINVAL);
    EXPECT_EQ(mkdirErr(p("mon_groups/bad\n")), EINVAL);
    EXPECT_EQ(mkdirErr(p("nosuch/mon_groups/x")), ENOENT);
    EXPECT_EQ(emu->control("rmids"), "free 28 limbo 0 total 32");
}

TEST_F(Emu, FilesCannotBeCreatedRemovedOrRenamed) {
    ASSERT_EQ(mkdirErr(p("c1")), 0);
    errno = 0;
    EXPECT_LT(::creat(p("newfile").c_str(), 0644), 0);
    EXPECT_EQ(errno, EACCES);
    EXPECT_LT(::open(p("c1/other").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644), 0);
    EXPECT_EQ(errno, EACCES);
    EXPECT_NE(::mknod(p("node").c_str(), S_IFREG | 0644, 0), 0);
    EXPECT_EQ(errno, EACCES);
    EXPECT_NE(::unlink(p("tasks").c_str()), 0);
    EXPECT_EQ(errno, EPERM);
    EXPECT_NE(::unlink(p("c1/mon_data/mon_L3_00/llc_occupancy").c_str()), 0);
    EXPECT_EQ(errno, EPERM);
    EXPECT_NE(::rename(p("c1/tasks").c_str(), p("c1/tasks2").c_str()), 0);
    EXPECT_EQ(errno, EPERM);
    EXPECT_TRUE(exists(p("tasks")));
    // Read-only files refuse writers.
    EXPECT_EQ(writeFile(p("size"), "x"), EACCES);
    EXPECT_EQ(writeFile(p("info/last_cmd_status"), "x"), EACCES);
    EXPECT_EQ(writeFile(p("mon_data/mon_L3_00/llc_occupancy"), "1"), EACCES);
}

TEST_F(Emu, RmdirRules) {
    ASSERT_EQ(mkdirErr(p("c1")), 0);
    ASSERT_EQ(mkdirErr(p("c1/mon_groups/m1")), 0);
    for (const char* d :
         {"info", "info/L3_MON", "mon_groups", "mon_data", "mon_data/mon_L3_00", "c1/mon_groups",
          "c1/mon_data", "c1/mon_groups/m1/mon_data", "c1/mon_groups/m1/mon_data/mon_L3_01"}) {
        EXPECT_EQ(rmdirErr(p(d)), EPERM) << d;
    }
    EXPECT_EQ(rmdirErr(p("nosuch")), ENOENT);
    EXPECT_EQ(rmdirErr(p("tasks")), ENOTDIR);
    EXPECT_EQ(rmdirErr(p("c1/mon_groups/m1")), 0);
    EXPECT_FALSE(exists(p("c1/mon_groups/m1")));
    EXPECT_EQ(rmdirErr(p("c1")), 0);
    EXPECT_FALSE(exists(p("c1")));
    EXPECT_EQ(emu->control("rmids"), "free 31 limbo 0 total 32");
}

TEST_F(Emu, ClosidsAreLimited) {
    // closids = 4: root + 3.
    ASSERT_EQ(mkdirErr(p("c1")), 0);
    ASSERT_EQ(mkdirErr(p("c2")), 0);
    ASSERT_EQ(mkdirErr(p("c3")), 0);
    EXPECT_EQ(mkdirErr(p("c4")), ENOSPC);
    EXPECT_EQ(status(), "Out of CLOSIDs\n");
    EXPECT_EQ(mkdirErr(p("mon_groups/m")), 0); // MON groups need no CLOSID
    EXPECT_EQ(status(), "ok\n");
    ASSERT_EQ(rmdirErr(p("c2")), 0);
    EXPECT_EQ(mkdirErr(p("c4")), 0);
}

class EmuFewRmids : public Emu {
    EmulatorOptions opts() override { return {.numRmids = 3, .limboMs = 300}; }
};

TEST_F(EmuFewRmids, OutOfRmidsAndLimbo) {
    ASSERT_EQ(mkdirErr(p("c1")), 0);
    ASSERT_EQ(mkdirErr(p("c1/mon_groups/m1")), 0);
    EXPECT_EQ(emu->control("rmids"), "free 0 limbo 0 total 3");
    EXPECT_EQ(mkdirErr(p("mon_groups/m2")), ENOSPC);
    EXPECT_EQ(status(), "Out of RMIDs\n");
    EXPECT_FALSE(exists(p("mon_groups/m2")));
    ASSERT_EQ(rmdirErr(p("c1/mon_groups/m1")), 0);
    EXPECT_EQ(emu->control("rmids"), "free 0 limbo 1 total 3");
    EXPECT_EQ(mkdirErr(p("mon_groups/m2")), EBUSY);
    EXPECT_EQ(status(), "Out of RMIDs\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(350));
    EXPECT_EQ(emu->control("rmids"), "free 1 limbo 0 total 3");
    EXPECT_EQ(mkdirErr(p("mon_groups/m2")), 0);
    EXPECT_EQ(status(), "ok\n");
    // limbo-ms via control: 0 releases limbo at once.
    ASSERT_EQ(rmdirErr(p("mon_groups/m2")), 0);
    EXPECT_EQ(mkdirErr(p("mon_groups/m3")), EBUSY);
    emu->control("limbo-ms 0");
    EXPECT_EQ(mkdirErr(p("mon_groups/m3")), 0);
}

TEST_F(Emu, TasksWriteSemantics) {
    ChildProcess a(spawnSleeper());
    ChildProcess b(spawnSleeper());
    std::string pa = std::to_string(a.pid()), pb = std::to_string(b.pid());
    ASSERT_EQ(mkdirErr(p("c1")), 0);
    ASSERT_EQ(mkdirErr(p("c2")), 0);
    ASSERT_EQ(mkdirErr(p("c1/mon_groups/m1")), 0);

    // A MON group accepts only tasks of its parent CLOS.
    EXPECT_EQ(writeFile(p("c1/mon_groups/m1/tasks"), pa + "\n"), EINVAL);
    EXPECT_EQ(status(), "Can't move task to different control group\nError while processing task " +
                            pa + "\n");
    EXPECT_EQ(writeFile(p("c1/tasks"), pa + "\n"), 0);
    EXPECT_EQ(status(), "ok\n");
    EXPECT_EQ(tasksIn(p("c1/tasks")), std::set<pid_t>{a.pid()});
    EXPECT_FALSE(tasksIn(p("tasks")).count(a.pid()));
    EXPECT_EQ(writeFile(p("c1/mon_groups/m1/tasks"), pa), 0);
    EXPECT_EQ(tasksIn(p("c1/mon_groups/m1/tasks")), std::set<pid_t>{a.pid()});
    EXPECT_EQ(tasksIn(p("c1/tasks")), std::set<pid_t>{a.pid()}); // the CLOS lists it too
    // A CLOS write takes it out of its MON group.
    EXPECT_EQ(writeFile(p("c1/tasks"), pa), 0);
    EXPECT_TRUE(tasksIn(p("c1/mon_groups/m1/tasks")).empty());
    EXPECT_EQ(writeFile(p("c2/tasks"), pa), 0);
    EXPECT_EQ(writeFile(p("c1/mon_groups/m1/tasks"), pa), EINVAL);

    // Errors.
    EXPECT_EQ(writeFile(p("c1/tasks"), std::to_string(deadPid())), ESRCH);
    EXPECT_EQ(writeFile(p("c1/tasks"), "abc"), EINVAL);
    EXPECT_EQ(writeFile(p("c1/tasks"), "-5"), EINVAL);
    EXPECT_EQ(writeFile(p("c1/tasks"), std::string(5000, '1')), E2BIG);

    // Comma list: processed until the first failure.
    EXPECT_EQ(writeFile(p("c1/tasks"), pa + "," + std::to_string(deadPid()) + "," + pb), ESRCH);
    EXPECT_EQ(tasksIn(p("c1/tasks")), std::set<pid_t>{a.pid()});
    EXPECT_EQ(writeFile(p("c1/tasks"), pa + "," + pb + "\n"), 0);
    EXPECT_EQ(tasksIn(p("c1/tasks")), (std::set<pid_t>{a.pid(), b.pid()}));

    // A dead task disappears from the list.
    b.reset();
    EXPECT_EQ(tasksIn(p("c1/tasks")), std::set<pid_t>{a.pid()});
}

TEST_F(Emu, RmdirMovesTasksToParent) {
    ChildProcess a(spawnSleeper());
    ChildProcess b(spawnSleeper());
    ASSERT_EQ(mkdirErr(p("c1")), 0);
    ASSERT_EQ(mkdirErr(p("c1/mon_groups/m1")), 0);
    ASSERT_EQ(mkdirErr(p("c1/mon_groups/m2")), 0);
    ASSERT_EQ(writeFile(p("c1/tasks"), std::to_string(a.pid()) + "," + std::to_string(b.pid())), 0);
    ASSERT_EQ(writeFile(p("c1/mon_groups/m1/tasks"), std::to_string(a.pid())), 0);
    ASSERT_EQ(writeFile(p("c1/mon_groups/m2/tasks"), std::to_string(b.pid())), 0);
    ASSERT_EQ(rmdirErr(p("c1/mon_groups/m1")), 0);
    EXPECT_EQ(tasksIn(p("c1/tasks")), (std::set<pid_t>{a.pid(), b.pid()}));
    EXPECT_EQ(tasksIn(p("c1/mon_groups/m2/tasks")), std::set<pid_t>{b.pid()});
    ASSERT_EQ(rmdirErr(p("c1")), 0);
    EXPECT_FALSE(exists(p("c1/mon_groups/m2")));
    auto root = tasksIn(p("tasks"));
    EXPECT_TRUE(root.count(a.pid()) && root.count(b.pid()));
    // A new group of the same name starts empty.
    ASSERT_EQ(mkdirErr(p("c1")), 0);
    EXPECT_TRUE(tasksIn(p("c1/tasks")).empty());
}

// The kernel's /proc/PID/cpu_resctrl_groups, served as .proc/PID/cpu_resctrl_groups in
// the kernel's format (fs/resctrl/rdtgroup.c, proc_resctrl_show), for processes and threads.
TEST_F(Emu, PerTaskFileInTheKernelsFormat) {
    ChildProcess a(spawnSleeper(1));
    const std::vector<pid_t> threads = threadsOf(a.pid());
    ASSERT_EQ(threads.size(), 2u);
    const pid_t other = threads[0] == a.pid() ? threads[1] : threads[0];
    auto file = [&](pid_t t) { return p(".proc/" + std::to_string(t) + "/cpu_resctrl_groups"); };
    EXPECT_EQ(readFile(file(a.pid())), "res:/\nmon:\n");
    ASSERT_EQ(mkdirErr(p("mon_groups/m0")), 0);
    ASSERT_EQ(writeFile(p("mon_groups/m0/tasks"), std::to_string(a.pid())), 0);
    EXPECT_EQ(readFile(file(a.pid())), "res:/\nmon:m0\n");
    EXPECT_EQ(readFile(file(other)), "res:/\nmon:\n") << "only the written thread moved";
    ASSERT_EQ(mkdirErr(p("c1")), 0);
    ASSERT_EQ(mkdirErr(p("c1/mon_groups/m1")), 0);
    ASSERT_EQ(writeFile(p("c1/tasks"), std::to_string(other)), 0);
    ASSERT_EQ(writeFile(p("c1/mon_groups/m1/tasks"), std::to_string(other)), 0);
    EXPECT_EQ(readFile(file(other)), "res:c1\nmon:m1\n");
    ASSERT_EQ(rmdirErr(p("c1/mon_groups/m1")), 0);
    EXPECT_EQ(readFile(file(other)), "res:c1\nmon:\n");
    // No such task: no such file, as under /proc. Never listed at the root.
    EXPECT_EQ(::open(file(deadPid()).c_str(), O_RDONLY | O_CLOEXEC), -1);
    EXPECT_EQ(errno, ENOENT);
    EXPECT_FALSE(exists(p(".proc/" + std::to_string(deadPid()))));
    for (const auto& e : std::filesystem::directory_iterator(emu->path())) {
        EXPECT_NE(e.path().filename(), ".proc");
    }
}

class EmuWithoutProcFile : public Emu {
    EmulatorOptions opts() override { return {.procFile = false}; }
};

TEST_F(EmuWithoutProcFile, AKernelWithoutCONFIG_PROC_CPU_RESCTRLHasNoPerTaskFile) {
    ChildProcess a(spawnSleeper());
    EXPECT_FALSE(exists(p(".proc")));
    EXPECT_FALSE(exists(p(".proc/" + std::to_string(a.pid()) + "/cpu_resctrl_groups")));
}

TEST_F(Emu, InheritanceAtCloneAndFork) {
    ChildProcess s(spawnSleeper(2));
    std::vector<pid_t> threads = threadsOf(s.pid());
    ASSERT_EQ(threads.size(), 3u);
    ASSERT_EQ(mkdirErr(p("c1")), 0);
    ASSERT_EQ(writeFile(p("c1/tasks"), std::to_string(s.pid())), 0);
    // Threads that existed before the move stay behind.
    EXPECT_EQ(tasksIn(p("c1/tasks")), std::set<pid_t>{s.pid()});
    auto root = tasksIn(p("tasks"));
    for (pid_t t : threads) {
        EXPECT_EQ(root.count(t), t == s.pid() ? 0u : 1u) << t;
    }

    // A process that forks a child and starts a thread after it was moved.
    int go[2], back[2];
    ASSERT_EQ(::pipe(go), 0);
    ASSERT_EQ(::pipe(back), 0);
    pid_t forker = ::fork();
    if (forker == 0) {
        char c;
        if (::read(go[0], &c, 1) != 1) {
            ::_exit(1);
        }
        pid_t kid = ::fork();
        if (kid == 0) {
            for (;;) {
                ::pause();
            }
        }
        std::thread([] {
            for (;;) {
                ::pause();
            }
        }).detach();
        pid_t ids[2] = {kid, 0};
        while (threadsOf(::getpid()).size() < 2) {
            ::usleep(1000);
        }
        ids[1] = threadsOf(::getpid()).back();
        [[maybe_unused]] ssize_t w = ::write(back[1], ids, sizeof ids);
        for (;;) {
            ::pause();
        }
    }
    ChildProcess forkerProc(forker);
    ::close(go[0]);
    ::close(back[1]);
    ASSERT_EQ(writeFile(p("c1/tasks"), std::to_string(forker)), 0);
    ASSERT_EQ(::write(go[1], "g", 1), 1);
    pid_t ids[2] = {0, 0};
    ASSERT_EQ(::read(back[0], ids, sizeof ids), static_cast<ssize_t>(sizeof ids));
    ::close(go[1]);
    ::close(back[0]);
    ChildProcess kid(ids[0]);
    auto c1 = tasksIn(p("c1/tasks"));
    EXPECT_TRUE(c1.count(forker));
    EXPECT_TRUE(c1.count(ids[0])) << "child forked after the move follows";
    EXPECT_TRUE(c1.count(ids[1])) << "thread started after the move follows";
    EXPECT_FALSE(tasksIn(p("tasks")).count(ids[0]));
    // Moving the parent later does not move the already-forked child.
    ASSERT_EQ(writeFile(p("tasks"), std::to_string(forker)), 0);
    c1 = tasksIn(p("c1/tasks"));
    EXPECT_FALSE(c1.count(forker));
    EXPECT_TRUE(c1.count(ids[0]));
}

TEST_F(Emu, CountersGrowResetAndSum) {
    ChildProcess s(spawnSleeper());
    ASSERT_EQ(mkdirErr(p("c1")), 0);
    ASSERT_EQ(mkdirErr(p("c1/mon_groups/m1")), 0);
    ASSERT_EQ(mkdirErr(p("c1/mon_groups/idle")), 0);
    ASSERT_EQ(writeFile(p("c1/tasks"), std::to_string(s.pid())), 0);
    ASSERT_EQ(writeFile(p("c1/mon_groups/m1/tasks"), std::to_string(s.pid())), 0);
    const std::string m1 = p("c1/mon_groups/m1/mon_data/mon_L3_00/");
    uint64_t t1 = counter(m1 + "mbm_total_bytes");
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    uint64_t t2 = counter(m1 + "mbm_total_bytes");
    EXPECT_GT(t2, t1);
    EXPECT_GT(counter(m1 + "mbm_local_bytes"), 0u);
    EXPECT_GT(counter(m1 + "llc_occupancy"), 0u);
    const std::string idle = p("c1/mon_groups/idle/mon_data/mon_L3_01/");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(counter(idle + "mbm_total_bytes"), 0u);
    EXPECT_EQ(counter(idle + "llc_occupancy"), 0u);
    // The CLOS reads its own plus its MON groups'.
    EXPECT_EQ(counter(p("c1/mon_data/mon_L3_00/llc_occupancy")), counter(m1 + "llc_occupancy"));
    // The MON group is read first: the counts grow between the two reads (the order in
    // which a compiler evaluates EXPECT_GE's arguments is unspecified).
    const uint64_t mon = counter(m1 + "mbm_total_bytes");
    EXPECT_GE(counter(p("c1/mon_data/mon_L3_00/mbm_total_bytes")), mon);
    // Reset at mkdir.
    uint64_t before = counter(m1 + "mbm_total_bytes");
    ASSERT_EQ(rmdirErr(p("c1/mon_groups/m1")), 0);
    ASSERT_EQ(mkdirErr(p("c1/mon_groups/m1")), 0);
    EXPECT_LT(counter(m1 + "mbm_total_bytes"), before);
    EXPECT_EQ(counter(m1 + "llc_occupancy"), 0u);
}

TEST_F(Emu, CounterInjection) {
    ASSERT_EQ(mkdirErr(p("c1")), 0);
    ASSERT_EQ(mkdirErr(p("c1/mon_groups/m1")), 0);
    emu->control("counter c1/mon_groups/m1 mbm_total_bytes Unavailable");
    emu->control("counter / llc_occupancy Error");
    emu->control("counter c1 mbm_local_bytes Unassigned");
    for (const char* d : {"mon_L3_00", "mon_L3_01"}) {
        std::string dom = std::string("/mon_data/") + d + "/";
        EXPECT_EQ(readFile(p("c1/mon_groups/m1") + dom + "mbm_total_bytes"), "Unavailable\n");
        EXPECT_EQ(readFile(p("c1/mon_groups/m1") + dom + "mbm_local_bytes"), "0\n");
        EXPECT_EQ(readFile(emu->path() + dom + "llc_occupancy"), "Error\n");
        EXPECT_EQ(readFile(p("c1") + dom + "mbm_local_bytes"), "Unassigned\n");
    }
    emu->control("counter c1/mon_groups/m1 mbm_total_bytes clear");
    EXPECT_EQ(readFile(p("c1/mon_groups/m1/mon_data/mon_L3_00/mbm_total_bytes")), "0\n");
    EXPECT_THROW(emu->control("counter nosuch llc_occupancy Error"), std::runtime_error);
    EXPECT_THROW(emu->control("counter c1 bogus_event Error"), std::runtime_error);
    EXPECT_THROW(emu->control("counter c1 llc_occupancy 42"), std::runtime_error);
    EXPECT_THROW(emu->control("frobnicate"), std::runtime_error);
    EXPECT_EQ(emu->control("ping"), "pong");
}

// The sum over both L3 domains of a group's event.
static uint64_t summed(const std::string& mount, const std::string& group, const char* event) {
    const std::string base = mount + "/" + group;
    return counter(base + "/mon_data/mon_L3_00/" + event) +
           counter(base + "/mon_data/mon_L3_01/" + event);
}

TEST_F(Emu, DrivenCountersGrowAtTheSetRateAndCtrlMonSumsIncludeMonGroups) {
    ASSERT_EQ(mkdirErr(p("c1")), 0);
    ASSERT_EQ(mkdirErr(p("c1/mon_groups/m1")), 0);
    // No task in either group: only the drive moves their counters.
    emu->drive("c1/mon_groups/m1", 200'000'000, 50'000'000, 3'000'000);
    emu->drive("c1", 100'000'000, 0, 1'000'000);
    EXPECT_EQ(summed(emu->path(), "c1/mon_groups/m1", "llc_occupancy"), 3'000'000u);
    EXPECT_EQ(counter(p("c1/mon_groups/m1/mon_data/mon_L3_01/llc_occupancy")), 1'500'000u);
    EXPECT_EQ(summed(emu->path(), "c1", "llc_occupancy"), 4'000'000u);

    const auto t0 = std::chrono::steady_clock::now();
    const uint64_t total0 = summed(emu->path(), "c1/mon_groups/m1", "mbm_total_bytes");
    const uint64_t local0 = summed(emu->path(), "c1/mon_groups/m1", "mbm_local_bytes");
    const uint64_t clos0 = summed(emu->path(), "c1", "mbm_total_bytes");
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    const uint64_t total1 = summed(emu->path(), "c1/mon_groups/m1", "mbm_total_bytes");
    const uint64_t local1 = summed(emu->path(), "c1/mon_groups/m1", "mbm_local_bytes");
    const uint64_t clos1 = summed(emu->path(), "c1", "mbm_total_bytes");
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // Wide margins: the reads themselves take time on a loaded machine.
    const double total = static_cast<double>(total1 - total0) / secs;
    EXPECT_GT(total, 200e6 * 0.7);
    EXPECT_LT(total, 200e6 * 1.3);
    const double local = static_cast<double>(local1 - local0) / secs;
    EXPECT_GT(local, 50e6 * 0.7);
    EXPECT_LT(local, 50e6 * 1.3);
    // The CLOS reads its own rate plus its MON group's: 300 MB/s.
    const double clos = static_cast<double>(clos1 - clos0) / secs;
    EXPECT_GT(clos, 300e6 * 0.7);
    EXPECT_LT(clos, 300e6 * 1.3);
    EXPECT_GE(clos1, total1);

    // Reset: the value goes down, then grows again at the same rate.
    emu->resetCounter("c1/mon_groups/m1", "mbm_total_bytes");
    const uint64_t afterReset = summed(emu->path(), "c1/mon_groups/m1", "mbm_total_bytes");
    EXPECT_LT(afterReset, total1);
    EXPECT_GE(summed(emu->path(), "c1/mon_groups/m1", "mbm_local_bytes"), local1);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_GT(summed(emu->path(), "c1/mon_groups/m1", "mbm_total_bytes"), afterReset);

    // Off: without tasks the counters stand still where they are, and the occupancy is 0.
    emu->driveOff("c1/mon_groups/m1");
    const uint64_t still = summed(emu->path(), "c1/mon_groups/m1", "mbm_local_bytes");
    EXPECT_GE(still, local1);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(summed(emu->path(), "c1/mon_groups/m1", "mbm_local_bytes"), still);
    EXPECT_EQ(summed(emu->path(), "c1/mon_groups/m1", "llc_occupancy"), 0u);
}

TEST_F(Emu, DriveOneDomainAndBadDriveCommands) {
    ASSERT_EQ(mkdirErr(p("m")), 0);
    emu->driveDomain("m", 1, 500'000'000, 100'000'000, 4096);
    const std::string d0 = p("m/mon_data/mon_L3_00/");
    const std::string d1 = p("m/mon_data/mon_L3_01/");
    EXPECT_EQ(counter(d1 + "llc_occupancy"), 4096u);
    EXPECT_EQ(counter(d0 + "llc_occupancy"), 0u);
    const uint64_t a0 = counter(d0 + "mbm_total_bytes");
    const uint64_t a1 = counter(d1 + "mbm_total_bytes");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(counter(d0 + "mbm_total_bytes"), a0);
    EXPECT_GT(counter(d1 + "mbm_total_bytes"), a1);
    // A word still wins over a driven number, and clear gives the number back.
    emu->counterWord("m", "mbm_total_bytes", "Unavailable");
    EXPECT_EQ(readFile(d1 + "mbm_total_bytes"), "Unavailable\n");
    emu->counterWord("m", "mbm_total_bytes", "clear");
    EXPECT_GT(counter(d1 + "mbm_total_bytes"), a1);
    // resetCounter "all" resets both MBM events.
    emu->resetCounter("m", "all");
    EXPECT_LT(counter(d1 + "mbm_local_bytes"), 100'000'000u / 20);

    EXPECT_THROW(emu->control("drive nosuch 1 1 1"), std::runtime_error);
    EXPECT_THROW(emu->control("drive m 2 1 1 1"), std::runtime_error); // no domain 2
    EXPECT_THROW(emu->control("drive m -1 1 1"), std::runtime_error);
    EXPECT_THROW(emu->control("drive m 1 1"), std::runtime_error);
    EXPECT_THROW(emu->control("drive m on"), std::runtime_error);
    EXPECT_THROW(emu->control("counter m llc_occupancy reset"), std::runtime_error);
    // A group made anew starts from 0 and undriven, as mkdir resets the kernel's counters.
    ASSERT_EQ(rmdirErr(p("m")), 0);
    ASSERT_EQ(mkdirErr(p("m")), 0);
    EXPECT_EQ(counter(d1 + "llc_occupancy"), 0u);
    EXPECT_EQ(counter(d1 + "mbm_total_bytes"), 0u);
}

TEST_F(Emu, FailNextMkdir) {
    emu->control("fail-next-mkdir EIO");
    EXPECT_EQ(mkdirErr(p("c1")), EIO);
    EXPECT_FALSE(exists(p("c1")));
    EXPECT_EQ(mkdirErr(p("c1")), 0); // one-shot
    emu->control("fail-next-mkdir 28");
    EXPECT_EQ(mkdirErr(p("c1/mon_groups/m")), ENOSPC);
    emu->control("fail-next-mkdir EBUSY");
    EXPECT_EQ(mkdirErr(p("c1/mon_groups/m")), EBUSY);
    EXPECT_EQ(mkdirErr(p("c1/mon_groups/m")), 0);
    EXPECT_EQ(emu->control("rmids"), "free 29 limbo 0 total 32");
    EXPECT_THROW(emu->control("fail-next-mkdir ENOTANERRNO"), std::runtime_error);
}

TEST_F(Emu, FailTasksWriteAfter) {
    ChildProcess a(spawnSleeper()), b(spawnSleeper()), c(spawnSleeper());
    ASSERT_EQ(mkdirErr(p("c1")), 0);
    emu->control("fail-tasks-write-after 1 EIO");
    EXPECT_EQ(writeFile(p("c1/tasks"), std::to_string(a.pid())), 0);
    EXPECT_EQ(writeFile(p("c1/tasks"), std::to_string(b.pid())), EIO);
    EXPECT_EQ(writeFile(p("c1/tasks"), std::to_string(c.pid())), 0); // one-shot
    EXPECT_EQ(tasksIn(p("c1/tasks")), (std::set<pid_t>{a.pid(), c.pid()}));
    emu->control("fail-tasks-write-after 0 ESRCH");
    EXPECT_EQ(writeFile(p("c1/tasks"), std::to_string(b.pid())), ESRCH);
}

TEST_F(Emu, HoldTasksWriteAfter) {
    ChildProcess a(spawnSleeper()), b(spawnSleeper());
    ASSERT_EQ(mkdirErr(p("c1")), 0);
    emu->control("hold-tasks-write-after 1");
    EXPECT_EQ(emu->control("tasks-write-held"), "0");
    EXPECT_EQ(writeFile(p("c1/tasks"), std::to_string(a.pid())), 0);
    std::atomic<int> held{-1};
    std::thread writer([&] { held = writeFile(p("c1/tasks"), std::to_string(b.pid())); });
    for (int i = 0; i < 1000 && emu->control("tasks-write-held") != "1"; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_EQ(emu->control("tasks-write-held"), "1");
    EXPECT_EQ(held.load(), -1) << "the held write returned";
    emu->control("release-tasks-write");
    writer.join();
    EXPECT_EQ(held.load(), 0);
    EXPECT_EQ(emu->control("tasks-write-held"), "0");
    EXPECT_EQ(tasksIn(p("c1/tasks")), (std::set<pid_t>{a.pid(), b.pid()}));
    // One-shot, and a hold not reached yet can be cancelled.
    emu->control("hold-tasks-write-after 5");
    emu->control("release-tasks-write");
    EXPECT_EQ(writeFile(p("c1/tasks"), std::to_string(a.pid())), 0);
    EXPECT_THROW(emu->control("hold-tasks-write-after x"), std::runtime_error);
}

// The kernel reads a counter without walking any task; the emulator's counter read needs
// a /proc scan now and then, and makes it without the model's lock, so that it holds up
// no mkdir or tasks write (and, under readers in a loop, no create).
TEST_F(Emu, ACounterReadsScanHoldsUpNoMkdirOrTasksWrite) {
    ChildProcess a(spawnSleeper());
    ASSERT_EQ(mkdirErr(p("c1")), 0);
    emu->control("hold-next-scan"); // no scan yet: the first counter read makes one
    std::atomic<bool> read{false};
    std::thread reader([&] {
        try {
            (void)counter(p("c1/mon_data/mon_L3_00/llc_occupancy"));
        } catch (const std::exception&) {
            ADD_FAILURE() << "the counter read failed";
        }
        read = true;
    });
    for (int i = 0; i < 1000 && emu->control("scan-held") != "1"; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_EQ(emu->control("scan-held"), "1");
    auto changes = std::async(std::launch::async, [&] {
        return mkdirErr(p("c1/mon_groups/m1")) == 0 &&
               writeFile(p("c1/tasks"), std::to_string(a.pid())) == 0 &&
               writeFile(p("c1/mon_groups/m1/tasks"), std::to_string(a.pid())) == 0;
    });
    const bool done = changes.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
    EXPECT_TRUE(done) << "a mkdir or tasks write waited for the scan";
    EXPECT_FALSE(read.load()) << "the counter read returned before its scan";
    emu->control("release-scan");
    reader.join();
    EXPECT_TRUE(changes.get());
    EXPECT_TRUE(read.load());
    // A task moved after the scan counts at once, and a tasks read lists it.
    ChildProcess b(spawnSleeper());
    ASSERT_EQ(mkdirErr(p("c1/mon_groups/m2")), 0);
    ASSERT_EQ(writeFile(p("c1/tasks"), std::to_string(b.pid())), 0);
    ASSERT_EQ(writeFile(p("c1/mon_groups/m2/tasks"), std::to_string(b.pid())), 0);
    EXPECT_GT(counter(p("c1/mon_groups/m2/mon_data/mon_L3_00/llc_occupancy")), 0u);
    EXPECT_EQ(tasksIn(p("c1/mon_groups/m2/tasks")), std::set<pid_t>{b.pid()});
}

class EmuSnc : public Emu {
    EmulatorOptions opts() override { return {.l3Domains = 2, .snc = 2}; }
};

TEST_F(EmuSnc, SubDomainsSum) {
    for (const char* f : {"mon_data/mon_L3_00/mon_sub_L3_00/llc_occupancy",
                          "mon_data/mon_L3_00/mon_sub_L3_01/mbm_total_bytes",
                          "mon_data/mon_L3_01/mon_sub_L3_02/mbm_local_bytes",
                          "mon_data/mon_L3_01/mon_sub_L3_03/llc_occupancy"}) {
        EXPECT_TRUE(exists(p(f))) << f;
    }
    EXPECT_FALSE(exists(p("mon_data/mon_L3_00/mon_sub_L3_02")));
    ChildProcess s(spawnSleeper(1));
    ASSERT_EQ(mkdirErr(p("c1")), 0);
    ASSERT_EQ(mkdirErr(p("c1/mon_groups/m1")), 0);
    ASSERT_EQ(writeFile(p("c1/tasks"), std::to_string(s.pid())), 0);
    ASSERT_EQ(writeFile(p("c1/mon_groups/m1/tasks"), std::to_string(s.pid())), 0);
    std::string d = p("c1/mon_groups/m1/mon_data/mon_L3_01/");
    uint64_t sum = counter(d + "llc_occupancy");
    EXPECT_GT(sum, 0u);
    EXPECT_EQ(sum, counter(d + "mon_sub_L3_02/llc_occupancy") +
                       counter(d + "mon_sub_L3_03/llc_occupancy"));
}

TEST_F(EmuSnc, ADriveIsSplitOverSubDomainsAndDomainsReadTheirSum) {
    ASSERT_EQ(mkdirErr(p("c1")), 0);
    emu->drive("c1", 0, 0, 4000);
    EXPECT_EQ(counter(p("c1/mon_data/mon_L3_00/mon_sub_L3_01/llc_occupancy")), 1000u);
    EXPECT_EQ(counter(p("c1/mon_data/mon_L3_01/llc_occupancy")), 2000u);
    emu->driveDomain("c1", 0, 0, 0, 600);
    EXPECT_EQ(counter(p("c1/mon_data/mon_L3_00/mon_sub_L3_00/llc_occupancy")), 300u);
    EXPECT_EQ(counter(p("c1/mon_data/mon_L3_01/mon_sub_L3_03/llc_occupancy")), 1000u);
}

TEST_F(Emu, NobodyGetsPermissionErrors) {
    ASSERT_EQ(mkdirErr(p("c1")), 0);
    ChildProcess s(spawnSleeper());
    std::string mnt = emu->path();
    EXPECT_EQ(inChild([&] { return mkdirErr(mnt + "/c2"); }, true), EACCES);
    EXPECT_EQ(inChild([&] { return mkdirErr(mnt + "/c1/mon_groups/m"); }, true), EACCES);
    EXPECT_EQ(inChild([&] { return rmdirErr(mnt + "/c1"); }, true), EACCES);
    EXPECT_EQ(inChild([&] { return writeFile(mnt + "/c1/tasks", std::to_string(s.pid())); }, true),
              EACCES);
    EXPECT_EQ(inChild([&] { return writeFile(mnt + "/c1/schemata", "L3:0=f\n"); }, true), EACCES);
    EXPECT_EQ(inChild([&] { return readFile(mnt + "/c1/tasks").empty() ? 0 : 1; }, true), 0);
    EXPECT_EQ(
        inChild([&] { return readFile(mnt + "/info/last_cmd_status") == "ok\n" ? 0 : 1; }, true),
        0);
    EXPECT_TRUE(exists(p("c1")));
    EXPECT_TRUE(tasksIn(p("c1/tasks")).empty());
    // Root in a child process can.
    EXPECT_EQ(inChild([&] { return writeFile(mnt + "/c1/tasks", std::to_string(s.pid())); }), 0);
    EXPECT_EQ(tasksIn(p("c1/tasks")), std::set<pid_t>{s.pid()});
}

TEST_F(Emu, WriterAndReaderInChildPidNamespace) {
    ASSERT_EQ(mkdirErr(p("c1")), 0);
    std::string tasks = p("c1/tasks");
    int res[2];
    ASSERT_EQ(::pipe(res), 0);
    pid_t mid = ::fork();
    if (mid == 0) {
        if (::unshare(CLONE_NEWPID) != 0) {
            ::_exit(3);
        }
        pid_t g = ::fork();
        if (g == 0) {
            // pid 1 of a new namespace: writes "1" and reads itself back as "1".
            int r = writeFile(tasks, "1\n");
            char out[2] = {static_cast<char>(r), readFile(tasks) == "1\n" ? 'y' : 'n'};
            [[maybe_unused]] ssize_t w = ::write(res[1], out, 2);
            for (;;) {
                ::pause();
            }
        }
        [[maybe_unused]] ssize_t w = ::write(res[1], &g, sizeof g);
        int st = 0;
        ::waitpid(g, &st, 0);
        ::_exit(0);
    }
    ChildProcess midProc(mid);
    ::close(res[1]);
    pid_t g = 0;
    ASSERT_EQ(::read(res[0], &g, sizeof g), static_cast<ssize_t>(sizeof g));
    char out[2] = {0, 0};
    ASSERT_EQ(::read(res[0], out, 2), 2);
    ::close(res[0]);
    EXPECT_EQ(out[0], 0) << "write errno " << static_cast<int>(out[0]);
    EXPECT_EQ(out[1], 'y');
    EXPECT_EQ(tasksIn(tasks), std::set<pid_t>{g}); // seen with its outer pid from here
    ::kill(g, SIGKILL);
}

// ---------------------------------------------------------------- process-level behaviour

namespace {

pid_t startEmu(const std::vector<std::string>& extra, const std::string& errFile) {
    std::vector<std::string> args = {RESCTRL_EMU_BIN};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
        int fd = ::open(errFile.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    return pid;
}

bool waitMounted(const std::string& mnt, bool want) {
    for (int i = 0; i < 1000; ++i) {
        if (findMount(mnt).mounted() == want) {
            return true;
        }
        ::usleep(5000);
    }
    return false;
}

struct MountGuard { // detaches whatever is left on failure
    std::string mnt;
    ~MountGuard() {
        if (findMount(mnt).mounted()) {
            abortFuseConnection(mnt);
            ::umount2(mnt.c_str(), MNT_DETACH);
        }
    }
};

} // namespace

TEST(EmuProcess, HelpAndBadArguments) {
    TempDir d;
    pid_t pid = startEmu({"--help"}, d.file("out"));
    int st = 0;
    ::waitpid(pid, &st, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    EXPECT_NE(readFile(d.file("out")).find("--num-rmids"), std::string::npos);
    pid = startEmu({d.path(), "--bogus"}, d.file("out"));
    ::waitpid(pid, &st, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    EXPECT_FALSE(findMount(d.path()).mounted());
}

TEST(EmuProcess, SigtermLeavesNoMount) {
    TempDir d;
    std::string mnt = d.file("mnt");
    ASSERT_EQ(::mkdir(mnt.c_str(), 0755), 0);
    MountGuard guard{mnt};
    ChildProcess emu(startEmu({mnt, "--foreground"}, d.file("err")));
    ASSERT_TRUE(waitMounted(mnt, true)) << readFile(d.file("err"));
    EXPECT_EQ(findMount(mnt).fstype, "fuse.resctrl");
    ASSERT_EQ(::kill(emu.pid(), SIGTERM), 0);
    int st = emu.wait();
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
    EXPECT_FALSE(findMount(mnt).mounted());
}

TEST(EmuProcess, DaemonizesWhenReady) {
    TempDir d;
    std::string mnt = d.file("mnt");
    ASSERT_EQ(::mkdir(mnt.c_str(), 0755), 0);
    MountGuard guard{mnt};
    pid_t pid = startEmu({mnt, "--num-rmids", "7"}, d.file("err"));
    int st = 0;
    ::waitpid(pid, &st, 0);
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << readFile(d.file("err"));
    // Usable at once, without polling.
    EXPECT_EQ(findMount(mnt).fstype, "fuse.resctrl");
    EXPECT_EQ(readFile(mnt + "/info/L3_MON/num_rmids"), "7\n");
    // Unmounting ends the daemon.
    ASSERT_EQ(::umount2(mnt.c_str(), 0), 0);
    EXPECT_FALSE(findMount(mnt).mounted());
}

TEST(EmuFixture, StopAndRestart) {
    EmulatorMount emu;
    std::string mnt = emu.path();
    ASSERT_EQ(mkdirErr(mnt + "/c1"), 0);
    pid_t first = emu.pid();
    emu.stop();
    EXPECT_FALSE(emu.running());
    EXPECT_FALSE(findMount(mnt).mounted());
    EXPECT_EQ(::kill(first, 0), -1);
    emu.stop(); // idempotent
    emu.restart();
    EXPECT_TRUE(emu.running());
    EXPECT_EQ(emu.path(), mnt);
    EXPECT_EQ(findMount(mnt).fstype, "fuse.resctrl");
    EXPECT_FALSE(exists(mnt + "/c1")); // fresh state
    EXPECT_EQ(emu.control("ping"), "pong");
}

TEST(EmuFixture, DestructorCleansUpWhenATestFails) {
    std::string mnt, dir;
    pid_t pid = -1;
    try {
        EmulatorMount emu;
        mnt = emu.path();
        pid = emu.pid();
        ASSERT_EQ(mkdirErr(mnt + "/c1"), 0);
        throw std::runtime_error("simulated failure");
    } catch (const std::runtime_error&) {
    }
    EXPECT_FALSE(findMount(mnt).mounted());
    EXPECT_FALSE(exists(mnt));
    EXPECT_EQ(::kill(pid, 0), -1);
}

TEST(EmuFixture, HungEmulatorCannotHangTheTests) {
    EmulatorMount emu;
    std::string mnt = emu.path();
    ASSERT_EQ(::kill(emu.pid(), SIGSTOP), 0);
    // kill(2) returns before every FUSE thread has stopped: one still running could answer
    // the stat below. Wait until each is in state T.
    auto allStopped = [&] {
        for (pid_t tid : threadsOf(emu.pid())) {
            const std::string st = readFile("/proc/" + std::to_string(emu.pid()) + "/task/" +
                                            std::to_string(tid) + "/stat");
            const std::size_t paren = st.rfind(')');
            if (paren == std::string::npos || paren + 2 >= st.size() || st[paren + 2] != 'T') {
                return false;
            }
        }
        return true;
    };
    const auto stopDeadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!allStopped() && std::chrono::steady_clock::now() < stopDeadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_TRUE(allStopped());
    // A caller stuck on the mount is released by the watchdog (ENOTCONN). The name is one
    // nobody looked up: the kernel keeps names and attributes it was given (60 s), so a
    // stat of a file some other process had looked up could be answered without the
    // emulator; a name that does not exist is asked for every time.
    auto t0 = std::chrono::steady_clock::now();
    int r = inChild([&] {
        struct stat st {};
        return ::stat((mnt + "/no-such-file-" + std::to_string(::getpid())).c_str(), &st) == 0
                   ? 0
                   : errno;
    });
    auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // The aborted request fails with ECONNABORTED, later ones with ENOTCONN.
    EXPECT_TRUE(r == ECONNABORTED || r == ENOTCONN) << r;
    EXPECT_TRUE(emu.watchdogFired());
    EXPECT_LT(secs, EmulatorMount::kWatchdogSeconds + 5.0);
    auto t1 = std::chrono::steady_clock::now();
    emu.stop();
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count(), 3.0);
    EXPECT_FALSE(findMount(mnt).mounted());
}

TEST_F(Emu, ServesTheKernelsCacheinfoForEachL3Domain) {
    // Not listed in the root, as the kernel's resctrl has no such entry.
    EXPECT_FALSE(listDir(emu->path()).count(".sys"));
    const std::string cpu = p(".sys/devices/system/cpu/");
    EXPECT_EQ(listDir(cpu), (std::set<std::string>{"cpu0", "cpu1"}));
    EXPECT_EQ(listDir(cpu + "cpu1/cache"), (std::set<std::string>{"index0", "index3"}));
    EXPECT_EQ(readFile(cpu + "cpu1/cache/index3/level"), "3\n");
    EXPECT_EQ(readFile(cpu + "cpu1/cache/index3/id"), "1\n");
    EXPECT_EQ(readFile(cpu + "cpu1/cache/index3/size"), "32768K\n");
    EXPECT_EQ(readFile(cpu + "cpu0/cache/index0/level"), "1\n");
    EXPECT_FALSE(exists(cpu + "cpu2"));
    EXPECT_NE(writeFile(cpu + "cpu0/cache/index3/size", "1K"), 0);
}

class EmuWithDomainBandwidth : public Emu {
    EmulatorOptions opts() override { return {.l3SizeKib = 1024, .domainMbps = 1000}; }
};

TEST_F(EmuWithDomainBandwidth, UndrivenTasksStayWithinTheirPartOfTheDomain) {
    EXPECT_EQ(readFile(p(".sys/devices/system/cpu/cpu0/cache/index3/size")), "1024K\n");
    // Every task of the host is in the root group, undriven: together they may use 10 % of
    // each domain's 1000 MB/s and of its 1 MiB cache, however many there are.
    const std::string d = p("mon_data/mon_L3_01/");
    const uint64_t before = counter(d + "mbm_total_bytes");
    const auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    const uint64_t after = counter(d + "mbm_total_bytes");
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double rate = static_cast<double>(after - before) / seconds;
    EXPECT_GT(rate, 0);
    EXPECT_LE(rate, 100e6 * 1.05) << "bytes/s of the undriven tasks on one domain";
    EXPECT_LE(counter(d + "llc_occupancy"), 1024u * 1024 / 10);
    // A driven group is not held to it: a test sets what it wants.
    ASSERT_EQ(mkdirErr(p("mon_groups/m")), 0);
    emu->drive("mon_groups/m", 2'000'000'000, 0, 4096);
    EXPECT_EQ(counter(p("mon_groups/m/mon_data/mon_L3_00/llc_occupancy")), 2048u);
}
