// Assignable counters (AMD ABMC, Arm MPAM; Linux 6.18+): the mode and counters that
// info/L3_MON shows, a MON group's mbm_L3_assignments, read and written, and the files of
// a group's turn at the counters.
#include "Resctrl.h"

#include "Errors.h"
#include "FileIo.h"
#include "ResctrlParsers.h"
#include "ResctrlPaths.h"

#include <cctype>
#include <cerrno>
#include <cstdio>
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

void checkEventName(const std::string& event) {
    bool word = !event.empty() && event.size() <= 64;
    for (char c : event) {
        word = word && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
    }
    if (!word) {
        throw Error(ErrorKind::InvalidArgument, "invalid event name for an assignment");
    }
}

// One write(2) of lines to mbm_L3_assignments: the kernel goes through them in order and
// stops at the first it cannot do, keeping what it did before.
void writeAssignments(const Resctrl& r, int fd, const std::string& lines, const std::string& what) {
    ssize_t n;
    do {
        n = ::write(fd, lines.data(), lines.size());
    } while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(lines.size())) {
        return;
    }
    const int err = n < 0 ? errno : EIO;
    if (err == ENOSPC) {
        throw OutOfCounters(withStatus(what + ": no counter free", r.lastCmdStatus()));
    }
    if (err == ENOENT) { // the kernel's word for an event it does not have
        throw Error(ErrorKind::InvalidArgument,
                    withStatus(what + ": no such event", r.lastCmdStatus()));
    }
    throwAssignErrno(err, what, r.lastCmdStatus());
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
    checkEventName(event);
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
    writeAssignments(*this, f.fd.get(), line, what);
}

TurnFiles Resctrl::openTurn(const MonGroupRef& g, const std::vector<std::string>& events,
                            const std::vector<unsigned>& domains) const {
    validateRef(g);
    TurnFiles t;
    t.shown_ = groupPath(g);
    for (const std::string& ev : events) {
        checkEventName(ev);
        t.freeAll_ += ev + ":*=_\n";
        t.takeAll_ += ev + ":";
        for (std::size_t i = 0; i < domains.size(); ++i) {
            t.takeAll_ += i == 0 ? "" : ";";
            t.takeAll_ += std::to_string(domains[i]);
            t.takeAll_ += "=e";
        }
        t.takeAll_ += "\n";
    }
    // The group's directory only to open below it (O_PATH: no round trip of its own on FUSE).
    std::string rel = g.ctrl.empty() ? std::string() : g.ctrl + "/";
    rel += "mon_groups/" + g.name;
    OpenResult gd = openBeneath(root_.get(), rel, O_PATH | O_DIRECTORY);
    if (gd.err == ENOENT || gd.err == ENODEV) {
        throw Error(ErrorKind::NoSuchGroup, "no such monitoring group: " + t.shown_);
    }
    if (gd.err != 0) {
        throwErrno(gd.err, "cannot open " + t.shown_);
    }
    OpenResult a = openBeneath(gd.fd.get(), "mbm_L3_assignments", O_WRONLY);
    if (a.err != 0) {
        throwAssignErrno(a.err, "cannot open " + t.shown_ + "/mbm_L3_assignments", lastCmdStatus());
    }
    t.assign_ = std::move(a.fd);
    for (unsigned d : domains) {
        char dom[32];
        std::snprintf(dom, sizeof dom, "mon_L3_%02u", d); // the kernel's mon_%s_%02d
        for (const std::string& ev : events) {
            const std::string rel2 = std::string("mon_data/") + dom + "/" + ev;
            OpenResult f = openBeneath(gd.fd.get(), rel2, O_RDONLY);
            if (f.err == ENODEV) {
                throw Error(ErrorKind::NoSuchGroup, "no such monitoring group: " + t.shown_);
            }
            if (f.err != 0) {
                throwErrno(f.err, "cannot open " + t.shown_ + "/" + rel2);
            }
            t.files_.push_back(TurnFiles::File{dom, ev, std::move(f.fd)});
        }
    }
    return t;
}

void Resctrl::assignTurn(TurnFiles& t, bool on) const {
    const std::string& lines = on ? t.takeAll_ : t.freeAll_;
    if (!t.assign_ || lines.empty()) {
        throw Error(ErrorKind::Failed, "no turn files open for " + t.shown_);
    }
    writeAssignments(*this, t.assign_.get(), lines,
                     std::string("cannot ") + (on ? "take" : "free") + " the counters of " +
                         t.shown_);
}

Counters Resctrl::readTurn(const TurnFiles& t) const {
    Counters out;
    for (const TurnFiles::File& f : t.files_) {
        ReadResult r = rereadShort(f.fd.get());
        if (r.err == ENODEV || r.err == ENOENT) {
            throw Error(ErrorKind::NoSuchGroup, "no such monitoring group: " + t.shown_);
        }
        if (r.err != 0) {
            throwErrno(r.err, "cannot read " + t.shown_ + "/mon_data/" + f.domain + "/" + f.event);
        }
        if (const std::optional<uint64_t> v = parseCounterValue(r.text)) {
            out[f.domain][f.event] = *v;
        }
    }
    return out;
}

} // namespace rdtmon
