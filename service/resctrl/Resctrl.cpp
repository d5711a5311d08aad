#include "Resctrl.h"

#include "CacheSizes.h"
#include "Errors.h"
#include "FileIo.h"
#include "Log.h"
#include "ProcFs.h"
#include "ResctrlNames.h"
#include "ResctrlParsers.h"
#include "ResctrlPaths.h"

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <linux/openat2.h>
#include <memory>
#include <set>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace rdtmon {
namespace {

constexpr long kResctrlSuperMagic = 0x7655821;

} // namespace

namespace {

std::vector<std::string> readMonFeatures(int root, const char* dir) {
    std::vector<std::string> out;
    ReadResult r = readInfo(root, dir, "mon_features");
    if (r.err != 0) {
        return out;
    }
    std::size_t i = 0;
    while (i < r.text.size()) {
        std::size_t nl = r.text.find('\n', i);
        if (nl == std::string::npos) {
            nl = r.text.size();
        }
        std::string f = trimmed(std::string_view(r.text).substr(i, nl - i));
        if (!f.empty()) {
            out.push_back(std::move(f));
        }
        i = nl + 1;
    }
    return out;
}

unsigned readNumRmids(int root) {
    ReadResult r = readInfoL3Mon(root, "num_rmids");
    if (r.err != 0) {
        return 0;
    }
    std::string t = trimmed(r.text);
    unsigned v = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v, 10);
    if (ec != std::errc() || p != t.data() + t.size()) {
        return 0;
    }
    return v;
}

} // namespace

// ---------------------------------------------------------------------------
// Resctrl

Resctrl::Resctrl(std::string path) : path_(std::move(path)) {
    while (path_.size() > 1 && path_.back() == '/') {
        path_.pop_back();
    }
    int fd = ::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        throw Error(ErrorKind::NotSupported,
                    "cannot open resctrl root " + path_ + ": " + errnoText(err));
    }
    root_.reset(fd);
    if (OpenResult info = openDirComponent(root_.get(), "info"); info.err != 0) {
        throw Error(ErrorKind::NotSupported, path_ + " is not a resctrl filesystem: cannot open " +
                                                 path_ + "/info: " + errnoText(info.err));
    }
    struct statfs sfs {};
    if (::fstatfs(root_.get(), &sfs) == 0) {
        kernel_ = static_cast<long>(sfs.f_type) == kResctrlSuperMagic;
    }
    // Where a task's groups can be read, probed once: the kernel's per-task file (absent
    // without CONFIG_PROC_CPU_RESCTRL), or the emulator's copy of it; else tasks scans.
    struct stat st {};
    if (kernel_) {
        taskFiles_ = ::access("/proc/self/cpu_resctrl_groups", R_OK) == 0 ? TaskFiles::Proc
                                                                          : TaskFiles::None;
    } else if (::fstatat(root_.get(), kEmulatedTaskDir, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
               S_ISDIR(st.st_mode)) {
        taskFiles_ = TaskFiles::Emulated;
    }
    // info/ describes the hardware and the mount options: it cannot change while this
    // mount lives, so it is read once here, not on every property read.
    monFeatures_ = readMonFeatures(root_.get(), "L3_MON");
    telemetryFeatures_ = readMonFeatures(root_.get(), "PERF_PKG_MON");
    numRmids_ = readNumRmids(root_.get());
    // So are the caches' sizes (a whole L3 going offline takes its domain with it).
    UniqueFd cpus;
    if (kernel_) {
        cpus.reset(::open("/sys/devices/system/cpu", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    } else if (OpenResult e = openBeneath(root_.get(), kEmulatedCpuDir, O_RDONLY | O_DIRECTORY);
               e.err == 0) {
        cpus = std::move(e.fd);
    }
    if (cpus) {
        l3CacheSizes_ = readL3CacheSizes(cpus.get());
    }
}

std::optional<std::string> Resctrl::taskGroupsFile(pid_t tid) const {
    switch (taskFiles_) {
    case TaskFiles::Proc:
        return "/proc/" + std::to_string(tid) + "/cpu_resctrl_groups";
    case TaskFiles::Emulated:
        return path_ + "/" + kEmulatedTaskDir + "/" + std::to_string(tid) + "/cpu_resctrl_groups";
    case TaskFiles::None:
        break;
    }
    return std::nullopt;
}

std::string Resctrl::groupPath(const MonGroupRef& g) const {
    std::string p = path_ == "/" ? std::string() : path_;
    if (!g.ctrl.empty()) {
        p += "/" + g.ctrl;
    }
    p += "/mon_groups/" + g.name;
    return p;
}

std::string Resctrl::lastCmdStatus() const {
    OpenResult info = openDirComponent(root_.get(), "info");
    if (info.err != 0) {
        return {};
    }
    ReadResult r = readFileAt(info.fd.get(), "last_cmd_status");
    if (r.err != 0) {
        return {};
    }
    return trimmed(r.text);
}

bool Resctrl::monitoringSupported() const {
    OpenResult info = openDirComponent(root_.get(), "info");
    return info.err == 0 && openDirComponent(info.fd.get(), "L3_MON").err == 0;
}

void Resctrl::createMonGroup(const MonGroupRef& g) {
    validateRef(g);
    const std::string gp = groupPath(g);
    UniqueFd mg;
    try {
        mg = openMonGroupsDir(root_.get(), path_, g.ctrl);
    } catch (const Error& e) {
        throw Error(e.kind(), "cannot create MON group " + gp + ": " + e.what());
    }
    if (::mkdirat(mg.get(), g.name.c_str(), 0755) != 0) {
        int err = errno;
        std::string status = lastCmdStatus();
        throw Error(
            kindFromErrno(err),
            withStatus("cannot create MON group " + gp + ": mkdir: " + errnoText(err), status));
    }
}

void Resctrl::removeMonGroup(const MonGroupRef& g) {
    validateRef(g);
    const std::string gp = groupPath(g);
    UniqueFd mg;
    try {
        mg = openMonGroupsDir(root_.get(), path_, g.ctrl);
    } catch (const Error& e) {
        throw Error(e.kind(), "cannot remove MON group " + gp + ": " + e.what());
    }
    // rmdir alone: the kernel moves the group's tasks to the parent and frees its RMID.
    if (::unlinkat(mg.get(), g.name.c_str(), AT_REMOVEDIR) != 0) {
        int err = errno;
        if (err == ENOENT) {
            throw Error(ErrorKind::NoSuchGroup,
                        "cannot remove MON group " + gp + ": it does not exist");
        }
        if (err == ENOTDIR) {
            throw Error(ErrorKind::Failed,
                        "cannot remove MON group " + gp + ": it is not a directory");
        }
        std::string status = lastCmdStatus();
        throw Error(
            kindFromErrno(err),
            withStatus("cannot remove MON group " + gp + ": rmdir: " + errnoText(err), status));
    }
}

bool Resctrl::monGroupExists(const MonGroupRef& g) const {
    validateRef(g);
    // A missing component, or one that is a symlink or not a directory, means "no group".
    auto absent = [](int err) { return err == ENOENT || err == ELOOP || err == ENOTDIR; };
    UniqueFd ctrl;
    int base = root_.get();
    if (!g.ctrl.empty()) {
        OpenResult o = openDirComponent(root_.get(), g.ctrl);
        if (o.err != 0) {
            if (absent(o.err)) {
                return false;
            }
            throwErrno(o.err, "cannot check MON group " + groupPath(g));
        }
        ctrl = std::move(o.fd);
        base = ctrl.get();
    }
    for (const std::string& comp : {std::string("mon_groups"), g.name}) {
        OpenResult o = openDirComponent(base, comp);
        if (o.err != 0) {
            if (absent(o.err)) {
                return false;
            }
            throwErrno(o.err, "cannot check MON group " + groupPath(g));
        }
        ctrl = std::move(o.fd);
        base = ctrl.get();
    }
    return true;
}

std::vector<MonGroupRef> Resctrl::listMonGroups() const {
    std::vector<MonGroupRef> out;
    auto listIn = [&](int mgFd, const std::string& ctrl) {
        int err = forEachEntry(mgFd, [&](const std::string& n, unsigned char t) {
            if (entryType(mgFd, n, t) == DT_DIR) {
                out.push_back(MonGroupRef{ctrl, n});
            }
        });
        if (err != 0 && err != ENOENT) {
            throwErrno(err, "cannot list " + joinPath(path_, ctrl.empty() ? "mon_groups"
                                                                          : ctrl + "/mon_groups"));
        }
    };

    std::vector<std::string> ctrls;
    int err = forEachEntry(root_.get(), [&](const std::string& n, unsigned char t) {
        if (isReservedResctrlName(n)) {
            return;
        }
        if (entryType(root_.get(), n, t) == DT_DIR) {
            ctrls.push_back(n);
        }
    });
    if (err != 0) {
        throwErrno(err, "cannot list " + path_);
    }

    OpenResult rootMg = openDirComponent(root_.get(), "mon_groups");
    if (rootMg.err == 0) {
        listIn(rootMg.fd.get(), "");
    } else if (rootMg.err == ELOOP || rootMg.err == ENOTDIR) {
        log::warning("resctrl: " + joinPath(path_, "mon_groups") +
                     " is a symlink or not a directory; ignored");
    } else if (rootMg.err != ENOENT) {
        throwErrno(rootMg.err, "cannot open " + joinPath(path_, "mon_groups"));
    }
    for (const auto& c : ctrls) {
        OpenResult cf = openDirComponent(root_.get(), c);
        if (cf.err != 0) {
            continue; // removed meanwhile, or a symlink
        }
        OpenResult mf = openDirComponent(cf.fd.get(), "mon_groups");
        if (mf.err != 0) {
            continue;
        }
        listIn(mf.fd.get(), c);
    }
    return out;
}

} // namespace rdtmon
