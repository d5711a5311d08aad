// Self-test groups (docs/architecture.md, "Self-test groups"): rdtmonctl selftest's groups
// follow no cgroup, and what one left is removed when rdtmond starts or resctrl comes back.
#include "GroupManager.h"

#include "CgroupPaths.h"
#include "ContainerId.h"
#include "Errors.h"
#include "Log.h"

namespace rdtmon {

std::string GroupManager::cgroupToFollowFor(const std::string& id, pid_t pid, std::string& whyNot) {
    if (isSelftestId(id)) {
        // rdtmonctl selftest's children share its cgroup (the operator's login session, a
        // CI job's): following that would pull the shell and its siblings into the group.
        whyNot = "its id starts with ";
        whyNot += kSelftestIdPrefix;
        whyNot += ": a self-test's processes share rdtmonctl's cgroup, which is never followed";
        return "";
    }
    return cgroupToFollow(pid, whyNot);
}

bool GroupManager::dropSelftest(Resctrl& r, const GroupRecord& rec, const std::string& why) {
    // Only a directory of ours is removed: an active or pending record's, or the one a grant
    // cut short made for a waiting record (waiting+pending).
    if (!rec.waiting || rec.pending) {
        try {
            r.removeMonGroup(refOf(rec));
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::NoSuchGroup) {
                log::error(log::forContainer(
                    rec.id, std::string("cannot remove the group of a self-test that did not "
                                        "finish; it is kept as any other: ") +
                                e.what()));
                return false;
            }
        }
    }
    try {
        registry_.erase(rec.id);
    } catch (const std::exception& e) {
        log::error(log::forContainer(rec.id, e.what()));
        return false;
    }
    unfollow(rec.id);
    grantDue_ = true;
    log::notice(
        log::forContainer(rec.id, "removed the group of a self-test that did not finish: " + why));
    // Stale: what the group stood for is gone from rdtmond's view and nobody asked for the
    // removal. Vanished would say that another hand removed the directory, Exited that
    // rdtmond saw the last task go, Requested that someone asked. A pending record was
    // never announced (no object, no GroupCreated): nothing to tell, as for any other.
    if (events_.removed && (!rec.pending || rec.waiting)) {
        events_.removed(rec, RemoveReason::Stale);
    }
    return true;
}

} // namespace rdtmon
