#pragma once

#include "TempDir.h"

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace rdtmon::test {

struct EmulatorOptions {
    unsigned numRmids = 32;
    unsigned l3Domains = 2;
    unsigned closids = 4;
    unsigned limboMs = 0;
    unsigned snc = 0;
    // Serve .proc/<pid>/cpu_resctrl_groups (false: a kernel without CONFIG_PROC_CPU_RESCTRL).
    bool procFile = true;
    // Each CLOS has its own numRmids RMIDs (Arm MPAM), instead of one pool for all.
    bool rmidsPerClos = false;
    // --mbm-assign: "" (no mbm_assign_mode file), "intel", "mbm_event", "default", "fixed".
    std::string mbmAssign;
    unsigned numMbmCntrs = 32;
    // --perf-pkg: Intel's telemetry packages (mon_PERF_PKG_XX), 0 for none.
    unsigned perfPkgs = 0;
    // --l3-size-kib (0: the emulator's default, 32 MiB) and --domain-mbps (0: no limit).
    unsigned l3SizeKib = 0;
    unsigned domainMbps = 0;
};

// Runs resctrl-emu (RESCTRL_EMU_BIN) --foreground on a fresh TempDir (mount point
// path(), control socket next to it) for the lifetime of the object.
//
// Watchdog: while the emulator runs, a thread of this object probes the mount every
// 500 ms from a forked child that only calls stat(2) on <mount>/info and _exit(2) (both
// async-signal-safe, so forking a multithreaded test is fine). If a probe does not finish
// within kWatchdogSeconds, the FUSE server is hung (deadlocked, stopped, ...): the watchdog
// aborts the connection through /sys/fs/fuse/connections/N/abort, which makes every call
// blocked on the mount (the test's own included) fail with ENOTCONN instead of hanging the
// test run. The emulator is started with PR_SET_PDEATHSIG=SIGTERM, so if the test process
// (more exactly: the thread that constructed this object) dies, the emulator unmounts
// itself. stop() stops the watchdog before it touches the emulator.
class EmulatorMount {
public:
    static constexpr int kWatchdogSeconds = 8;

    explicit EmulatorMount(EmulatorOptions opts = {});
    ~EmulatorMount();
    EmulatorMount(const EmulatorMount&) = delete;
    EmulatorMount& operator=(const EmulatorMount&) = delete;

    const std::string& path() const { return mountPoint_; }
    // Sends one control command; returns the reply text after "ok " (empty for a bare
    // "ok"); throws std::runtime_error on an "error ..." reply or a dead socket.
    std::string control(const std::string& line);
    // Counter control (test/emulator/README.md, "Control protocol"). group is relative to
    // the mount: "/", "c1", "mon_groups/m", "c1/mon_groups/m".
    // The group's own counters grow at totalBps / localBps of MBM and its occupancy reads
    // llcBytes, summed over every L3 domain (split evenly over them), from now on.
    void drive(const std::string& group, uint64_t totalBps, uint64_t localBps, uint64_t llcBytes);
    // The same on L3 domain `domain` only (the other domains keep what they had).
    void driveDomain(const std::string& group, unsigned domain, uint64_t totalBps,
                     uint64_t localBps, uint64_t llcBytes);
    // Back to the task-driven counters; the values go on from where they are.
    void driveOff(const std::string& group);
    // An MBM event (or "all": both) counts from 0 again: the value goes down.
    void resetCounter(const std::string& group, const std::string& event);
    // event ("all" for every one) reads word (Unavailable, Error, Unassigned), or its
    // number again with "clear".
    void counterWord(const std::string& group, const std::string& event, const std::string& word);
    // The group's own RMID uses watts from now on (core_energy, spread over the packages).
    void energy(const std::string& group, unsigned watts);
    // Unmounts and reaps now; idempotent; never throws, never hangs.
    void stop();
    // stop() if running, then mounts again at the same path with the same options.
    void restart();
    bool running() const { return pid_ > 0; }
    pid_t pid() const { return pid_; }
    // Set when the watchdog had to abort the connection.
    bool watchdogFired() const { return watchdogFired_; }

private:
    void start();
    void startWatchdog();
    void stopWatchdog();
    void watchdogLoop();
    std::string stderrText() const;

    EmulatorOptions opts_;
    TempDir dir_;
    std::string mountPoint_;
    std::string socketPath_;
    std::string stderrPath_;
    pid_t pid_ = -1;

    std::thread watchdog_;
    std::mutex wdMu_;
    std::condition_variable wdCv_;
    bool wdStop_ = false;
    bool watchdogFired_ = false;
};

// The mount of `mountPoint` in /proc/self/mountinfo: its "major:minor" and fstype, or
// empty strings if nothing is mounted there.
struct MountInfo {
    std::string devId;
    std::string fstype;
    bool mounted() const { return !devId.empty(); }
};
MountInfo findMount(const std::string& mountPoint);

// Aborts the FUSE connection of the mount at mountPoint (mounting fusectl on
// /sys/fs/fuse/connections if needed). Returns true if an abort was written.
bool abortFuseConnection(const std::string& mountPoint);

} // namespace rdtmon::test
