#include "CgroupPoller.h"

#include "Text.h"

#include <cerrno>
#include <fcntl.h>
#include <functional>
#include <unistd.h>

namespace rdtmon {

bool CgroupPoller::readProcs(const Followed& f, std::string& text) {
    text.clear();
    char buf[4096];
    for (off_t off = 0;;) {
        const ssize_t n = ::pread(f.procs.get(), buf, sizeof buf, off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false; // ENODEV: the cgroup was removed
        }
        text.append(buf, static_cast<std::size_t>(n));
        // A seq_file read fills the buffer unless it reached the end: a short read is the
        // whole list, with no second read for the 0 (the common case, one call).
        if (static_cast<std::size_t>(n) < sizeof buf) {
            break;
        }
        off += n;
    }
    return true;
}

std::set<pid_t> CgroupPoller::pidsOf(const std::string& text) {
    const std::vector<pid_t> pids = parseTaskList(text);
    return std::set<pid_t>(pids.begin(), pids.end());
}

bool CgroupPoller::add(const std::string& id, const std::string& cgroupDir, int& err) {
    Followed f;
    f.procs.reset(::open((cgroupDir + "/cgroup.procs").c_str(), O_RDONLY | O_CLOEXEC));
    if (!f.procs) {
        err = errno;
        return false;
    }
    if (!readProcs(f, f.lastText)) {
        err = errno;
        return false;
    }
    f.last = pidsOf(f.lastText);
    f.slice = std::hash<std::string>{}(id) % kSlices;
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
        Followed& f = it->second;
        // A cgroup's slice is fixed by its id, so each is read once every kSlices ticks.
        if (f.slice != slice) {
            ++it;
            continue;
        }
        if (!readProcs(f, text_)) {
            out.gone.insert(it->first);
            it = byId_.erase(it);
            continue;
        }
        if (text_ == f.lastText) {
            ++it; // nobody came or went: the usual case, no parsing
            continue;
        }
        std::set<pid_t> now = pidsOf(text_);
        Joined j{it->first, {}};
        for (pid_t p : now) {
            if (f.last.count(p) == 0) {
                j.pids.push_back(p);
            }
        }
        f.last = std::move(now);
        f.lastText.swap(text_);
        if (!j.pids.empty()) {
            out.joined.push_back(std::move(j));
        }
        ++it;
    }
    return out;
}

} // namespace rdtmon
