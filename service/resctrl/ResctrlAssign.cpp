// Assignable counters (AMD ABMC, Arm MPAM; Linux 6.18+): the mode and counters that
// info/L3_MON shows, and a MON group's mbm_L3_assignments, read and written.
#include "Resctrl.h"

#include "Errors.h"
#include "FileIo.h"
#include "ResctrlParsers.h"
#include "ResctrlPaths.h"

#include <cctype>
#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

namespace rdtmon {

AssignInfo Resctrl::assignInfo() const {
    AssignInfo a;
    ReadResult mode = readInfoL3Mon(root_.get(), "mbm_assign_mode");
    if (mode.err != 0) {
        return a; // an older kernel, or no L3_MON: nothing is assignable
    }
    const std::optional<AssignModes> modes = parseAssignModes(mode.text);
    if (!modes) {
        throw Error(ErrorKind::Failed,
                    path_ + "/info/L3_MON/mbm_assign_mode cannot be read as a list of modes");
    }
    a.mode = modes->active;
    a.switchable = modes->listed.size() > 1;
    auto counts = [&](const char* file) {
        ReadResult r = readInfoL3Mon(root_.get(), file);
        std::optional<std::map<unsigned, unsigned>> v;
        if (r.err == 0) {
            v = parseDomainCounts(r.text);
        }
        return v.value_or(std::map<unsigned, unsigned>{});
    };
    a.counters = counts("num_mbm_cntrs");
    if (a.mbmEvent()) {
        a.available = counts("available_mbm_cntrs");
        ReadResult r = readInfoL3Mon(root_.get(), "mbm_assign_on_mkdir");
        if (r.err == 0) {
            const std::string v = trimmed(r.text);
            if (v == "0" || v == "1") {
                a.onMkdir = v == "1";
            }
        }
    }
    return a;
}

namespace {

void throwAssignErrno(int err, const std::string& what, const std::string& status) {
    switch (err) {
    case ENOENT:
        throw Error(ErrorKind::NotSupported,
                    withStatus(what + ": no mbm_L3_assignments (counters are not assignable "
                                      "on this node)",
                               status));
    case ENODEV:
        throw Error(ErrorKind::NoSuchGroup, what + ": the group was removed");
    case EINVAL:
        throw Error(ErrorKind::InvalidArgument, withStatus(what + ": " + errnoText(err), status));
    default:
        throw Error(kindFromErrno(err), withStatus(what + ": " + errnoText(err), status));
    }
}

} // namespace

Assignments Resctrl::assignments(const MonGroupRef& g) const {
    validateRef(g);
    const std::string gp = groupPath(g);
    UniqueFd gd = openGroupDir(root_.get(), path_, g, gp);
    ReadResult r = readFileAt(gd.get(), "mbm_L3_assignments");
    if (r.err != 0) {
        throwAssignErrno(r.err, "cannot read " + gp + "/mbm_L3_assignments", lastCmdStatus());
    }
    std::optional<Assignments> a = parseAssignments(r.text);
    if (!a) {
        throw Error(ErrorKind::Failed, gp + "/mbm_L3_assignments cannot be read as assignments");
    }
    return *a;
}

void Resctrl::setAssignment(const MonGroupRef& g, const std::string& event,
                            std::optional<unsigned> domain, bool on) {
    validateRef(g);
    bool word = !event.empty() && event.size() <= 64;
    for (char c : event) {
        word = word && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
    }
    if (!word) {
        throw Error(ErrorKind::InvalidArgument, "invalid event name for an assignment");
    }
    const std::string gp = groupPath(g);
    const std::string line =
        event + ":" + (domain ? std::to_string(*domain) : "*") + (on ? "=e" : "=_") + "\n";
    const std::string what =
        "cannot write '" + line.substr(0, line.size() - 1) + "' to " + gp + "/mbm_L3_assignments";
    UniqueFd gd = openGroupDir(root_.get(), path_, g, gp);
    OpenResult f = openFileComponent(gd.get(), "mbm_L3_assignments", O_WRONLY);
    if (f.err != 0) {
        throwAssignErrno(f.err, what, lastCmdStatus());
    }
    // One write(2): the kernel takes the line whole or refuses it.
    ssize_t n;
    do {
        n = ::write(f.fd.get(), line.data(), line.size());
    } while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(line.size())) {
        return;
    }
    const int err = n < 0 ? errno : EIO;
    if (err == ENOSPC) {
        throw OutOfCounters(withStatus(what + ": no counter free", lastCmdStatus()));
    }
    if (err == ENOENT) { // the kernel's word for an event it does not have
        throw Error(ErrorKind::InvalidArgument,
                    withStatus(what + ": no such event", lastCmdStatus()));
    }
    throwAssignErrno(err, what, lastCmdStatus());
}

} // namespace rdtmon
