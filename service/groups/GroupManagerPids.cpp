// Which processes CreateGroup takes: never one already in the group of another running
// container (docs/architecture.md, "Which processes CreateGroup takes").
#include "GroupManager.h"

#include "Errors.h"
#include "Log.h"
#include "ProcFs.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <set>

namespace rdtmon {

std::optional<GroupRecord> GroupManager::ownerOfProcess(Resctrl& r, const std::string& ctrl,
                                                        pid_t pid, const std::string& exceptId) {
    std::optional<std::vector<pid_t>> tids = threadsOf(pid);
    if (!tids) {
        throw Error(ErrorKind::NoSuchProcess, "process " + std::to_string(pid) + " does not exist");
    }
    auto ownedHere = [&](const GroupRecord& rec) {
        return !rec.pending && !rec.waiting && rec.ctrl == ctrl && rec.id != exceptId;
    };
    // Each thread names its MON group in its cpu_resctrl_groups: no scan needed.
    bool allKnown = true;
    for (pid_t t : *tids) {
        std::optional<std::string> mon = r.monGroupOfTask(t);
        if (!mon) {
            allKnown = false;
            break;
        }
        if (!mon->empty()) {
            if (std::optional<GroupRecord> rec = registry_.find(*mon); rec && ownedHere(*rec)) {
                return rec;
            }
        }
    }
    if (allKnown) {
        return std::nullopt;
    }
    // Without cpu_resctrl_groups (kernels without CONFIG_PROC_CPU_RESCTRL, which is on
    // wherever resctrl is in the distributions' kernels) reading every group's tasks would cost one
    // read per owned group. Only the groups that can hold pid are read: those of a container whose
    // init is pid or one of its ancestors (a process started inside that container), and
    // those whose init is gone (leftovers). A process moved by hand into another running
    // container's group is not found this way; docs/architecture.md says so.
    const std::set<pid_t> mine(tids->begin(), tids->end());
    // Its own threads (pid may name a thread, whose leader is the init), then its ancestors.
    std::set<pid_t> lineage = mine;
    for (pid_t p = pid; p > 1 && lineage.size() < 1024;) {
        std::optional<ProcStat> st = readProcStat(p);
        if (!st || !lineage.insert(st->ppid).second) {
            break;
        }
        p = st->ppid;
    }
    for (const GroupRecord& rec : registry_.all()) {
        if (!ownedHere(rec)) {
            continue;
        }
        const auto init = static_cast<pid_t>(rec.pid);
        if (lineage.count(init) == 0 && !(::kill(init, 0) != 0 && errno == ESRCH)) {
            continue;
        }
        std::vector<pid_t> in;
        try {
            in = r.tasks(refOf(rec));
        } catch (const Error& e) {
            if (e.kind() == ErrorKind::NoSuchGroup) {
                continue; // vanished: dropped by the next look, holds nobody
            }
            throw;
        }
        if (std::any_of(in.begin(), in.end(), [&](pid_t t) { return mine.count(t) != 0; })) {
            return rec;
        }
    }
    return std::nullopt;
}

bool GroupManager::containerAlive(Resctrl& r, const GroupRecord& rec) {
    // A container lives as long as its init: the recorded pid, alive and still in the group
    // (a reused pid would not be in it).
    std::optional<ProcStat> st = readProcStat(static_cast<pid_t>(rec.pid));
    if (!st || st->state == 'Z' || st->state == 'X' || st->state == 'x') {
        return false;
    }
    try {
        std::vector<pid_t> in = r.tasks(refOf(rec));
        return std::find(in.begin(), in.end(), static_cast<pid_t>(rec.pid)) != in.end();
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::NoSuchGroup) {
            return false;
        }
        throw;
    }
}

void GroupManager::refuseIfOwnedByAnother(Resctrl& r, const std::string& id,
                                          const std::string& ctrl, pid_t pid) {
    std::optional<GroupRecord> other = ownerOfProcess(r, ctrl, pid, id);
    if (!other) {
        return;
    }
    const std::string ps = std::to_string(pid);
    if (containerAlive(r, *other)) {
        throw Error(ErrorKind::Busy, "process " + ps + " is in the group of container " +
                                         other->id + ", which is still running (its init pid " +
                                         std::to_string(other->pid) +
                                         " is alive); refusing to take it away");
    }
    // The other container is gone and a process of its group lives on: collect the old
    // group now (its tasks fall back to the CTRL_MON group), then create as usual.
    try {
        r.removeMonGroup(refOf(*other));
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::NoSuchGroup) {
            throw;
        }
    }
    log::info(log::forContainer(other->id, "removed stale group " + r.groupPath(refOf(*other)) +
                                               ": its init pid " + std::to_string(other->pid) +
                                               " is gone and process " + ps +
                                               " in it now belongs to container " + id));
    forget(*other, RemoveReason::Stale);
}

} // namespace rdtmon
