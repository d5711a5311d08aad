#pragma once
// resctrl-emu: what the command line asks for (parsed in main.cpp).

#include <string>

namespace rdtmon::emu {

struct Options {
    std::string mountpoint;
    unsigned numRmids = 32;
    unsigned l3Domains = 2;
    unsigned closids = 4;
    bool foreground = false;
    unsigned limboMs = 0;
    unsigned snc = 0;
    std::string controlPath;
    // Serve .proc/<pid>/cpu_resctrl_groups, the kernel's per-task file (false: a kernel
    // built without CONFIG_PROC_CPU_RESCTRL).
    bool procFile = true;
    // Each CLOS has its own numRmids RMIDs (Arm MPAM: PMGs per PARTID), instead of one pool.
    bool rmidsPerClos = false;
    // info/L3_MON/mbm_assign_mode (README, "Assignable counters"): "" none (a kernel before
    // 6.18), "intel" (reads [default], cannot switch), "mbm_event" or "default" (AMD ABMC,
    // starting in that mode, switchable), "fixed" (Arm MPAM: mbm_event, cannot switch).
    std::string mbmAssign;
    // Assignable counters per L3 domain (num_mbm_cntrs).
    unsigned numMbmCntrs = 32;
    // Intel's telemetry events (PERF_PKG, Linux 7.0): info/PERF_PKG_MON and this many
    // mon_data/mon_PERF_PKG_XX packages (0: none, a node without them).
    unsigned perfPkgs = 0;
    // The size of each L3 cache, in KiB: .sys/devices/system/cpu/cpuN/cache/index3/size,
    // the kernel's cacheinfo, which resctrl-emu serves for the daemon under test.
    unsigned l3SizeKib = 32768;
    // Each L3 domain's memory bandwidth, in MB/s (0: no limit, the model as before). With
    // a limit, the tasks no test drives (the host's, in the root group) use 10 % of each
    // domain's bandwidth and of its cache between them, whatever their number, so that a
    // domain's load and its consumers' shares look as on a real node.
    unsigned domainMbps = 0;
};

} // namespace rdtmon::emu
