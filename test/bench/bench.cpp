// rdtmon-bench: what rdtmon costs a container start, a burst of starts, a collection at
// scale, and the service's idle footprint. Everything runs on a private dbus-daemon (the
// real policy) against resctrl-emu; the host's bus and resctrl are never touched.
//
//   rdtmon-bench [--quick] [--counters] [--json FILE]
//   (--counters: fill the groups, then only ListGroups, GetCounters and GetAllCounters)
//
// It prints a table and optionally writes the same numbers as JSON. It never fails on a
// number, only on an error: a hook that exits non-zero or writes to stderr, a group that
// was not made (or not removed), a call that returns a D-Bus error. Exit codes: 0 done,
// 1 an error (printed), 2 usage, 77 cannot run here (not root, no FUSE, no dbus-daemon, no
// jq).

#include "EmulatorMount.h"
#include "PrivateBus.h"
#include "Proc.h"
#include "RdtmonClient.h"
#include "RdtmondProcess.h"
#include "TempDir.h"
#include "TestCgroup.h"
#include "UniqueFd.h"

#include <nlohmann/json.hpp>
#include <sdbus-c++/sdbus-c++.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <grp.h>
#include <iostream>
#include <map>
#include <poll.h>
#include <set>
#include <spawn.h>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

using namespace rdtmon::test;
using Clock = std::chrono::steady_clock;
using rdtmon::UniqueFd;

namespace {

constexpr int kExitSkip = 77;

[[noreturn]] void error(const std::string& what) {
    throw std::runtime_error(what);
}

double msSince(Clock::time_point t0, Clock::time_point t1 = Clock::now()) {
    return std::chrono::duration<double, std::milli>(t1 - t0).count();
}

bool isDir(const std::string& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string readFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// --- statistics --------------------------------------------------------------------------

struct Row {
    std::string name;
    std::vector<double> ms; // one sample per run
    std::string note;

    double pct(double p) const {
        std::vector<double> v = ms;
        std::sort(v.begin(), v.end());
        if (v.empty()) {
            return 0;
        }
        // Nearest-rank percentile.
        auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
        return v[std::clamp<std::size_t>(rank, 1, v.size()) - 1];
    }
    double median() const {
        std::vector<double> v = ms;
        std::sort(v.begin(), v.end());
        if (v.empty()) {
            return 0;
        }
        std::size_t n = v.size();
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    }
};

struct Scalar {
    std::string name;
    double value;
    std::string unit;
    std::string note;
};

struct Report {
    std::vector<Row> rows;
    std::vector<Scalar> scalars;

    Row& add(Row r) {
        rows.push_back(std::move(r));
        printRow(rows.back());
        return rows.back();
    }
    void scalar(std::string name, double value, std::string unit, std::string note = "") {
        scalars.push_back({std::move(name), value, std::move(unit), std::move(note)});
        printScalar(scalars.back());
    }
    const Row* find(const std::string& name) const {
        for (const Row& r : rows) {
            if (r.name == name) {
                return &r;
            }
        }
        return nullptr;
    }

    static void printRow(const Row& r) {
        std::printf("  %-58s %5zu %9.3f %9.3f %9.3f  %s\n", r.name.c_str(), r.ms.size(), r.median(),
                    r.pct(90), r.pct(99), r.note.c_str());
        std::fflush(stdout);
    }
    static void printScalar(const Scalar& s) {
        std::printf("  %-58s %15.3f %-6s %s\n", s.name.c_str(), s.value, s.unit.c_str(),
                    s.note.c_str());
        std::fflush(stdout);
    }
};

// --- spawning processes and timing them ---------------------------------------------------

long pidfdOpen(pid_t pid) {
    return ::syscall(SYS_pidfd_open, pid, 0);
}

// A child started with posix_spawn (vfork-like: the parent's own cost stays small), stdin
// fed from a pipe filled before the spawn, stdout to /dev/null, stderr to a pipe.
struct Spawned {
    pid_t pid = -1;
    int pidfd = -1;
    int errFd = -1;
    Clock::time_point start;
    Clock::time_point end;
    int status = -1;
    std::string err;
};

class Spawner {
public:
    explicit Spawner(std::vector<std::string> extraEnv) {
        for (char** e = environ; *e != nullptr; ++e) {
            std::string s = *e;
            bool overridden = false;
            for (const std::string& x : extraEnv) {
                if (s.substr(0, s.find('=')) == x.substr(0, x.find('='))) {
                    overridden = true;
                }
            }
            if (!overridden) {
                env_.push_back(s);
            }
        }
        env_.insert(env_.end(), extraEnv.begin(), extraEnv.end());
        devnull_ = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull_ < 0) {
            error("open /dev/null failed");
        }
    }
    ~Spawner() { ::close(devnull_); }
    Spawner(const Spawner&) = delete;
    Spawner& operator=(const Spawner&) = delete;

    Spawned start(const std::vector<std::string>& argv, const std::string& stdinText) {
        int in[2], err[2];
        if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
            error(std::string("pipe2: ") + std::strerror(errno));
        }
        // The state is small (< the 64 KiB pipe buffer): it is all there when the child
        // starts, as a runtime's would be.
        if (::write(in[1], stdinText.data(), stdinText.size()) !=
            static_cast<ssize_t>(stdinText.size())) {
            error("cannot fill the stdin pipe");
        }
        ::close(in[1]);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_adddup2(&fa, devnull_, 1);
        posix_spawn_file_actions_adddup2(&fa, err[1], 2);
        std::vector<std::string> args = argv;
        std::vector<char*> cargs;
        for (std::string& a : args) {
            cargs.push_back(a.data());
        }
        cargs.push_back(nullptr);
        std::vector<char*> cenv;
        for (std::string& e : env_) {
            cenv.push_back(e.data());
        }
        cenv.push_back(nullptr);
        Spawned s;
        s.start = Clock::now();
        int rc = ::posix_spawnp(&s.pid, cargs[0], &fa, nullptr, cargs.data(), cenv.data());
        posix_spawn_file_actions_destroy(&fa);
        ::close(in[0]);
        ::close(err[1]);
        if (rc != 0) {
            ::close(err[0]);
            error("posix_spawn " + argv[0] + ": " + std::strerror(rc));
        }
        s.errFd = err[0];
        s.pidfd = static_cast<int>(pidfdOpen(s.pid));
        if (s.pidfd < 0) {
            error(std::string("pidfd_open: ") + std::strerror(errno));
        }
        return s;
    }

    // Waits for every child (whichever exits first), stamping each one's exit time.
    static void waitAll(std::vector<Spawned>& kids, std::chrono::seconds timeout) {
        const auto deadline = Clock::now() + timeout;
        std::size_t left = kids.size();
        std::vector<pollfd> fds;
        while (left > 0) {
            fds.clear();
            std::vector<std::size_t> idx;
            for (std::size_t i = 0; i < kids.size(); ++i) {
                if (kids[i].status < 0) {
                    fds.push_back({kids[i].pidfd, POLLIN, 0});
                    idx.push_back(i);
                }
            }
            auto ms =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            if (ms.count() <= 0) {
                for (std::size_t i : idx) {
                    ::kill(kids[i].pid, SIGKILL);
                    ::waitpid(kids[i].pid, nullptr, 0);
                    kids[i].status = 0x7f00;
                    closeFds(kids[i]);
                }
                error(std::to_string(idx.size()) + " process(es) did not exit in " +
                      std::to_string(timeout.count()) + " s");
            }
            int r = ::poll(fds.data(), fds.size(), static_cast<int>(ms.count()));
            auto now = Clock::now();
            if (r < 0 && errno != EINTR) {
                error(std::string("poll: ") + std::strerror(errno));
            }
            for (std::size_t j = 0; j < fds.size(); ++j) {
                if (fds[j].revents == 0) {
                    continue;
                }
                Spawned& k = kids[idx[j]];
                int st = 0;
                if (::waitpid(k.pid, &st, 0) != k.pid) {
                    error(std::string("waitpid: ") + std::strerror(errno));
                }
                k.end = now;
                k.status = st;
                char buf[4096];
                ssize_t n;
                while ((n = ::read(k.errFd, buf, sizeof buf)) > 0) {
                    k.err.append(buf, static_cast<std::size_t>(n));
                }
                closeFds(k);
                --left;
            }
        }
    }

    // Runs one child to completion.
    Spawned run(const std::vector<std::string>& argv, const std::string& stdinText) {
        std::vector<Spawned> one{start(argv, stdinText)};
        waitAll(one, std::chrono::seconds(60));
        return one[0];
    }

private:
    static void closeFds(Spawned& k) {
        ::close(k.pidfd);
        ::close(k.errFd);
        k.pidfd = k.errFd = -1;
    }
    std::vector<std::string> env_;
    int devnull_ = -1;
};

bool exitedZero(const Spawned& s) {
    return WIFEXITED(s.status) && WEXITSTATUS(s.status) == 0;
}

std::string describe(const Spawned& s) {
    std::string how = WIFEXITED(s.status)     ? "exit " + std::to_string(WEXITSTATUS(s.status))
                      : WIFSIGNALED(s.status) ? "signal " + std::to_string(WTERMSIG(s.status))
                                              : "status " + std::to_string(s.status);
    return how + (s.err.empty() ? std::string() : ", stderr: " + s.err);
}

// --- the fixture --------------------------------------------------------------------------

struct Settings {
    bool quick = false;
    bool countersOnly = false; // --counters: fill the groups, then only the counters rows
    bool readersOnly =
        false; // --readers: fill the groups, then hook creates with and without readers
    std::string jsonPath;
    int hookRuns = 300;
    int shellRuns = 100;
    int floorRuns = 300;
    int warmRuns = 300;
    std::vector<int> bursts = {50, 200};
    int groups = 1000;
    int containers = 5000;
    int stale = 100;
    int gcRuns = 20;
    int staleRuns = 5;
    int listRuns = 20;
    int allCountersRuns = 50;
    int idleSeconds = 10;
    int scaleHookRuns = 100;
};

// A Kubernetes container's labels, as containerd's annotations carry them: what the hook
// sends, and what the floor client sends too.
const std::vector<std::pair<std::string, std::string>> kPodLabels = {
    {"pod", "web-7d9f8c6b5-x2k4q"},
    {"namespace", "shop"},
    {"container", "nginx"},
    {"pod_uid", "3f1c2a9e-0b1d-4c7e-9a55-1d2e3f4a5b6c"}};

std::string stateJson(const std::string& id, pid_t pid, const std::string& bundle,
                      bool optOut = false) {
    nlohmann::json j = {{"ociVersion", "1.0.2"}, {"id", id},
                        {"status", "creating"},  {"pid", pid},
                        {"bundle", bundle},      {"annotations", {}}};
    j["annotations"]["io.kubernetes.cri.container-type"] = "container";
    j["annotations"]["io.kubernetes.cri.sandbox-name"] = kPodLabels[0].second;
    j["annotations"]["io.kubernetes.cri.sandbox-namespace"] = kPodLabels[1].second;
    j["annotations"]["io.kubernetes.cri.container-name"] = kPodLabels[2].second;
    j["annotations"]["io.kubernetes.cri.sandbox-uid"] = kPodLabels[3].second;
    if (optOut) {
        j["annotations"]["org.rdtmon.monitoring"] = "false";
    }
    return j.dump();
}

struct ProcStatus {
    long rssKiB = -1;
    long anonKiB = -1; // RssAnon: the heap and stacks, the service's own memory
    long fileKiB = -1; // RssFile: mapped binaries and libraries, mostly shared
    long ctxSwitches = -1;
};

// The numeric fields of a /proc status file ("VmRSS:" -> 1234), by key with its colon.
std::map<std::string, long> statusFields(const std::string& path) {
    std::istringstream in(readFile(path));
    std::map<std::string, long> fields;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string key;
        long v = 0;
        if (ls >> key >> v) {
            fields[key] = v;
        }
    }
    return fields;
}

long fieldOr(const std::map<std::string, long>& f, const std::string& key, long dflt) {
    const auto it = f.find(key);
    return it == f.end() ? dflt : it->second;
}

ProcStatus procStatus(pid_t pid) {
    const std::string path = "/proc/" + std::to_string(pid) + "/status";
    const std::map<std::string, long> f = statusFields(path);
    ProcStatus st;
    st.rssKiB = fieldOr(f, "VmRSS:", -1);
    st.anonKiB = fieldOr(f, "RssAnon:", -1);
    st.fileKiB = fieldOr(f, "RssFile:", -1);
    const long vol = fieldOr(f, "voluntary_ctxt_switches:", -1);
    const long nonvol = fieldOr(f, "nonvoluntary_ctxt_switches:", -1);
    if (st.rssKiB < 0 || vol < 0 || nonvol < 0) {
        error("cannot read " + path);
    }
    st.ctxSwitches = vol + nonvol;
    return st;
}

// Sums the context switches of every thread of pid (a thread's switches are not in the
// process's own line until it exits).
long allThreadsCtx(pid_t pid) {
    long sum = 0;
    for (pid_t tid : threadsOf(pid)) {
        const std::map<std::string, long> f = statusFields(
            "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/status");
        sum += fieldOr(f, "voluntary_ctxt_switches:", 0) +
               fieldOr(f, "nonvoluntary_ctxt_switches:", 0);
    }
    return sum;
}

// A directory on tmpfs (/dev/shm), as /run/rdtmon is on a real host; removed at the end.
class ShmDir {
public:
    ShmDir() {
        std::string tmpl = "/dev/shm/rdtmon-bench-state-XXXXXX";
        if (::mkdtemp(tmpl.data()) == nullptr) {
            error(std::string("mkdtemp in /dev/shm: ") + std::strerror(errno));
        }
        path_ = tmpl;
    }
    ~ShmDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    ShmDir(const ShmDir&) = delete;
    ShmDir& operator=(const ShmDir&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

class Bench {
public:
    explicit Bench(Settings s) : s_(std::move(s)) {}

    void run();
    void writeJson() const;

private:
    std::string groupDir(const std::string& id) const { return emu_->path() + "/mon_groups/" + id; }
    // Container "ctr-N" lives in runc/ for even N, crun/ for odd N.
    std::string containerDir(const std::string& id) const {
        const int n = std::stoi(id.substr(4));
        return work_->file(n % 2 ? "crun" : "runc") + "/" + id;
    }
    std::vector<std::string> hook(const char* action) const { return {RDTMON_HOOK_BIN, action}; }

    void footprint(const char* label);
    struct HookRows; // defined after CpuAcc
    void hookRound(const std::string& prefix, HookRows* rows);
    void hookLatency(const std::string& label, int runs, pid_t pid, const std::string& prefix,
                     bool withFloor = false);
    void floors(pid_t pid);
    void shellBaseline(pid_t pid);
    void warmCalls(pid_t pid);
    void burst(int n);
    void fillGroups();
    void createUnderReaders();
    void collection();
    void counters();

    // Where the CPU went during a phase: rdtmond's and the emulator's share per operation.
    struct CpuMark {
        double daemon = 0;
        double emu = 0;
    };
    CpuMark cpuMark() const { return {cpuMs(daemon_->pid()), cpuMs(emu_->pid())}; }
    struct CpuAcc {
        double daemon = 0;
        double emu = 0;
        std::size_t ops = 0;
        void add(const CpuMark& a, const CpuMark& b, std::size_t n = 1) {
            daemon += b.daemon - a.daemon;
            emu += b.emu - a.emu;
            ops += n;
        }
        std::string note() const {
            char buf[128];
            const double n = static_cast<double>(ops ? ops : 1);
            std::snprintf(buf, sizeof buf, "CPU ms/op: rdtmond %.3f, resctrl-emu %.3f", daemon / n,
                          emu / n);
            return buf;
        }
    };
    // The timed create and delete rounds of one label.
    struct HookRows {
        explicit HookRows(const std::string& label)
            : create{"rdtmon-hook create" + label, {}, ""}, del{"rdtmon-hook delete" + label,
                                                                {},
                                                                ""} {}
        Row create;
        Row del;
        CpuAcc cpuCreate;
        CpuAcc cpuDelete;
        void addTo(Report& rep) {
            create.note = cpuCreate.note();
            del.note = cpuDelete.note();
            rep.add(std::move(create));
            rep.add(std::move(del));
        }
    };

    Settings s_;
    Report rep_;
    ShmDir stateDir_;
    std::unique_ptr<PrivateBus> bus_;
    std::unique_ptr<EmulatorMount> emu_;
    std::unique_ptr<TempDir> work_;
    std::unique_ptr<Rdtmond> daemon_;
    std::unique_ptr<Spawner> spawner_;
    std::unique_ptr<RdtmonClient> client_;
    std::string bundle_;
    std::vector<std::string> liveIds_;  // owned and listed by a state dir
    std::vector<std::string> staleIds_; // owned, listed nowhere
    // One container init per filled group: a process is in one container's group only.
    std::unique_ptr<Sleepers> fillInits_;
    std::map<std::string, uint32_t> initOf_;
    int seq_ = 0;
};

void Bench::footprint(const char* label) {
    const pid_t pid = daemon_->pid();
    // Let anything still in flight (a reply, a log line) settle first.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    long ctxA = allThreadsCtx(pid);
    std::this_thread::sleep_for(std::chrono::seconds(s_.idleSeconds));
    ProcStatus b = procStatus(pid);
    long ctxB = allThreadsCtx(pid);
    if (!daemon_->running()) {
        error("rdtmond died while idle:\n" + daemon_->log());
    }
    char note[96];
    std::snprintf(note, sizeof note, "RssAnon %.1f MiB, RssFile %.1f MiB (libraries)",
                  static_cast<double>(b.anonKiB) / 1024.0, static_cast<double>(b.fileKiB) / 1024.0);
    rep_.scalar(std::string("rdtmond VmRSS idle, ") + label, static_cast<double>(b.rssKiB) / 1024.0,
                "MiB", note);
    rep_.scalar(std::string("rdtmond wake-ups idle over ") + std::to_string(s_.idleSeconds) +
                    " s, " + label,
                static_cast<double>(ctxB - ctxA), "",
                "context switches, all threads, gc.intervalSeconds=3600");
}

// One rdtmon-hook create then delete for a fresh id; rows null: untimed (a warm-up round).
// Each round is a container of its own, a fresh sleeper (untimed) alone in a cgroup of its
// own, as a container's init is at createRuntime (so rdtmond follows it), that ends
// between the two hooks, as a container does before its poststop hook: the delete hook
// only sends the removal, and rdtmond takes it from a caller already gone only for an
// ended container. The delete's rdtmond CPU is taken once the group is gone, so it holds
// the removal's work.
void Bench::hookRound(const std::string& prefix, HookRows* rows) {
    const std::string id = prefix + std::to_string(seq_++);
    TestCgroup cg;
    ChildProcess init(spawnSleeper(0));
    cg.add(init.pid());
    const std::string st = stateJson(id, init.pid(), bundle_);
    const CpuMark m0 = cpuMark();
    Spawned c = spawner_->run(hook("create"), st);
    const CpuMark m1 = cpuMark();
    if (!exitedZero(c) || !c.err.empty()) {
        error("rdtmon-hook create " + id + ": " + describe(c));
    }
    if (!isDir(groupDir(id))) {
        error("rdtmon-hook create " + id + " exited 0 but the group does not exist");
    }
    init.reset(); // the container ends
    const CpuMark m2 = cpuMark();
    Spawned d = spawner_->run(hook("delete"), st);
    if (!exitedZero(d) || !d.err.empty()) {
        error("rdtmon-hook delete " + id + ": " + describe(d));
    }
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (isDir(groupDir(id)) && Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    const CpuMark m3 = cpuMark();
    if (isDir(groupDir(id))) {
        error("rdtmon-hook delete " + id + " exited 0 but the group still exists 5 s later");
    }
    if (rows != nullptr) {
        rows->create.ms.push_back(msSince(c.start, c.end));
        rows->del.ms.push_back(msSince(d.start, d.end));
        rows->cpuCreate.add(m0, m1);
        rows->cpuDelete.add(m2, m3);
    }
}

// rdtmon-hook create then delete for fresh ids, the service warm, one live pid. withFloor:
// each round also runs the minimal C client's AddContainer (its group removed
// in-process, untimed), so that hook and floor alternate on the same bus and machine load.
void Bench::hookLatency(const std::string& label, int runs, pid_t pid, const std::string& prefix,
                        bool withFloor) {
    HookRows rows(label);
    Row floor{"floor: minimal C sd-bus client, AddContainer" + label, {}, ""};
    const int warm = std::min(10, runs);
    CpuAcc cpuFloor;
    for (int i = 0; i < warm + runs; ++i) {
        hookRound(prefix, i >= warm ? &rows : nullptr);
        if (!withFloor) {
            continue;
        }
        const std::string fid = "floor-" + std::to_string(seq_++);
        std::vector<std::string> argv = {RDTMON_FLOOR_CLIENT_BIN, fid, std::to_string(pid)};
        for (const auto& [key, value] : kPodLabels) {
            argv.push_back(key);
            argv.push_back(value);
        }
        const CpuMark f0 = cpuMark();
        Spawned f = spawner_->run(argv, "");
        const CpuMark f1 = cpuMark();
        if (!exitedZero(f) || !f.err.empty() || !isDir(groupDir(fid))) {
            error("rdtmon-floor-client " + fid + ": " + describe(f));
        }
        CallResult r = client_->removeGroup(fid);
        if (!r.ok()) {
            error("RemoveGroup " + fid + ": " + r.error + ": " + r.message);
        }
        if (i >= warm) {
            floor.ms.push_back(msSince(f.start, f.end));
            cpuFloor.add(f0, f1);
        }
    }
    rows.addTo(rep_);
    if (withFloor) {
        floor.note = cpuFloor.note() + "; run alternately with the hook";
        rep_.add(std::move(floor));
    }
}

void Bench::floors(pid_t pid) {
    Row trueRow{"floor: exec /bin/true (process start + exit)", {}, ""};
    Row skip{"floor: rdtmon-hook create, opted out (start+parse+exit)", {}, "no D-Bus"};
    Row ping{"floor: busctl call Peer.Ping to org.rdtmon1", {}, "process + D-Bus"};
    const std::string skipState = stateJson("bench-skip", pid, bundle_, true);
    const std::vector<std::string> busctl =
        bus_->busctl({"call", "org.rdtmon1", "/org/rdtmon1", "org.freedesktop.DBus.Peer", "Ping"});
    for (int i = 0; i < 5 + s_.floorRuns; ++i) {
        Spawned t = spawner_->run({"/bin/true"}, "");
        Spawned k = spawner_->run(hook("create"), skipState);
        if (!exitedZero(k) || k.err.find("skipped create") == std::string::npos) {
            error("rdtmon-hook with the opt-out annotation: " + describe(k));
        }
        Spawned p = spawner_->run(busctl, "");
        if (!exitedZero(p)) {
            error("busctl Peer.Ping: " + describe(p));
        }
        if (i >= 5) {
            trueRow.ms.push_back(msSince(t.start, t.end));
            skip.ms.push_back(msSince(k.start, k.end));
            ping.ms.push_back(msSince(p.start, p.end));
        }
    }
    if (isDir(groupDir("bench-skip"))) {
        error("the opted-out container got a group");
    }
    rep_.add(std::move(trueRow));
    rep_.add(std::move(skip));
    rep_.add(std::move(ping));
}

void Bench::shellBaseline(pid_t pid) {
    Row create{"shell baseline create (sh+jq x5+grep+mkdir+echo)", {}, ""};
    Row del{"shell baseline delete (sh+jq+rmdir)", {}, ""};
    const std::vector<std::string> sh = {"/bin/sh", RDTMON_BENCH_SHELL_HOOK};
    for (int i = 0; i < 3 + s_.shellRuns; ++i) {
        const std::string id = "shell-" + std::to_string(seq_++);
        const std::string st = stateJson(id, pid, bundle_);
        std::vector<std::string> c = sh;
        c.push_back("create");
        Spawned a = spawner_->run(c, st);
        if (!exitedZero(a) || !a.err.empty() || !isDir(groupDir(id))) {
            error("shell baseline create " + id + ": " + describe(a));
        }
        std::vector<std::string> d = sh;
        d.push_back("delete");
        Spawned b = spawner_->run(d, st);
        if (!exitedZero(b) || !b.err.empty() || isDir(groupDir(id))) {
            error("shell baseline delete " + id + ": " + describe(b));
        }
        if (i >= 3) {
            create.ms.push_back(msSince(a.start, a.end));
            del.ms.push_back(msSince(b.start, b.end));
        }
    }
    rep_.add(std::move(create));
    rep_.add(std::move(del));
}

// The same calls from a process that is already connected: the service's own share.
void Bench::warmCalls(pid_t pid) {
    Row ping{"in-process: Peer.Ping to org.rdtmon1, warm connection", {}, "bus round trip"};
    Row create{"in-process: CreateGroup, warm connection", {}, ""};
    Row remove{"in-process: RemoveGroup, warm connection", {}, ""};
    CpuAcc cpuCreate, cpuRemove;
    auto conn = sdbus::createSessionBusConnectionWithAddress(bus_->address());
    auto proxy = sdbus::createProxy(*conn, "org.rdtmon1", "/org/rdtmon1");
    for (int i = 0; i < 10 + s_.warmRuns; ++i) {
        auto t0 = Clock::now();
        proxy->callMethod("Ping").onInterface("org.freedesktop.DBus.Peer");
        auto t1 = Clock::now();
        const std::string id = "warm-" + std::to_string(seq_++);
        const CpuMark m0 = cpuMark();
        auto t1b = Clock::now();
        CallResult c = client_->createGroup(id, static_cast<uint32_t>(pid));
        auto t2 = Clock::now();
        const CpuMark m1 = cpuMark();
        auto t2b = Clock::now();
        if (!c.ok()) {
            error("CreateGroup " + id + ": " + c.error + ": " + c.message);
        }
        CallResult r = client_->removeGroup(id);
        auto t3 = Clock::now();
        const CpuMark m2 = cpuMark();
        if (!r.ok()) {
            error("RemoveGroup " + id + ": " + r.error + ": " + r.message);
        }
        if (i >= 10) {
            ping.ms.push_back(msSince(t0, t1));
            create.ms.push_back(msSince(t1b, t2));
            remove.ms.push_back(msSince(t2b, t3));
            cpuCreate.add(m0, m1);
            cpuRemove.add(m1, m2);
        }
    }
    create.note = cpuCreate.note();
    remove.note = cpuRemove.note();
    rep_.add(std::move(ping));
    rep_.add(std::move(create));
    rep_.add(std::move(remove));
}

void Bench::burst(int n) {
    std::vector<std::unique_ptr<TestCgroup>> cgroups; // destroyed after the sleepers
    std::vector<ChildProcess> sleepers;
    std::vector<std::string> ids;
    std::vector<std::string> states;
    for (int i = 0; i < n; ++i) {
        cgroups.push_back(std::make_unique<TestCgroup>()); // as in hookRound
        sleepers.emplace_back(spawnSleeper(0));
        cgroups.back()->add(sleepers.back().pid());
        ids.push_back("burst" + std::to_string(n) + "-" + std::to_string(seq_++));
        states.push_back(stateJson(ids.back(), sleepers.back().pid(), bundle_));
    }
    for (const char* action : {"create", "delete"}) {
        const bool create = std::string(action) == "create";
        if (!create) {
            // The containers end before their poststop hooks (see hookRound).
            for (ChildProcess& p : sleepers) {
                p.reset();
            }
        }
        std::vector<Spawned> kids;
        kids.reserve(static_cast<std::size_t>(n));
        const CpuMark m0 = cpuMark();
        const auto t0 = Clock::now();
        for (int i = 0; i < n; ++i) {
            kids.push_back(spawner_->start(hook(action), states[static_cast<std::size_t>(i)]));
        }
        Spawner::waitAll(kids, std::chrono::seconds(60));
        if (!create) {
            // The delete hooks do not wait for the removals: all done when all are gone.
            const auto deadline = Clock::now() + std::chrono::seconds(10);
            auto anyLeft = [&] {
                return std::any_of(ids.begin(), ids.end(),
                                   [&](const std::string& id) { return isDir(groupDir(id)); });
            };
            while (anyLeft() && Clock::now() < deadline) {
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
        }
        const double wall = msSince(t0);
        CpuAcc cpu;
        cpu.add(m0, cpuMark(), static_cast<std::size_t>(n));
        Row row{"burst " + std::to_string(n) + ": per-hook " + action + " latency", {}, ""};
        int errors = 0;
        std::string firstError;
        for (std::size_t i = 0; i < kids.size(); ++i) {
            row.ms.push_back(msSince(kids[i].start, kids[i].end));
            bool ok =
                exitedZero(kids[i]) && kids[i].err.empty() && isDir(groupDir(ids[i])) == create;
            if (!ok) {
                ++errors;
                if (firstError.empty()) {
                    firstError = ids[i] + ": " + describe(kids[i]) +
                                 (isDir(groupDir(ids[i])) ? " (group exists)" : " (no group)");
                }
            }
        }
        if (create) {
            // Every pid must really be in its group.
            for (std::size_t i = 0; i < ids.size() && errors == 0; ++i) {
                std::string tasks = readFile(groupDir(ids[i]) + "/tasks");
                if (tasks.find(std::to_string(sleepers[i].pid()) + "\n") == std::string::npos) {
                    ++errors;
                    firstError = ids[i] + ": pid " + std::to_string(sleepers[i].pid()) +
                                 " is not in the group's tasks";
                }
            }
        }
        row.note = std::to_string(errors) + " errors; " + cpu.note();
        rep_.add(std::move(row));
        rep_.scalar("burst " + std::to_string(n) + ": time until all " + action +
                        (create ? "d (all groups exist)" : "d (all groups gone)"),
                    wall, "ms", std::to_string(errors) + " errors");
        if (errors != 0) {
            error("burst of " + std::to_string(n) + " " + action +
                  " hooks: " + std::to_string(errors) + " error(s); first: " + firstError);
        }
    }
}

void Bench::fillGroups() {
    fillInits_ = std::make_unique<Sleepers>(static_cast<std::size_t>(s_.groups));
    Row fill{"in-process: CreateGroup while filling 0 -> " + std::to_string(s_.groups), {}, ""};
    // The first and the last 10 % of the fill: what a create costs with almost no groups and
    // with almost all of them, the same kind of call on the same kind of process, in one run.
    CpuAcc cpuHead, cpuTail;
    for (int i = 0; i < s_.groups; ++i) {
        // Owned ids are spread over the state dirs' container ids; the first s_.stale of them
        // become stale when collection() removes their state dirs.
        const bool stale = i < s_.stale;
        std::string id = "ctr-" + std::to_string(i * 5);
        initOf_[id] = fillInits_->upid(static_cast<std::size_t>(i));
        const CpuMark m0 = cpuMark();
        auto t0 = Clock::now();
        CallResult c = client_->createGroup(id, initOf_[id]);
        fill.ms.push_back(msSince(t0));
        if (i >= s_.groups - s_.groups / 10) {
            cpuTail.add(m0, cpuMark());
        } else if (i < s_.groups / 10) {
            cpuHead.add(m0, cpuMark());
        }
        if (!c.ok()) {
            error("CreateGroup " + id + ": " + c.error + ": " + c.message);
        }
        (stale ? staleIds_ : liveIds_).push_back(id);
    }
    Row tail{"", std::vector<double>(fill.ms.end() - fill.ms.size() / 10, fill.ms.end()), ""};
    char tailMedian[32];
    std::snprintf(tailMedian, sizeof tailMedian, "%.3f ms", tail.median());
    fill.note = "last 10%: median " + std::string(tailMedian) + "; " + cpuTail.note() +
                "; first 10%: " + cpuHead.note().substr(std::strlen("CPU "));
    rep_.add(std::move(fill));
    if (cpuHead.ops > 0 && cpuTail.ops > 0 && cpuHead.daemon > 0) {
        rep_.scalar("ratio: rdtmond CPU per create, last / first 10% of the fill",
                    (cpuTail.daemon / static_cast<double>(cpuTail.ops)) /
                        (cpuHead.daemon / static_cast<double>(cpuHead.ops)),
                    "x", "target <= 1.2");
    }
    if (client_->listGroups().size() != static_cast<std::size_t>(s_.groups)) {
        error("ListGroups does not show " + std::to_string(s_.groups) + " groups");
    }
}

// A local user who calls GetAllCounters in a loop, as the policy lets anyone: a forked
// child as nobody on a connection of its own, until it is killed. It writes a byte to
// `replied` after each reply.
pid_t spawnCountersReader(const std::string& busAddress, int replied) {
    const pid_t pid = ::fork();
    if (pid != 0) {
        return pid;
    }
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
        ::setresuid(65534, 65534, 65534) != 0) {
        ::_exit(1);
    }
    sd_bus* bus = nullptr;
    if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, busAddress.c_str()) < 0 ||
        sd_bus_set_bus_client(bus, 1) < 0 || sd_bus_start(bus) < 0) {
        ::_exit(1);
    }
    for (;;) {
        sd_bus_message* reply = nullptr;
        sd_bus_error e{};
        const int r = sd_bus_call_method(bus, "org.rdtmon1", "/org/rdtmon1", "org.rdtmon1.Manager",
                                         "GetAllCounters", &e, &reply, "");
        sd_bus_error_free(&e);
        sd_bus_message_unref(reply);
        const char c = r >= 0 ? '+' : '-';
        (void)!::write(replied, &c, 1);
    }
}

// Hook creates while two local users loop on GetAllCounters, against the same creates with
// those readers stopped (SIGSTOP), in alternating blocks: the pairs share the machine's
// load of the moment, so the ratio shows the readers' cost and not a neighbour's burst.
void Bench::createUnderReaders() {
    const std::string base = " at " + std::to_string(s_.groups) + " groups";
    HookRows loaded(base + ", 2 readers looping GetAllCounters");
    HookRows paused(base + ", the same readers stopped (paired)");
    const int blocks = s_.quick ? 2 : 6;
    const int perBlock = 3 * s_.scaleHookRuns / blocks;
    std::vector<ChildProcess> readers;
    std::vector<UniqueFd> replied;
    for (int i = 0; i < 2; ++i) {
        int p[2];
        if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
            error(std::string("pipe2: ") + std::strerror(errno));
        }
        UniqueFd w(p[1]);
        replied.emplace_back(p[0]);
        readers.emplace_back(spawnCountersReader(bus_->address(), w.get()));
    }
    // The replies each reader got since the last call; an error reply is the bench's error.
    auto drain = [&] {
        std::size_t n = 0;
        for (UniqueFd& fd : replied) {
            char buf[256];
            for (ssize_t k; (k = ::read(fd.get(), buf, sizeof buf)) > 0;) {
                if (std::find(buf, buf + k, '-') != buf + k) {
                    error("a GetAllCounters reader got an error reply");
                }
                n += static_cast<std::size_t>(k);
            }
        }
        return n;
    };
    // Until each reader has had `n` more replies: they are looping.
    auto awaitReplies = [&](int n) {
        for (UniqueFd& fd : replied) {
            for (int k = 0; k < n; ++k) {
                pollfd pf{fd.get(), POLLIN, 0};
                char c = 0;
                if (::poll(&pf, 1, 60000) != 1 || ::read(fd.get(), &c, 1) != 1 || c != '+') {
                    error("a GetAllCounters reader got no reply in 60 s, or an error");
                }
            }
        }
    };
    auto signalReaders = [&](int sig) {
        for (ChildProcess& r : readers) {
            ::kill(r.pid(), sig);
        }
    };
    // Two replies first: the first pass opens every counter file, the later ones are the
    // steady state measured.
    awaitReplies(2);
    std::size_t replies = 0;
    double loadedMs = 0;
    for (int b = 0; b < blocks; ++b) {
        signalReaders(SIGCONT);
        drain();
        awaitReplies(1);
        hookRound("readers-", nullptr);
        const auto t0 = Clock::now();
        for (int i = 0; i < perBlock; ++i) {
            hookRound("readers-", &loaded);
        }
        loadedMs += msSince(t0);
        replies += drain();
        signalReaders(SIGSTOP);
        // A call in flight when they stopped is still read and answered: let it end.
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        hookRound("paused-", nullptr);
        for (int i = 0; i < perBlock; ++i) {
            hookRound("paused-", &paused);
        }
    }
    const double quietMedian = paused.create.median();
    const double quietP99 = paused.create.pct(99);
    const double loadedMedian = loaded.create.median();
    const double loadedP99 = loaded.create.pct(99);
    loaded.addTo(rep_);
    paused.addTo(rep_);
    rep_.scalar("GetAllCounters replies a second to the 2 readers while the hooks ran",
                static_cast<double>(replies) / (loadedMs / 1000), "/s", "");
    if (quietMedian > 0 && quietP99 > 0) {
        rep_.scalar("ratio: hook create with 2 readers / stopped, medians",
                    loadedMedian / quietMedian, "x", "target <= 1.5");
        rep_.scalar("ratio: hook create with 2 readers / stopped, p99", loadedP99 / quietP99, "x",
                    "target <= 1.5");
    }
}

void Bench::collection() {
    const std::string label =
        std::to_string(s_.groups) + " groups / " + std::to_string(s_.containers) + " containers";
    Row none{"GarbageCollect, " + label + ", 0 stale", {}, ""};
    CpuAcc cpuNone, cpuSome;
    for (int i = 0; i < s_.gcRuns; ++i) {
        uint32_t removed = 99999;
        const CpuMark m0 = cpuMark();
        auto t0 = Clock::now();
        CallResult r = client_->garbageCollect(&removed);
        none.ms.push_back(msSince(t0));
        cpuNone.add(m0, cpuMark());
        if (!r.ok() || removed != 0) {
            error("GarbageCollect with nothing stale: " + r.error + " " + r.message + " removed " +
                  std::to_string(removed));
        }
    }
    none.note = cpuNone.note();
    rep_.add(std::move(none));
    Row some{"GarbageCollect, " + label + ", " + std::to_string(s_.stale) + " stale", {}, ""};
    for (int round = 0; round < s_.staleRuns; ++round) {
        if (round > 0) {
            for (const std::string& id : staleIds_) {
                CallResult c = client_->createGroup(id, initOf_.at(id));
                if (!c.ok()) {
                    error("CreateGroup " + id + ": " + c.error + ": " + c.message);
                }
            }
        }
        // The stale containers leave their runtime's state dir.
        for (const std::string& id : staleIds_) {
            if (::rmdir(containerDir(id).c_str()) != 0) {
                error("rmdir " + containerDir(id) + ": " + std::strerror(errno));
            }
        }
        uint32_t removed = 0;
        const CpuMark m0 = cpuMark();
        auto t0 = Clock::now();
        CallResult r = client_->garbageCollect(&removed);
        some.ms.push_back(msSince(t0));
        cpuSome.add(m0, cpuMark());
        if (!r.ok() || removed != static_cast<uint32_t>(s_.stale)) {
            error("GarbageCollect with " + std::to_string(s_.stale) + " stale: " + r.error + " " +
                  r.message + " removed " + std::to_string(removed));
        }
        for (const std::string& id : staleIds_) {
            if (isDir(groupDir(id))) {
                error("stale group " + id + " survived the collection");
            }
        }
        for (const std::string& id : liveIds_) {
            if (!isDir(groupDir(id))) {
                error("live group " + id + " was removed by the collection");
            }
        }
        for (const std::string& id : staleIds_) {
            if (::mkdir(containerDir(id).c_str(), 0755) != 0) {
                error("mkdir " + containerDir(id) + ": " + std::strerror(errno));
            }
        }
    }
    some.note = cpuSome.note();
    rep_.add(std::move(some));
    // Back to the full count for what follows.
    for (const std::string& id : staleIds_) {
        CallResult c = client_->createGroup(id, initOf_.at(id));
        if (!c.ok()) {
            error("CreateGroup " + id + ": " + c.error + ": " + c.message);
        }
    }
}

void Bench::counters() {
    Row list{"ListGroups at " + std::to_string(s_.groups) + " groups", {}, ""};
    const CpuMark l0 = cpuMark();
    for (int i = 0; i < s_.listRuns; ++i) {
        auto t0 = Clock::now();
        std::vector<GroupRow> rows = client_->listGroups();
        list.ms.push_back(msSince(t0));
        if (rows.size() != static_cast<std::size_t>(s_.groups)) {
            error("ListGroups returned " + std::to_string(rows.size()) + " rows");
        }
    }
    CpuAcc cpuList;
    cpuList.add(l0, cpuMark(), static_cast<std::size_t>(s_.listRuns));
    list.note = cpuList.note();
    rep_.add(std::move(list));
    Row get{"GetCounters, one call per group, " + std::to_string(s_.groups) + " groups", {}, ""};
    const CpuMark g0 = cpuMark();
    const auto t0 = Clock::now();
    std::vector<std::string> all = liveIds_;
    all.insert(all.end(), staleIds_.begin(), staleIds_.end());
    for (const std::string& id : all) {
        CountersMap m;
        auto t = Clock::now();
        CallResult r = client_->getCounters(id, &m);
        get.ms.push_back(msSince(t));
        if (!r.ok() || m.empty()) {
            error("GetCounters " + id + ": " + r.error + " " + r.message);
        }
    }
    const double total = msSince(t0);
    CpuAcc cpuGet;
    cpuGet.add(g0, cpuMark(), all.size());
    get.note = cpuGet.note();
    rep_.add(std::move(get));
    rep_.scalar("GetCounters for all " + std::to_string(s_.groups) + " groups, total", total, "ms");

    // The same in one call: every owned group plus the CTRL_MON groups' own counters.
    Row bulk{"GetAllCounters at " + std::to_string(s_.groups) + " groups", {}, ""};
    auto conn = sdbus::createSessionBusConnectionWithAddress(bus_->address());
    conn->setMethodCallTimeout(std::chrono::seconds(30));
    auto proxy = sdbus::createProxy(*conn, "org.rdtmon1", "/org/rdtmon1");
    const CpuMark b0 = cpuMark();
    Clock::time_point last{};
    for (int i = 0; i < s_.allCountersRuns; ++i) {
        uint64_t usec = 0;
        std::vector<sdbus::Struct<std::string, std::map<std::string, std::string>, CountersMap>>
            groups;
        // Passes start at most every 500 ms (CountersReader::kMinInterval): each call comes
        // later than that, so the row times a pass, not the wait for one.
        std::this_thread::sleep_until(last + std::chrono::milliseconds(520));
        auto t = Clock::now();
        last = t;
        try {
            proxy->callMethod("GetAllCounters")
                .onInterface("org.rdtmon1.Manager")
                .storeResultsTo(usec, groups);
        } catch (const sdbus::Error& e) {
            error("GetAllCounters: " + e.getName() + " " + e.getMessage());
        }
        bulk.ms.push_back(msSince(t));
        std::size_t owned = 0;
        for (const auto& g : groups) {
            owned += std::get<0>(g).rfind('/', 0) == 0 ? 0 : 1;
            if (std::get<2>(g).empty()) {
                error("GetAllCounters: no counters for " + std::get<0>(g));
            }
        }
        if (owned != all.size() || usec == 0) {
            error("GetAllCounters returned " + std::to_string(owned) + " owned groups");
        }
    }
    CpuAcc cpuBulk;
    cpuBulk.add(b0, cpuMark(), static_cast<std::size_t>(s_.allCountersRuns));
    bulk.note = cpuBulk.note() + "; calls 520 ms apart; target <= 50 ms";
    rep_.add(std::move(bulk));
}

void Bench::run() {
    struct utsname u {};
    ::uname(&u);
    double load[3] = {0, 0, 0};
    ::getloadavg(load, 3);
    std::printf("rdtmon-bench (%s mode): %u cores, kernel %s, load average %.2f at start\n",
                s_.quick ? "quick" : "full", std::thread::hardware_concurrency(), u.release,
                load[0]);
    std::printf("times in ms; hooks timed from posix_spawn to exit as the runtime sees them\n\n");
    std::printf("  %-58s %5s %9s %9s %9s\n", "measurement", "n", "median", "p90", "p99");

    bus_ = std::make_unique<PrivateBus>();
    emu_ = std::make_unique<EmulatorMount>(EmulatorOptions{.numRmids = 1250, .l3Domains = 2});
    work_ = std::make_unique<TempDir>("rdtmon-bench");
    bundle_ = work_->file("bundle");
    ::mkdir(bundle_.c_str(), 0755);
    {
        std::ofstream cfg(bundle_ + "/config.json");
        cfg << R"({"ociVersion":"1.0.2","process":{"args":["sleep","inf"]},"root":{"path":"rootfs"},)"
               R"("linux":{"namespaces":[{"type":"pid"},{"type":"mount"}]}})";
    }
    // The container sources: two runtime state roots with the containers' ids as dirs.
    const std::string runc = work_->file("runc");
    const std::string crun = work_->file("crun");
    ::mkdir(runc.c_str(), 0755);
    ::mkdir(crun.c_str(), 0755);
    for (int i = 0; i < s_.containers; ++i) {
        std::string d = containerDir("ctr-" + std::to_string(i));
        if (::mkdir(d.c_str(), 0755) != 0) {
            error("mkdir " + d + ": " + std::strerror(errno));
        }
    }
    nlohmann::json cfg = {{"gc", {{"intervalSeconds", 3600}, {"graceSeconds", 0}}},
                          {"containerSources", {{{"stateDirs", {runc, crun}}}}}};
    daemon_ = std::make_unique<Rdtmond>(*bus_, Rdtmond::Options{.resctrl = emu_->path(),
                                                                .stateDir = stateDir_.path(),
                                                                .configJson = cfg.dump()});
    spawner_ = std::make_unique<Spawner>(std::vector<std::string>{
        bus_->envEntry(), "RESCTRL=" + emu_->path(), "PATH=/usr/sbin:/usr/bin:/sbin:/bin"});
    client_ = std::make_unique<RdtmonClient>(bus_->address());

    if (s_.countersOnly) {
        fillGroups();
        counters();
        return;
    }
    if (s_.readersOnly) {
        ChildProcess sleeper(spawnSleeper(0));
        fillGroups();
        hookLatency(" at " + std::to_string(s_.groups) + " groups", s_.scaleHookRuns, sleeper.pid(),
                    "scale-");
        createUnderReaders();
        return;
    }
    footprint("0 groups, fresh start");

    ChildProcess sleeper(spawnSleeper(0));
    const pid_t pid = sleeper.pid();
    hookLatency("", s_.hookRuns, pid, "hook-", /*withFloor=*/true);
    floors(pid);
    shellBaseline(pid);
    warmCalls(pid);
    for (int n : s_.bursts) {
        burst(n);
    }
    fillGroups();
    hookLatency(" at " + std::to_string(s_.groups) + " groups", s_.scaleHookRuns, pid, "scale-");
    createUnderReaders();
    collection();
    counters();
    footprint((std::to_string(s_.groups) + " groups").c_str());

    const Row* hc = rep_.find("rdtmon-hook create");
    const Row* fc = rep_.find("floor: minimal C sd-bus client, AddContainer");
    if (hc && fc && fc->median() > 0) {
        rep_.scalar("ratio: rdtmon-hook create / minimal C sd-bus client (medians)",
                    hc->median() / fc->median(), "x", "target <= 1.15");
    }
    const Row* sc = rep_.find("shell baseline create (sh+jq x5+grep+mkdir+echo)");
    const Row* hd = rep_.find("rdtmon-hook delete");
    const Row* sd = rep_.find("shell baseline delete (sh+jq+rmdir)");
    if (hc && sc && hc->median() > 0) {
        rep_.scalar("ratio: shell create / rdtmon-hook create (medians)",
                    sc->median() / hc->median(), "x");
    }
    if (hd && sd && hd->median() > 0) {
        rep_.scalar("ratio: shell delete / rdtmon-hook delete (medians)",
                    sd->median() / hd->median(), "x");
    }
    if (!daemon_->running()) {
        error("rdtmond died during the benchmark:\n" + daemon_->log());
    }
    ::getloadavg(load, 3);
    std::printf("\nload average %.2f at end\n", load[0]);
}

void Bench::writeJson() const {
    if (s_.jsonPath.empty()) {
        return;
    }
    struct utsname u {};
    ::uname(&u);
    nlohmann::json j;
    j["mode"] = s_.quick ? "quick" : "full";
    j["cores"] = std::thread::hardware_concurrency();
    j["kernel"] = u.release;
    j["rows"] = nlohmann::json::array();
    for (const Row& r : rep_.rows) {
        j["rows"].push_back({{"name", r.name},
                             {"n", r.ms.size()},
                             {"median_ms", r.median()},
                             {"p90_ms", r.pct(90)},
                             {"p99_ms", r.pct(99)},
                             {"min_ms", r.pct(0)},
                             {"max_ms", r.pct(100)},
                             {"note", r.note},
                             {"samples_ms", r.ms}});
    }
    j["scalars"] = nlohmann::json::array();
    for (const Scalar& s : rep_.scalars) {
        j["scalars"].push_back(
            {{"name", s.name}, {"value", s.value}, {"unit", s.unit}, {"note", s.note}});
    }
    std::ofstream out(s_.jsonPath);
    out << j.dump(2) << "\n";
    if (!out) {
        error("cannot write " + s_.jsonPath);
    }
}

std::optional<std::string> cannotRun() {
    if (::geteuid() != 0) {
        return "needs root (FUSE mounts, moving tasks)";
    }
    if (::access("/dev/fuse", R_OK | W_OK) != 0) {
        return "no usable /dev/fuse";
    }
    for (const char* tool : {"dbus-daemon", "jq", "busctl"}) {
        bool found = false;
        for (const char* dir : {"/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/"}) {
            if (::access((std::string(dir) + tool).c_str(), X_OK) == 0) {
                found = true;
            }
        }
        if (!found) {
            return std::string(tool) + " is not installed";
        }
    }
    return std::nullopt;
}

} // namespace

int main(int argc, char** argv) {
    Settings s;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--quick") {
            s.quick = true;
        } else if (a == "--counters") {
            s.countersOnly = true;
        } else if (a == "--readers") {
            s.readersOnly = true;
        } else if (a == "--json" && i + 1 < argc) {
            s.jsonPath = argv[++i];
        } else {
            std::cerr << "usage: rdtmon-bench [--quick] [--counters | --readers] [--json FILE]\n";
            return 2;
        }
    }
    if (s.quick) {
        s.hookRuns = 30;
        s.shellRuns = 15;
        s.floorRuns = 30;
        s.warmRuns = 50;
        s.groups = 1000;
        s.containers = 5000;
        s.gcRuns = 5;
        s.staleRuns = 1;
        s.listRuns = 3;
        s.allCountersRuns = 10;
        s.idleSeconds = 2;
        s.scaleHookRuns = 10;
    }
    if (std::optional<std::string> why = cannotRun()) {
        std::cerr << "rdtmon-bench: SKIP: " << *why << "\n";
        return kExitSkip;
    }
    try {
        Bench b(s);
        b.run();
        b.writeJson();
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::cerr << "rdtmon-bench: ERROR: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
