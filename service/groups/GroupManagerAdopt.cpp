// Adopting running containers that never got a group (docs/architecture.md, "Adopting
// running containers"): what a collection found in the runtimes' state files is checked
// against the kernel's view of the pid before anything is written.
#include "GroupManager.h"

#include "CgroupPaths.h"
#include "ContainerId.h"
#include "Errors.h"
#include "Log.h"
#include "ProcFs.h"
#include "UniqueFd.h"

#include <cerrno>
#include <cstring>
#include <sys/syscall.h>
#include <unistd.h>

namespace rdtmon {

void GroupManager::queueAdoptions(const std::vector<AdoptCandidate>& found) {
    for (const AdoptCandidate& c : found) {
        if (adoptQueued_.insert(c.container.id).second) {
            adoptQueue_.push_back(c);
        }
    }
}

GroupRecord GroupManager::adopt(const AdoptCandidate& c) {
    const RuntimeContainer& rc = c.container;
    validateContainerId(rc.id);
    if (isSelftestId(rc.id)) {
        // The collector never proposes one; a self-test's group is asked for, never found.
        std::string why = "its id starts with ";
        why += kSelftestIdPrefix;
        why += ", which is reserved for rdtmonctl selftest";
        throw Error(ErrorKind::InvalidArgument, why);
    }
    if (registry_.find(rc.id)) {
        throw Error(ErrorKind::AlreadyExists, "container " + rc.id + " has a record already");
    }
    const std::string ps = std::to_string(rc.pid);
    const auto pid = static_cast<pid_t>(rc.pid);
    if (rc.pid == 0 || rc.pid > static_cast<uint32_t>(INT32_MAX)) {
        throw Error(ErrorKind::InvalidArgument, "pid " + ps + " is not a valid process id");
    }
    // The pidfd first: every fact read below belongs to this process if it is still alive
    // after the reads (a reused pid would be another process, its pidfd another one).
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd) {
        throw Error(ErrorKind::NoSuchProcess,
                    "its init pid " + ps + " is gone (pidfd_open: " + std::strerror(errno) + ")");
    }
    const uint64_t start = rc.startTime;
    auto same = [&](std::string* why) {
        const std::optional<ProcStat> st = readProcStat(pid);
        if (!st) {
            *why = "its init pid " + ps + " is gone";
            return false;
        }
        if (st->startTime != start) {
            *why = "pid " + ps + " now names another process (started at " +
                   std::to_string(st->startTime) + ", the runtime recorded " +
                   std::to_string(start) + ")";
            return false;
        }
        if (st->state == 'Z' || st->state == 'X' || st->state == 'x') {
            *why = "its init pid " + ps + " has exited (a zombie)";
            return false;
        }
        return true;
    };
    std::string why;
    if (!same(&why)) {
        throw Error(ErrorKind::NoSuchProcess, why);
    }
    std::string cgroup = cgroupOfAdopted(pid, rc.cgroupDirs, rc.cgroupPath, why);
    if (cgroup.empty()) {
        throw Error(ErrorKind::InvalidArgument, why);
    }
    if (pidfdExited(pidfd.get())) {
        throw Error(ErrorKind::NoSuchProcess, "its init pid " + ps + " exited during the checks");
    }
    const int fd = pidfd.get();
    return create(
        rc.id, rc.pid, c.labels,
        [&] {
            std::string ignored;
            return !pidfdExited(fd) && same(&ignored);
        },
        Origin::Adopted, cgroup);
}

std::optional<GroupRecord> GroupManager::adoptNext() {
    if (adoptQueue_.empty()) {
        return std::nullopt;
    }
    AdoptCandidate c = std::move(adoptQueue_.front());
    adoptQueue_.pop_front();
    adoptQueued_.erase(c.container.id);
    const std::string& id = c.container.id;
    if (registry_.find(id)) {
        return std::nullopt; // its hook (or an earlier adoption) was first: nothing to do
    }
    try {
        GroupRecord rec = adopt(c);
        adoptNoted_.erase(id);
        if (rec.waiting) {
            log::info(log::forContainer(id, "adopted: waiting for an RMID (" + c.container.runtime +
                                                " init pid " + std::to_string(c.container.pid) +
                                                ")"));
        }
        return rec;
    } catch (const std::exception& e) {
        std::string& noted = adoptNoted_[id];
        if (noted != e.what()) {
            noted = e.what();
            log::notice(log::forContainer(id, "not adopted: " + noted));
        }
        return std::nullopt;
    }
}

} // namespace rdtmon
