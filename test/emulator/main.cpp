// resctrl-emu: a FUSE3 emulator of the Linux resctrl filesystem for tests.
// See README.md next to this file for what it emulates and the control protocol.
// This file: the command line, the mount and the (multi-threaded) FUSE loop. The model is in
// Model.h, the FUSE callbacks in FuseOps.h, the test-control socket in ControlServer.h.
#include "ControlServer.h"
#include "FuseOps.h"
#include "Model.h"
#include "Options.h"
#include "Text.h"

#include <fuse.h>

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace rdtmon::emu {
namespace {

const char* kUsage =
    "Usage: resctrl-emu MOUNTPOINT [--num-rmids N] [--l3-domains N] [--closids N]\n"
    "                   [--foreground] [--limbo-ms N] [--snc N] [--control SOCKETPATH]\n"
    "                   [--no-proc-file] [--rmids-per-clos]\n"
    "                   [--mbm-assign intel|mbm_event|default|fixed] [--num-mbm-cntrs N]\n"
    "                   [--perf-pkg N] [--l3-size-kib N] [--domain-mbps N]\n"
    "\n"
    "Mounts a FUSE emulation of /sys/fs/resctrl (fstype fuse.resctrl) on MOUNTPOINT and\n"
    "serves it until unmounted or SIGTERM/SIGINT. Test-only.\n"
    "  --num-rmids N    RMIDs shared by CTRL_MON and MON groups, RMID 0 is root's (32)\n"
    "  --l3-domains N   mon_data/mon_L3_XX directories (2)\n"
    "  --closids N      CTRL_MON groups including the root (4)\n"
    "  --limbo-ms N     how long a freed RMID stays busy (0)\n"
    "  --snc N          mon_sub_L3_YY dirs per L3 domain (0 = no SNC)\n"
    "  --foreground     do not daemonize\n"
    "  --no-proc-file   no .proc/PID/cpu_resctrl_groups (a kernel without\n"
    "                   CONFIG_PROC_CPU_RESCTRL)\n"
    "  --rmids-per-clos each CLOS has its own N RMIDs (Arm MPAM), not one pool\n"
    "  --mbm-assign M   info/L3_MON/mbm_assign_mode (none: a kernel before 6.18): intel\n"
    "                   ([default] only), mbm_event or default (AMD ABMC in that mode,\n"
    "                   switchable), fixed (Arm MPAM: mbm_event only)\n"
    "  --num-mbm-cntrs N assignable counters per L3 domain (32)\n"
    "  --perf-pkg N     Intel's telemetry events: info/PERF_PKG_MON and N\n"
    "                   mon_data/mon_PERF_PKG_XX packages (0: none)\n"
    "  --l3-size-kib N  each L3 cache's size in KiB, served as the kernel's cacheinfo under\n"
    "                   .sys/devices/system/cpu (32768)\n"
    "  --domain-mbps N  each L3 domain's memory bandwidth in MB/s: the tasks no test drives\n"
    "                   use 10 % of it and of the cache between them (0: no limit, 1 GB/s\n"
    "                   and 64 KiB per task)\n"
    "  --control PATH   unix stream socket for test commands, one line in, one line out:\n"
    "                   ping | limbo-ms N | fail-next-mkdir ERRNO |\n"
    "                   fail-tasks-write-after N ERRNO | counter GROUP EVENT WORD|clear |\n"
    "                   energy GROUP WATTS | rmids\n";

bool parseArgs(int argc, char** argv, Options& o, std::string& err) {
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto num = [&](unsigned& out) {
            if (i + 1 >= argc) {
                err = a + " needs a value";
                return false;
            }
            auto v = parseNumber(argv[++i]);
            if (!v || *v < 0 || *v > 1000000) {
                err = a + ": not a number: " + argv[i];
                return false;
            }
            out = static_cast<unsigned>(*v);
            return true;
        };
        if (a == "--num-rmids") {
            if (!num(o.numRmids)) {
                return false;
            }
        } else if (a == "--l3-domains") {
            if (!num(o.l3Domains)) {
                return false;
            }
        } else if (a == "--closids") {
            if (!num(o.closids)) {
                return false;
            }
        } else if (a == "--limbo-ms") {
            if (!num(o.limboMs)) {
                return false;
            }
        } else if (a == "--snc") {
            if (!num(o.snc)) {
                return false;
            }
        } else if (a == "--foreground" || a == "-f") {
            o.foreground = true;
        } else if (a == "--no-proc-file") {
            o.procFile = false;
        } else if (a == "--rmids-per-clos") {
            o.rmidsPerClos = true;
        } else if (a == "--mbm-assign") {
            if (i + 1 >= argc) {
                err = "--mbm-assign needs a mode";
                return false;
            }
            o.mbmAssign = argv[++i];
            if (o.mbmAssign != "intel" && o.mbmAssign != "mbm_event" && o.mbmAssign != "default" &&
                o.mbmAssign != "fixed") {
                err = "--mbm-assign: intel, mbm_event, default or fixed, not " + o.mbmAssign;
                return false;
            }
        } else if (a == "--num-mbm-cntrs") {
            if (!num(o.numMbmCntrs)) {
                return false;
            }
        } else if (a == "--perf-pkg") {
            if (!num(o.perfPkgs)) {
                return false;
            }
        } else if (a == "--l3-size-kib") {
            if (!num(o.l3SizeKib)) {
                return false;
            }
        } else if (a == "--domain-mbps") {
            if (!num(o.domainMbps)) {
                return false;
            }
        } else if (a == "--control") {
            if (i + 1 >= argc) {
                err = "--control needs a socket path";
                return false;
            }
            o.controlPath = argv[++i];
        } else if (!a.empty() && a[0] == '-') {
            err = "unknown option " + a;
            return false;
        } else if (o.mountpoint.empty()) {
            o.mountpoint = a;
        } else {
            err = "more than one mount point given";
            return false;
        }
    }
    if (o.mountpoint.empty()) {
        err = "no mount point given";
        return false;
    }
    if (o.numRmids < 1 || o.closids < 1 || o.l3Domains < 1) {
        err = "--num-rmids, --closids and --l3-domains must be at least 1";
        return false;
    }
    return true;
}

int run(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
            std::fputs(kUsage, stdout);
            return 0;
        }
    }
    Options opts;
    std::string err;
    if (!parseArgs(argc, argv, opts, err)) {
        std::fprintf(stderr, "resctrl-emu: %s\n%s", err.c_str(), kUsage);
        return 2;
    }
    char* real = ::realpath(opts.mountpoint.c_str(), nullptr);
    if (real == nullptr) {
        std::fprintf(stderr, "resctrl-emu: mount point %s: %s\n", opts.mountpoint.c_str(),
                     std::strerror(errno));
        return 1;
    }
    opts.mountpoint = real;
    std::free(real);
    if (!opts.controlPath.empty() && opts.controlPath[0] != '/') {
        char cwd[4096];
        if (::getcwd(cwd, sizeof cwd) != nullptr) {
            opts.controlPath = std::string(cwd) + "/" + opts.controlPath;
        }
    }

    Model model(opts);
    fuse_operations ops = fuseOperations(model, ::time(nullptr));
    std::signal(SIGPIPE, SIG_IGN);

    std::unique_ptr<ControlServer> control;
    try {
        if (!opts.controlPath.empty()) {
            control = std::make_unique<ControlServer>(model, opts.controlPath);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "resctrl-emu: %s\n", e.what());
        return 1;
    }

    std::vector<std::string> args = {
        "resctrl-emu", "-o", "fsname=resctrl,subtype=resctrl,allow_other,default_permissions"};
    std::vector<char*> cargs;
    for (auto& a : args) {
        cargs.push_back(a.data());
    }
    fuse_args fargs = FUSE_ARGS_INIT(static_cast<int>(cargs.size()), cargs.data());
    // fuse_new() may copy the args into memory of its own: free it on every return
    // (LeakSanitizer in the ASan build).
    struct ArgsGuard {
        fuse_args* args;
        ~ArgsGuard() { fuse_opt_free_args(args); }
    } argsGuard{&fargs};
    fuse* f = fuse_new(&fargs, &ops, sizeof ops, nullptr);
    if (f == nullptr) {
        std::fprintf(stderr, "resctrl-emu: fuse_new failed\n");
        return 1;
    }
    // The handlers come before the mount: a SIGTERM sent as soon as the mount shows (as the
    // tests do) must end the loop and unmount, not kill the process with the mount left
    // behind. A daemonized child inherits them.
    fuse_session* se = fuse_get_session(f);
    if (fuse_set_signal_handlers(se) != 0) {
        fuse_destroy(f);
        return 1;
    }
    if (fuse_mount(f, opts.mountpoint.c_str()) != 0) {
        std::fprintf(stderr, "resctrl-emu: cannot mount on %s (is /dev/fuse available?)\n",
                     opts.mountpoint.c_str());
        fuse_remove_signal_handlers(se);
        fuse_destroy(f);
        return 1;
    }
    if (fuse_daemonize(opts.foreground ? 1 : 0) != 0) {
        fuse_remove_signal_handlers(se);
        fuse_unmount(f);
        fuse_destroy(f);
        return 1;
    }
    if (control) {
        control->start();
    }
    // Several threads take requests, so that the kernel's round trip, libfuse's decoding and
    // the reply of one request overlap another's: a reader with several reads in flight
    // (rdtmond's bulk counter read) is not served one round trip at a time. The model itself
    // is still used under its one lock (FuseOps.cpp). As many threads as cores, 2 to 4, all
    // kept: more than the cores only add wake-ups, and libfuse ends a thread idle beyond
    // the idle count and starts another at the next burst (at 1,000 groups that doubled the
    // emulator's CPU time per pass).
    const unsigned threads = std::clamp(std::thread::hardware_concurrency(), 2u, 4u);
    struct LoopConfig {
        fuse_loop_config* cfg = fuse_loop_cfg_create();
        ~LoopConfig() { fuse_loop_cfg_destroy(cfg); }
    } loop;
    fuse_loop_cfg_set_clone_fd(loop.cfg, 0);
    fuse_loop_cfg_set_max_threads(loop.cfg, threads);
    fuse_loop_cfg_set_idle_threads(loop.cfg, threads);
    int rc = fuse_loop_mt(f, loop.cfg);
    if (control) {
        control->stop();
    }
    fuse_remove_signal_handlers(se);
    fuse_unmount(f);
    fuse_destroy(f);
    control.reset();
    return rc < 0 ? 1 : 0;
}

} // namespace
} // namespace rdtmon::emu

int main(int argc, char** argv) {
    return rdtmon::emu::run(argc, argv);
}
