#include "CgroupPoller.h"

#include "Text.h"

#include <cerrno>
#include <fcntl.h>
#include <functional>
#include <unistd.h>

namespace rdtmon {

bool CgroupPoller::readProcs(Followed& f, std::set<pid_t>& out) {
    std::string text;
    char buf[4096];
    for (off_t off = 0;;) {
        const ssize_t n = ::pread(f.procs.get(), buf, sizeof buf, off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false; // ENODEV: the cgroup was removed
        }
        if (n == 0) {
            break;
        }
        text.append(buf, static_cast<std::size_t>(n));
        off += n;
    }
    const std::vector<pid_t> pids = parseTaskList(text);
    out = std::set<pid_t>(pids.begin(), pids.end());
    return true;
}

bool CgroupPoller::add(const std::string& id, const std::string& cgroupDir, int& err) {
    Followed f;
    f.procs.reset(::open((cgroupDir + "/cgroup.procs").c_str(), O_RDONLY | O_CLOEXEC));
    if (!f.procs) {
        err = errno;
        return false;
    }
    if (!readProcs(f, f.last)) {
        err = errno;
        return false;
    }
    byId_[id] = std::move(f);
    return true;
}

void CgroupPoller::remove(const std::string& id) {
    byId_.erase(id);
}

CgroupPoller::TickResult CgroupPoller::tick() {
    TickResult out;
    const std::size_t slice = slice_;
    slice_ = (slice_ + 1) % kSlices;
    for (auto it = byId_.begin(); it != byId_.end();) {
        // A cgroup's slice is fixed by its id, so each is read once every kSlices ticks.
        if (std::hash<std::string>{}(it->first) % kSlices != slice) {
            ++it;
            continue;
        }
        std::set<pid_t> now;
        if (!readProcs(it->second, now)) {
            out.gone.insert(it->first);
            it = byId_.erase(it);
            continue;
        }
        Joined j{it->first, {}};
        for (pid_t p : now) {
            if (it->second.last.count(p) == 0) {
                j.pids.push_back(p);
            }
        }
        it->second.last = std::move(now);
        if (!j.pids.empty()) {
            out.joined.push_back(std::move(j));
        }
        ++it;
    }
    return out;
}

} // namespace rdtmon
