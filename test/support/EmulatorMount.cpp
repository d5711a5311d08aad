#include "EmulatorMount.h"

#include "UniqueFd.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

#ifndef RESCTRL_EMU_BIN
#error RESCTRL_EMU_BIN must name the resctrl-emu binary
#endif

namespace rdtmon::test {
namespace {

using Clock = std::chrono::steady_clock;

std::string realPath(const std::string& p) {
    char* r = ::realpath(p.c_str(), nullptr);
    if (r == nullptr) {
        return p;
    }
    std::string out(r);
    std::free(r);
    return out;
}

// Waits for pid up to `timeout`; true if it was reaped.
bool waitFor(pid_t pid, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        pid_t r = ::waitpid(pid, nullptr, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD)) {
            return true;
        }
        if (Clock::now() >= deadline) {
            return false;
        }
        ::usleep(5000);
    }
}

bool writeAll(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
        ssize_t n = ::write(fd, s.data() + off, s.size() - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        off += static_cast<size_t>(n);
    }
    return true;
}

} // namespace

MountInfo findMount(const std::string& mountPoint) {
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    MountInfo found;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string id, parent, dev, root, mp;
        ls >> id >> parent >> dev >> root >> mp;
        if (mp != mountPoint) {
            continue;
        }
        std::string tok;
        while (ls >> tok && tok != "-") {
        }
        std::string fstype;
        ls >> fstype;
        found = MountInfo{dev, fstype}; // the last one listed is the top of the stack
    }
    return found;
}

bool abortFuseConnection(const std::string& mountPoint) {
    MountInfo mi = findMount(mountPoint);
    if (!mi.mounted()) {
        return false;
    }
    unsigned major = 0, minor = 0;
    if (std::sscanf(mi.devId.c_str(), "%u:%u", &major, &minor) != 2) {
        return false;
    }
    const std::string base = "/sys/fs/fuse/connections";
    std::string conn = base + "/" + std::to_string(makedev(major, minor));
    struct stat st {};
    if (::stat(conn.c_str(), &st) != 0) {
        // fusectl not mounted yet (or mounted elsewhere): mount it at its usual place.
        ::mount("fusectl", base.c_str(), "fusectl", 0, nullptr);
    }
    UniqueFd fd(::open((conn + "/abort").c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) {
        return false;
    }
    return writeAll(fd.get(), "1");
}

EmulatorMount::EmulatorMount(EmulatorOptions opts)
    : opts_(opts), dir_("rdtmon-emu"), mountPoint_(realPath(dir_.path()) + "/mnt"),
      socketPath_(realPath(dir_.path()) + "/control.sock"),
      stderrPath_(realPath(dir_.path()) + "/emu.stderr") {
    // Like /sys/fs, reachable by every user (mkdtemp makes it 0700): permission checks
    // of non-root callers then happen on the emulated files, as on the kernel.
    ::chmod(dir_.path().c_str(), 0755);
    if (::mkdir(mountPoint_.c_str(), 0755) != 0) {
        throw std::runtime_error("mkdir " + mountPoint_ + ": " + std::strerror(errno));
    }
    start();
}

EmulatorMount::~EmulatorMount() {
    try {
        stop();
    } catch (...) {
    }
}

std::string EmulatorMount::stderrText() const {
    std::ifstream in(stderrPath_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void EmulatorMount::start() {
    std::vector<std::string> args = {RESCTRL_EMU_BIN,
                                     mountPoint_,
                                     "--foreground",
                                     "--control",
                                     socketPath_,
                                     "--num-rmids",
                                     std::to_string(opts_.numRmids),
                                     "--l3-domains",
                                     std::to_string(opts_.l3Domains),
                                     "--closids",
                                     std::to_string(opts_.closids),
                                     "--limbo-ms",
                                     std::to_string(opts_.limboMs),
                                     "--snc",
                                     std::to_string(opts_.snc)};
    if (!opts_.procFile) {
        args.push_back("--no-proc-file");
    }
    if (opts_.rmidsPerClos) {
        args.push_back("--rmids-per-clos");
    }
    if (opts_.l3SizeKib > 0) {
        args.insert(args.end(), {"--l3-size-kib", std::to_string(opts_.l3SizeKib)});
    }
    if (opts_.domainMbps > 0) {
        args.insert(args.end(), {"--domain-mbps", std::to_string(opts_.domainMbps)});
    }
    if (opts_.perfPkgs > 0) {
        args.insert(args.end(), {"--perf-pkg", std::to_string(opts_.perfPkgs)});
    }
    if (!opts_.mbmAssign.empty()) {
        args.insert(args.end(), {"--mbm-assign", opts_.mbmAssign, "--num-mbm-cntrs",
                                 std::to_string(opts_.numMbmCntrs)});
    }
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    UniqueFd err(::open(stderrPath_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!err || !devnull) {
        throw std::runtime_error("cannot open " + stderrPath_ + ": " + std::strerror(errno));
    }
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
        // Only async-signal-safe calls between fork and exec.
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (::getppid() != parent) {
            ::_exit(126);
        }
        ::dup2(devnull.get(), 0);
        ::dup2(err.get(), 1);
        ::dup2(err.get(), 2);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    pid_ = pid;

    auto deadline = Clock::now() + std::chrono::seconds(10);
    std::string why;
    for (;;) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            why = "resctrl-emu exited early (status " + std::to_string(status) + ")";
            break;
        }
        MountInfo mi = findMount(mountPoint_);
        struct stat st {};
        if (mi.mounted() && mi.fstype == "fuse.resctrl" &&
            ::stat((mountPoint_ + "/info").c_str(), &st) == 0 &&
            ::stat(socketPath_.c_str(), &st) == 0) {
            startWatchdog();
            return;
        }
        if (Clock::now() >= deadline) {
            why = "resctrl-emu did not mount " + mountPoint_ + " within 10 s";
            break;
        }
        ::usleep(5000);
    }
    stop();
    throw std::runtime_error(why + "; its stderr: " + stderrText());
}

void EmulatorMount::stop() {
    stopWatchdog();
    if (pid_ > 0) {
        ::kill(pid_, SIGTERM);
        ::kill(pid_, SIGCONT); // a stopped emulator (fault tests) must see the SIGTERM
        if (!waitFor(pid_, std::chrono::seconds(3))) {
            abortFuseConnection(mountPoint_);
            ::kill(pid_, SIGKILL);
            waitFor(pid_, std::chrono::seconds(3));
        }
        pid_ = -1;
    }
    if (findMount(mountPoint_).mounted()) {
        abortFuseConnection(mountPoint_);
        ::umount2(mountPoint_.c_str(), MNT_DETACH);
    }
}

void EmulatorMount::restart() {
    stop();
    start();
}

void EmulatorMount::drive(const std::string& group, uint64_t totalBps, uint64_t localBps,
                          uint64_t llcBytes) {
    control("drive " + group + " " + std::to_string(totalBps) + " " + std::to_string(localBps) +
            " " + std::to_string(llcBytes));
}

void EmulatorMount::driveDomain(const std::string& group, unsigned domain, uint64_t totalBps,
                                uint64_t localBps, uint64_t llcBytes) {
    control("drive " + group + " " + std::to_string(domain) + " " + std::to_string(totalBps) + " " +
            std::to_string(localBps) + " " + std::to_string(llcBytes));
}

void EmulatorMount::driveOff(const std::string& group) {
    control("drive " + group + " off");
}

void EmulatorMount::resetCounter(const std::string& group, const std::string& event) {
    control("counter " + group + " " + event + " reset");
}

void EmulatorMount::energy(const std::string& group, unsigned watts) {
    control("energy " + group + " " + std::to_string(watts));
}

void EmulatorMount::counterWord(const std::string& group, const std::string& event,
                                const std::string& word) {
    control("counter " + group + " " + event + " " + word);
}

std::string EmulatorMount::control(const std::string& line) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (!fd || socketPath_.size() >= sizeof addr.sun_path) {
        throw std::runtime_error("control socket: " + std::string(std::strerror(errno)));
    }
    std::memcpy(addr.sun_path, socketPath_.c_str(), socketPath_.size() + 1);
    timeval tv{5, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        throw std::runtime_error("connect " + socketPath_ + ": " + std::strerror(errno));
    }
    if (!writeAll(fd.get(), line + "\n")) {
        throw std::runtime_error("control write: " + std::string(std::strerror(errno)));
    }
    std::string reply;
    char c;
    for (;;) {
        ssize_t n = ::read(fd.get(), &c, 1);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            throw std::runtime_error("control: no reply to '" + line + "'");
        }
        if (c == '\n') {
            break;
        }
        reply += c;
    }
    if (reply == "ok") {
        return {};
    }
    if (reply.rfind("ok ", 0) == 0) {
        return reply.substr(3);
    }
    throw std::runtime_error("control '" + line + "': " + reply);
}

void EmulatorMount::startWatchdog() {
    {
        std::lock_guard lk(wdMu_);
        wdStop_ = false;
    }
    watchdog_ = std::thread([this] { watchdogLoop(); });
}

void EmulatorMount::stopWatchdog() {
    if (!watchdog_.joinable()) {
        return;
    }
    {
        std::lock_guard lk(wdMu_);
        wdStop_ = true;
    }
    wdCv_.notify_all();
    watchdog_.join();
}

void EmulatorMount::watchdogLoop() {
    // open(2) and read(2) always reach the FUSE server; a stat(2) may be answered from the
    // kernel's attribute cache (the emulator lets it cache), which would hide a hang.
    const std::string probePath = mountPoint_ + "/info/last_cmd_status";
    const char* probe = probePath.c_str();
    for (;;) {
        {
            std::unique_lock lk(wdMu_);
            if (wdCv_.wait_for(lk, std::chrono::milliseconds(500), [this] { return wdStop_; })) {
                return;
            }
        }
        pid_t child = ::fork();
        if (child < 0) {
            continue;
        }
        if (child == 0) {
            int fd = ::open(probe, O_RDONLY | O_CLOEXEC);
            if (fd >= 0) {
                char buf[64];
                [[maybe_unused]] ssize_t n = ::read(fd, buf, sizeof buf);
            }
            ::_exit(0);
        }
        auto deadline = Clock::now() + std::chrono::seconds(kWatchdogSeconds);
        bool done = false;
        while (!done) {
            done = waitFor(child, std::chrono::milliseconds(50));
            bool stopping;
            {
                std::lock_guard lk(wdMu_);
                stopping = wdStop_;
            }
            if (!done && (stopping || Clock::now() >= deadline)) {
                if (!stopping) {
                    watchdogFired_ = true;
                    abortFuseConnection(mountPoint_);
                }
                ::kill(child, SIGKILL);
                if (!waitFor(child, std::chrono::seconds(2))) {
                    abortFuseConnection(mountPoint_);
                    waitFor(child, std::chrono::seconds(2));
                }
                done = true;
            }
        }
    }
}

} // namespace rdtmon::test
