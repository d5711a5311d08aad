#include "ResctrlPaths.h"

#include "Errors.h"
#include "FileIo.h"
#include "ResctrlNames.h"

#include <cerrno>

namespace rdtmon {

// Every name used as a path component is checked here, whatever the caller validated:
// no '/', no NUL, no newline (the kernel refuses it with EINVAL), not "." or "..".
void validateComponent(std::string_view name, std::string_view what) {
    std::string problem;
    if (name.empty()) {
        problem = "is empty";
    } else if (name == "." || name == "..") {
        problem = "is a relative directory name";
    } else if (name.find('/') != std::string_view::npos) {
        problem = "contains '/'";
    } else if (name.find('\0') != std::string_view::npos) {
        problem = "contains a NUL byte";
    } else if (name.find('\n') != std::string_view::npos) {
        problem = "contains a newline";
    }
    if (!problem.empty()) {
        throw Error(ErrorKind::InvalidArgument, std::string(what) + " name \"" +
                                                    std::string(name.substr(0, 200)) + "\" " +
                                                    problem);
    }
}

void validateRef(const MonGroupRef& g) {
    if (!g.ctrl.empty()) {
        validateComponent(g.ctrl, "CTRL_MON group");
        if (isReservedResctrlName(g.ctrl)) {
            throw Error(ErrorKind::InvalidArgument,
                        "CTRL_MON group name \"" + g.ctrl + "\" is a name reserved by resctrl");
        }
    }
    validateComponent(g.name, "MON group");
    if (isReservedResctrlName(g.name)) {
        throw Error(ErrorKind::InvalidArgument,
                    "MON group name \"" + g.name + "\" is a name reserved by resctrl");
    }
}

// Path of "<root>/<rel>" for messages.
std::string joinPath(const std::string& root, const std::string& rel) {
    return (root == "/" ? std::string() : root) + "/" + rel;
}

// Appends " (kernel: <status>)" when info/last_cmd_status says something other than ok.
std::string withStatus(std::string msg, const std::string& status) {
    if (!status.empty() && status != "ok") {
        msg += " (kernel: " + status + ")";
    }
    return msg;
}

// Opens one directory component below dirfd. A missing one is NoSuchGroup with the message
// `missing`; a symlink or a non-directory is refused; any other errno maps per kindFromErrno
// with "cannot open <what>".
UniqueFd openDirOrThrow(int dirfd, const std::string& name, const std::string& shownPath,
                        const std::string& missing, const std::string& what) {
    OpenResult o = openDirComponent(dirfd, name);
    if (o.err == 0) {
        return std::move(o.fd);
    }
    const int err = o.err;
    if (err == ENOENT) {
        throw Error(ErrorKind::NoSuchGroup, missing);
    }
    if (err == ELOOP || err == ENOTDIR) {
        throw Error(ErrorKind::Failed,
                    "refusing to use " + shownPath + ": it is a symlink or not a directory");
    }
    throwErrno(err, "cannot open " + what);
}

// Opens <root>/<ctrl>/mon_groups, throwing NoSuchGroup when the CTRL_MON group is absent.
UniqueFd openMonGroupsDir(int root, const std::string& rootPath, const std::string& ctrl) {
    UniqueFd base;
    int baseFd = root;
    if (!ctrl.empty()) {
        const std::string p = joinPath(rootPath, ctrl);
        base = openDirOrThrow(root, ctrl, p, "CTRL_MON group " + p + " does not exist",
                              "CTRL_MON group " + p);
        baseFd = base.get();
    }
    const std::string p = joinPath(rootPath, ctrl.empty() ? "mon_groups" : ctrl + "/mon_groups");
    return openDirOrThrow(baseFd, "mon_groups", p,
                          p + " does not exist (no such CTRL_MON group, or no monitoring support)",
                          p);
}

// Opens the MON group's directory, throwing NoSuchGroup when absent.
UniqueFd openGroupDir(int root, const std::string& rootPath, const MonGroupRef& g,
                      const std::string& groupPath) {
    UniqueFd mg = openMonGroupsDir(root, rootPath, g.ctrl);
    return openDirOrThrow(mg.get(), g.name, groupPath, "MON group " + groupPath + " does not exist",
                          "MON group " + groupPath);
}

ReadResult readInfoL3Mon(int root, const std::string& file) {
    return readInfo(root, "L3_MON", file);
}

ReadResult readInfo(int root, const std::string& dir, const std::string& file) {
    OpenResult info = openDirComponent(root, "info");
    if (info.err != 0) {
        return ReadResult{info.err, {}};
    }
    OpenResult mon = openDirComponent(info.fd.get(), dir);
    if (mon.err != 0) {
        return ReadResult{mon.err, {}};
    }
    return readFileAt(mon.fd.get(), file);
}

} // namespace rdtmon
