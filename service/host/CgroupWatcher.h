#pragma once

// One inotify fd with one watch per followed cgroup's cgroup.procs. The kernel's
// vfs_write emits IN_MODIFY for every successful write to that file (a runtime's exec
// joining the container, an nsenter plus cgroup join), on cgroup v1 and v2; reads emit
// nothing we watch. So the fd is readable only when someone joined a followed cgroup: no
// wake-ups while nothing changes. Bus-free; the event loop polls fd().

#include "UniqueFd.h"

#include <map>
#include <set>
#include <string>

namespace rdtmon {

class CgroupWatcher {
public:
    // Throws Error(Failed) when inotify cannot be initialised.
    CgroupWatcher();

    int fd() const { return fd_.get(); }

    // Watches <cgroupDir>/cgroup.procs for container id (replacing an earlier watch of id).
    // False, with errno in err, when it cannot (the cgroup is gone, watch limit reached).
    bool watch(const std::string& id, const std::string& cgroupDir, int& err);
    // Drops id's watch; a no-op when there is none.
    void unwatch(const std::string& id);
    bool watching(const std::string& id) const { return byId_.count(id) != 0; }
    std::size_t size() const { return byId_.size(); }

    struct Events {
        std::set<std::string> changed; // ids whose cgroup.procs was written
        std::set<std::string> gone;    // ids whose cgroup went away (watch dropped)
        bool overflow = false;         // events were lost: resync everything
    };
    // Reads every event queued on the fd (never blocks). A burst of writes to one cgroup is
    // one entry of changed.
    Events read();

private:
    UniqueFd fd_;
    std::map<std::string, int> byId_;
    std::map<int, std::string> byWd_;
};

} // namespace rdtmon
