#include "Resctrl.h"

#include "Errors.h"
#include "Log.h"
#include "ResctrlParsers.h"

#include <cerrno>
#include <fstream>
#include <sys/mount.h>
#include <sys/stat.h>

// Finding resctrl in the mount table and mounting it.
namespace rdtmon {
namespace {

bool sameFile(const std::string& a, const std::string& b) {
    struct stat sa {};
    struct stat sb {};
    if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) {
        return false;
    }
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

} // namespace

std::optional<std::string> Resctrl::findMount(const std::string& mountinfo) {
    std::ifstream in(mountinfo);
    if (!in) {
        return std::nullopt;
    }
    std::string line;
    while (std::getline(in, line)) {
        // id parent maj:min root mountpoint options [optional...] - fstype source superopts
        auto f = splitSpaces(line);
        if (f.size() < 8) {
            continue;
        }
        std::size_t sep = 0;
        for (std::size_t i = 6; i < f.size(); ++i) {
            if (f[i] == "-") {
                sep = i;
                break;
            }
        }
        if (sep == 0 || sep + 1 >= f.size()) {
            continue;
        }
        if (f[sep + 1] == "resctrl") {
            return unescapeMountField(f[4]);
        }
    }
    return std::nullopt;
}

void Resctrl::mount(const std::string& path, const std::string& options) {
    if (auto m = findMount(); m && (*m == path || sameFile(*m, path))) {
        return; // already mounted here
    }
    const char* data = options.empty() ? nullptr : options.c_str();
    if (::mount("resctrl", path.c_str(), "resctrl", 0, data) == 0) {
        log::info("mounted resctrl at " + path);
        return;
    }
    int err = errno;
    std::string what = "cannot mount resctrl at " + path +
                       (options.empty() ? std::string() : " with options \"" + options + "\"");
    switch (err) {
    case ENODEV:
        throw Error(ErrorKind::NotSupported,
                    what + ": the kernel has no resctrl filesystem (no RDT support, or "
                           "CONFIG_X86_CPU_RESCTRL is off)");
    case EINVAL:
        throw Error(ErrorKind::InvalidArgument,
                    what + ": " + errnoText(err) + " (an option is not supported by this CPU)");
    case EBUSY: {
        auto m = findMount();
        if (m && (*m == path || sameFile(*m, path))) {
            return;
        }
        if (m) {
            throw Error(ErrorKind::Failed, what + ": resctrl is already mounted at " + *m +
                                               "; configure that path instead");
        }
        throw Error(ErrorKind::Failed,
                    what + ": the kernel says it is already mounted, but not in this mount "
                           "namespace; it was probably mounted inside another (private) mount "
                           "namespace, e.g. by a sandboxed service. Mount it from the host's "
                           "mount namespace (rdtmond --mount-only as ExecStartPre=+)");
    }
    default:
        throw Error(ErrorKind::Failed, what + ": " + errnoText(err));
    }
}

} // namespace rdtmon
