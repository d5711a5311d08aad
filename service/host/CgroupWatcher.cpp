#include "CgroupWatcher.h"

#include "Errors.h"

#include <cerrno>
#include <climits>
#include <cstring>
#include <sys/inotify.h>
#include <unistd.h>

namespace rdtmon {

CgroupWatcher::CgroupWatcher() : fd_(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
    if (!fd_) {
        throwErrno(errno, "inotify_init1");
    }
}

bool CgroupWatcher::watch(const std::string& id, const std::string& cgroupDir, int& err) {
    unwatch(id);
    const std::string file = cgroupDir + "/cgroup.procs";
    // IN_MODIFY only: our own reads of the file give IN_OPEN/IN_CLOSE_NOWRITE, which would
    // wake us for nothing. IN_DELETE_SELF / IN_IGNORED come by themselves when it goes away.
    const int wd =
        ::inotify_add_watch(fd_.get(), file.c_str(), IN_MODIFY | IN_DELETE_SELF | IN_DONT_FOLLOW);
    if (wd < 0) {
        err = errno;
        return false;
    }
    err = 0;
    // Two ids watching one file get one wd: the later one wins, the earlier is resynced only
    // by the collection pass (two containers never share a dedicated cgroup).
    if (auto old = byWd_.find(wd); old != byWd_.end()) {
        byId_.erase(old->second);
    }
    byId_[id] = wd;
    byWd_[wd] = id;
    return true;
}

void CgroupWatcher::unwatch(const std::string& id) {
    auto it = byId_.find(id);
    if (it == byId_.end()) {
        return;
    }
    // EINVAL when the kernel already dropped it (the cgroup went away): nothing to undo.
    (void)::inotify_rm_watch(fd_.get(), it->second);
    byWd_.erase(it->second);
    byId_.erase(it);
}

CgroupWatcher::Events CgroupWatcher::read() {
    Events ev;
    alignas(inotify_event) char buf[16 * (sizeof(inotify_event) + NAME_MAX + 1)];
    for (;;) {
        const ssize_t n = ::read(fd_.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            break; // EAGAIN: drained
        }
        if (n == 0) {
            break;
        }
        for (ssize_t off = 0; off + static_cast<ssize_t>(sizeof(inotify_event)) <= n;) {
            inotify_event e{};
            std::memcpy(&e, buf + off, sizeof e);
            off += static_cast<ssize_t>(sizeof(inotify_event) + e.len);
            if ((e.mask & IN_Q_OVERFLOW) != 0) {
                ev.overflow = true;
                continue;
            }
            auto it = byWd_.find(e.wd);
            if (it == byWd_.end()) {
                continue; // a watch already dropped
            }
            if ((e.mask & (IN_IGNORED | IN_DELETE_SELF | IN_UNMOUNT)) != 0) {
                ev.gone.insert(it->second);
                ev.changed.erase(it->second);
                if ((e.mask & IN_IGNORED) != 0) {
                    // The kernel removed the watch: forget the wd, it may be reused.
                    byId_.erase(it->second);
                    byWd_.erase(it);
                }
            } else if ((e.mask & IN_MODIFY) != 0 && ev.gone.count(it->second) == 0) {
                ev.changed.insert(it->second);
            }
        }
    }
    return ev;
}

} // namespace rdtmon
