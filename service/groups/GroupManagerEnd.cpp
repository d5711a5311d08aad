// The end of a container without its poststop hook (docs/architecture.md, "When a container
// ends"): the init's pidfd says when to look, the container's cgroup (or its group's tasks)
// says whether anything is left, and after a grace the group goes.
#include "GroupManager.h"

#include "CgroupPaths.h"
#include "Clock.h"
#include "ContainerId.h"
#include "Errors.h"
#include "Log.h"
#include "ProcFs.h"

#include <cerrno>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace rdtmon {
namespace {
// How often a container whose init is gone but whose cgroup still holds tasks (no pid
// namespace of its own, or a daemonised child) is looked at again.
constexpr uint64_t kLingerCheckUsec = 1'000'000;
} // namespace

int GroupManager::endFd() const {
    return endEpoll_.get();
}

void GroupManager::watchEnd(const GroupRecord& rec) {
    if (rec.waiting || rec.pending) {
        return;
    }
    if (!endEpoll_) {
        endEpoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
        if (!endEpoll_) {
            log::warning(std::string("containers that end without their poststop hook are "
                                     "found at collections only: epoll_create1: ") +
                         errnoText(errno));
            return;
        }
    }
    auto it = initFds_.find(rec.id);
    if (it != initFds_.end() && it->second.pid == rec.pid) {
        return; // already watched
    }
    unwatchEnd(rec.id);
    UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_open, static_cast<pid_t>(rec.pid), 0)));
    if (!fd) {
        if (errno == ESRCH) {
            // Gone already (ended while rdtmond was down): look now.
            endGone_.insert(rec.id);
            nextLingerUsec_ = 0;
            return;
        }
        log::warning(log::forContainer(rec.id, "its end is found at collections only: "
                                               "pidfd_open: " +
                                                   errnoText(errno)));
        return;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd.get();
    if (::epoll_ctl(endEpoll_.get(), EPOLL_CTL_ADD, fd.get(), &ev) != 0) {
        log::warning(log::forContainer(rec.id, "its end is found at collections only: epoll: " +
                                                   errnoText(errno)));
        return;
    }
    fdToId_[fd.get()] = rec.id;
    initFds_[rec.id] = InitFd{rec.pid, std::move(fd)};
}

void GroupManager::unwatchEnd(const std::string& id) {
    auto it = initFds_.find(id);
    if (it != initFds_.end()) {
        // Closing the fd takes it out of the epoll set.
        fdToId_.erase(it->second.fd.get());
        initFds_.erase(it);
    }
    endGone_.erase(id);
    endDueUsec_.erase(id);
}

void GroupManager::onEndEvents() {
    epoll_event evs[64];
    const int n = ::epoll_wait(endEpoll_.get(), evs, 64, 0);
    for (int i = 0; i < n; ++i) {
        auto it = fdToId_.find(evs[i].data.fd);
        if (it == fdToId_.end()) {
            continue;
        }
        const std::string id = it->second;
        // A pidfd stays readable once its process has exited: it is done with.
        fdToId_.erase(it);
        initFds_.erase(id);
        endGone_.insert(id);
    }
    if (n > 0) {
        nextLingerUsec_ = 0; // look at once
    }
}

bool GroupManager::lastTaskGone(const GroupRecord& rec) {
    if (!rec.cgroup.empty()) {
        int err = 0;
        std::optional<std::vector<pid_t>> procs = cgroupProcs(rec.cgroup, err);
        if (procs) {
            return procs->empty();
        }
        if (err == ENOENT) {
            return true; // the runtime removed the cgroup: nothing is left in it
        }
    }
    Resctrl* r = resctrl_.get();
    if (r == nullptr) {
        return false;
    }
    try {
        return r->tasks(refOf(rec)).empty();
    } catch (const Error& e) {
        return e.kind() == ErrorKind::NoSuchGroup;
    }
}

int GroupManager::endTimeoutMs() const {
    uint64_t due = UINT64_MAX;
    for (const auto& [id, t] : endDueUsec_) {
        due = std::min(due, t);
    }
    if (!endGone_.empty()) {
        due = std::min(due, nextLingerUsec_);
    }
    if (due == UINT64_MAX) {
        return -1;
    }
    const uint64_t now = monotonicUsec();
    return due <= now ? 0 : static_cast<int>((due - now + 999) / 1000);
}

void GroupManager::runDueEnds() {
    const uint64_t now = monotonicUsec();
    if (!endGone_.empty() && nextLingerUsec_ <= now) {
        nextLingerUsec_ = now + kLingerCheckUsec;
        for (auto it = endGone_.begin(); it != endGone_.end();) {
            std::optional<GroupRecord> rec = registry_.find(*it);
            if (!rec || rec->waiting || rec->pending) {
                it = endGone_.erase(it);
                continue;
            }
            if (lastTaskGone(*rec)) {
                endDueUsec_.emplace(*it, now + static_cast<uint64_t>(endGrace_.count()) * 1000);
                it = endGone_.erase(it);
                continue;
            }
            ++it;
        }
    }
    std::vector<std::string> due;
    for (const auto& [id, t] : endDueUsec_) {
        if (t <= now) {
            due.push_back(id);
        }
    }
    for (const std::string& id : due) {
        endDueUsec_.erase(id);
        std::optional<GroupRecord> rec = registry_.find(id);
        if (!rec || rec->waiting || rec->pending) {
            continue;
        }
        if (initFds_.count(id) != 0 || !lastTaskGone(*rec)) {
            // Asked for again meanwhile (a restart of the container under the same id), or
            // a task arrived: it lives on.
            continue;
        }
        endContainer(*rec, RemoveReason::Exited);
    }
}

void GroupManager::removeIfEnded(const std::string& id) {
    validateContainerId(id);
    std::optional<GroupRecord> rec = registry_.find(id);
    if (!rec || rec->pending) {
        return;
    }
    auto init = initFds_.find(id);
    const bool initGone = init == initFds_.end() || pidfdExited(init->second.fd.get());
    if (rec->waiting) {
        if (!sameProcess(*rec)) {
            dropWaiting(*rec, RemoveReason::Requested, "its container has ended");
        }
        return;
    }
    if (initGone && lastTaskGone(*rec)) {
        endContainer(*rec, RemoveReason::Requested);
        return;
    }
    log::notice(log::forContainer(id, "RemoveGroup from a caller gone before it could be "
                                      "identified: kept, the container still runs; it is "
                                      "removed when it ends"));
    if (initGone) {
        endGone_.insert(id);
        nextLingerUsec_ = 0;
    }
}

void GroupManager::endContainer(const GroupRecord& rec, RemoveReason reason) {
    Resctrl* r = resctrl();
    if (r == nullptr) {
        return;
    }
    try {
        r->removeMonGroup(refOf(rec));
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::NoSuchGroup) {
            forget(rec, RemoveReason::Vanished);
        } else {
            log::error(log::forContainer(rec.id, std::string("cannot remove the group of an "
                                                             "ended container: ") +
                                                     e.what()));
        }
        return;
    }
    try {
        registry_.erase(rec.id);
    } catch (const std::exception& e) {
        // The directory is gone; the record is dropped as vanished on a later pass.
        log::error(log::forContainer(rec.id, e.what()));
        return;
    }
    unfollow(rec.id);
    grantDue_ = true;
    const std::string why =
        reason == RemoveReason::Exited
            ? "the container ended (its last task is gone) and no poststop hook removed it "
              "within " +
                  std::to_string(endGrace_.count()) + " ms"
            : "requested; the container has ended";
    log::info(log::forContainer(rec.id, "removed group " + r->groupPath(refOf(rec)) + ": " + why));
    if (events_.removed) {
        events_.removed(rec, reason);
    }
}

} // namespace rdtmon
