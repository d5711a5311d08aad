// Tasks: which group holds a process, and moving its threads into a MON group.
#include "Resctrl.h"

#include "Errors.h"
#include "FileIo.h"
#include "Log.h"
#include "ProcFs.h"
#include "ResctrlNames.h"
#include "ResctrlParsers.h"
#include "ResctrlPaths.h"

#include <cerrno>
#include <charconv>
#include <dirent.h>
#include <fcntl.h>
#include <set>
#include <unistd.h>

namespace rdtmon {
namespace {
constexpr int kMaxMovePasses = 10;
} // namespace

std::string Resctrl::ctrlGroupOf(pid_t pid) const {
    if (pid <= 0) {
        throw Error(ErrorKind::InvalidArgument, "invalid pid " + std::to_string(pid));
    }
    const std::string ps = std::to_string(pid);
    if (std::optional<std::string> file = taskGroupsFile(pid)) {
        ReadResult r = readPath(*file);
        if (r.err == 0) {
            if (std::optional<TaskGroups> g = parseCpuResctrlGroups(r.text)) {
                return g->ctrl;
            }
        } else if (r.err == ESRCH || (r.err == ENOENT && !procExists(pid))) {
            throw Error(ErrorKind::NoSuchProcess, "process " + ps + " does not exist");
        }
        // Unreadable or unparsable (resctrl unmounted meanwhile): the scan decides.
    }
    if (!procExists(pid)) {
        throw Error(ErrorKind::NoSuchProcess, "process " + ps + " does not exist");
    }
    // The CTRL_MON group whose own tasks file lists pid. Only directories at the root
    // are CTRL_MON groups; a MON group's tasks also list it, but those are not scanned.
    std::vector<std::string> ctrls;
    int err = forEachEntry(root_.get(), [&](const std::string& n, unsigned char t) {
        if (!isReservedResctrlName(n) && entryType(root_.get(), n, t) == DT_DIR) {
            ctrls.push_back(n);
        }
    });
    if (err != 0) {
        throwErrno(err, "cannot list " + path_ + " to find the group of process " + ps);
    }
    for (const auto& c : ctrls) {
        OpenResult cf = openDirComponent(root_.get(), c);
        if (cf.err != 0) {
            continue;
        }
        ReadResult r = readFileAt(cf.fd.get(), "tasks");
        if (r.err != 0) {
            continue; // not a group (no tasks file), or removed meanwhile
        }
        for (pid_t t : parseTaskList(r.text)) {
            if (t == pid) {
                return c;
            }
        }
    }
    if (!procExists(pid)) {
        throw Error(ErrorKind::NoSuchProcess, "process " + ps + " does not exist");
    }
    return "";
}

std::optional<std::string> Resctrl::monGroupOfTask(pid_t tid) const {
    std::optional<std::string> file = tid > 0 ? taskGroupsFile(tid) : std::nullopt;
    if (!file) {
        return std::nullopt;
    }
    ReadResult r = readPath(*file);
    if (r.err != 0) {
        return std::nullopt;
    }
    std::optional<TaskGroups> g = parseCpuResctrlGroups(r.text);
    return g ? std::optional<std::string>(g->mon) : std::nullopt;
}

std::optional<TaskGroups> Resctrl::groupsOfTask(pid_t tid) const {
    std::optional<std::string> file = tid > 0 ? taskGroupsFile(tid) : std::nullopt;
    if (!file) {
        return std::nullopt;
    }
    ReadResult r = readPath(*file);
    if (r.err != 0) {
        return std::nullopt;
    }
    return parseCpuResctrlGroups(r.text);
}

namespace {
UniqueFd openTasksForWrite(int groupFd, const std::string& gp) {
    OpenResult o = openFileComponent(groupFd, "tasks", O_WRONLY);
    if (o.err != 0) {
        const int err = o.err;
        if (err == ENOENT) {
            throw Error(ErrorKind::NoSuchGroup, "cannot open " + gp + "/tasks: it does not exist");
        }
        if (err == ELOOP) {
            throw Error(ErrorKind::Failed, "refusing to write " + gp + "/tasks: it is a symlink");
        }
        throwErrno(err, "cannot open " + gp + "/tasks for writing");
    }
    return std::move(o.fd);
}
} // namespace

void Resctrl::moveTask(const MonGroupRef& g, pid_t tid) {
    validateRef(g);
    const std::string gp = groupPath(g);
    if (tid <= 0) {
        throw Error(ErrorKind::InvalidArgument, "invalid task id " + std::to_string(tid));
    }
    UniqueFd gd = openGroupDir(root_.get(), path_, g, gp);
    UniqueFd tf = openTasksForWrite(gd.get(), gp);
    int err = writeTid(tf.get(), tid);
    if (err == 0) {
        return;
    }
    std::string what = "cannot move task " + std::to_string(tid) + " into " + gp;
    switch (err) {
    case ESRCH:
        throw Error(ErrorKind::NoSuchProcess, what + ": no such task");
    case ENODEV:
    case ENOENT:
        throw Error(ErrorKind::NoSuchGroup, what + ": the group was removed");
    case EINVAL:
        throw TaskInAnotherCtrlGroup(
            withStatus(what + ": the task is not in the group's CTRL_MON group (" +
                           (g.ctrl.empty() ? std::string("root") : g.ctrl) +
                           "); a MON group only takes tasks of its parent CTRL_MON group",
                       lastCmdStatus()));
    default:
        throw Error(kindFromErrno(err),
                    withStatus(what + ": write: " + errnoText(err), lastCmdStatus()));
    }
}

void Resctrl::moveProcess(const MonGroupRef& g, pid_t pid, std::vector<MovedThread>* moved) {
    validateRef(g);
    const std::string gp = groupPath(g);
    const std::string ps = std::to_string(pid);
    if (pid <= 0) {
        throw Error(ErrorKind::InvalidArgument, "invalid pid " + ps);
    }
    UniqueFd gd = openGroupDir(root_.get(), path_, g, gp);
    UniqueFd tf = openTasksForWrite(gd.get(), gp);

    std::set<pid_t> done;
    for (int pass = 0; pass < kMaxMovePasses; ++pass) {
        auto tids = threadsOf(pid);
        if (!tids) {
            throw Error(ErrorKind::NoSuchProcess,
                        "cannot move process " + ps + " into " + gp + ": it does not exist");
        }
        bool any = false;
        for (pid_t t : *tids) {
            if (done.count(t) != 0) {
                continue;
            }
            any = true;
            std::optional<std::string> from;
            if (moved != nullptr) {
                from = monGroupOfTask(t);
            }
            int err = writeTid(tf.get(), t);
            if (err == 0) {
                done.insert(t);
                if (moved != nullptr && from != std::optional<std::string>(g.name)) {
                    moved->push_back(MovedThread{t, std::move(from)});
                }
                continue;
            }
            std::string what =
                "cannot move thread " + std::to_string(t) + " of process " + ps + " into " + gp;
            if (err == ESRCH) {
                if (t == pid && !procExists(pid)) {
                    throw Error(ErrorKind::NoSuchProcess, "cannot move process " + ps + " into " +
                                                              gp + ": it exited meanwhile");
                }
                done.insert(t); // a thread that exited: nothing left to move
                continue;
            }
            if (err == ENODEV || err == ENOENT) {
                throw Error(ErrorKind::NoSuchGroup, what + ": the group was removed");
            }
            if (err == EINVAL) {
                throw Error(ErrorKind::Failed,
                            withStatus(what +
                                           ": the thread is not in the group's CTRL_MON group (" +
                                           (g.ctrl.empty() ? std::string("root") : g.ctrl) +
                                           "); a MON group only takes tasks of its parent "
                                           "CTRL_MON group",
                                       lastCmdStatus()));
            }
            throw Error(kindFromErrno(err),
                        withStatus(what + ": write: " + errnoText(err), lastCmdStatus()));
        }
        if (!any) {
            if (done.count(pid) == 0 && !procExists(pid)) {
                throw Error(ErrorKind::NoSuchProcess,
                            "cannot move process " + ps + " into " + gp + ": it does not exist");
            }
            return;
        }
    }
    throw Error(ErrorKind::Failed, "cannot move process " + ps + " into " + gp +
                                       ": it kept creating threads through " +
                                       std::to_string(kMaxMovePasses) + " passes");
}

void Resctrl::moveBack(const MonGroupRef& g, const std::vector<MovedThread>& moved) {
    for (const MovedThread& m : moved) {
        // Into the MON group it left, if that is still there; else (or when that write
        // fails) onto the CTRL_MON group's own RMID, through that group's tasks file.
        bool back = false;
        if (m.from && !m.from->empty() && *m.from != g.name) {
            try {
                moveTask(MonGroupRef{g.ctrl, *m.from}, m.tid);
                back = true;
            } catch (const Error& e) {
                if (e.kind() == ErrorKind::NoSuchProcess) {
                    continue;
                }
                log::debug("thread " + std::to_string(m.tid) + " not put back into " +
                           groupPath(MonGroupRef{g.ctrl, *m.from}) + ": " + e.what());
            }
        }
        if (back) {
            continue;
        }
        const std::string ctrlTasks = g.ctrl.empty() ? "tasks" : g.ctrl + "/tasks";
        OpenResult o = openBeneath(root_.get(), ctrlTasks, O_WRONLY);
        const int err = o.err != 0 ? o.err : writeTid(o.fd.get(), m.tid);
        if (err != 0 && err != ESRCH) {
            log::warning("thread " + std::to_string(m.tid) + " could not be moved out of " +
                         groupPath(g) + ": " + errnoText(err));
        }
    }
}

std::vector<pid_t> Resctrl::tasks(const MonGroupRef& g) const {
    validateRef(g);
    const std::string gp = groupPath(g);
    UniqueFd gd = openGroupDir(root_.get(), path_, g, gp);
    ReadResult r = readFileAt(gd.get(), "tasks");
    if (r.err == ENOENT || r.err == ENODEV) {
        throw Error(ErrorKind::NoSuchGroup, "cannot read " + gp + "/tasks: the group was removed");
    }
    if (r.err != 0) {
        throwErrno(r.err, "cannot read " + gp + "/tasks");
    }
    return parseTaskList(r.text);
}

} // namespace rdtmon
