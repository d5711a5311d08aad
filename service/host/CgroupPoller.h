#pragma once

// Sees processes that join a followed cgroup without writing its cgroup.procs: a runtime's
// exec by clone3(CLONE_INTO_CGROUP) (crun on cgroup v2, recent runc), which no inotify
// event tells of. Each followed cgroup's cgroup.procs is kept open and read again with
// pread(fd, 0) in slices: every tick reads 1/kSlices of them, so each is read once per
// kSlices ticks, and the cost is spread evenly instead of coming in bursts (8 slices of a
// 100 ms tick: docs/architecture.md, "Joins that write nothing", says why 800 ms). What a
// read returns is the pids new since the last read of that cgroup; the caller decides which
// of them need moving. Bus-free; the event loop owns the timer.

#include "UniqueFd.h"

#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <sys/types.h>
#include <vector>

namespace rdtmon {

class CgroupPoller {
public:
    static constexpr std::size_t kSlices = 8;

    // Starts polling id's cgroup; the processes in it now are the baseline, not news.
    // False, with errno in err, when its cgroup.procs cannot be opened.
    bool add(const std::string& id, const std::string& cgroupDir, int& err);
    void remove(const std::string& id);
    std::size_t size() const { return byId_.size(); }

    struct Joined {
        std::string id;
        std::vector<pid_t> pids; // in the cgroup now, not at its last read
    };
    struct TickResult {
        std::vector<Joined> joined;
        std::set<std::string> gone; // cgroups that went away (their poll is dropped)
    };
    // Reads the next slice of followed cgroups.
    TickResult tick();

private:
    struct Followed {
        UniqueFd procs;
        std::set<pid_t> last;
        std::string lastText; // what the last read returned: unchanged text, nothing new
        std::size_t slice = 0;
    };
    // The whole cgroup.procs into text; false when the cgroup is gone.
    static bool readProcs(const Followed& f, std::string& text);
    static std::set<pid_t> pidsOf(const std::string& text);

    std::map<std::string, Followed> byId_;
    std::size_t slice_ = 0;
    std::string text_; // the read buffer, kept: a tick allocates nothing when nothing changed
};

} // namespace rdtmon
