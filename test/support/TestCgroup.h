#pragma once

// A real cgroup for tests of following (rdtmond watches the cgroup filesystem itself).

#include <string>
#include <sys/types.h>
#include <vector>

namespace rdtmon::test {

// A uniquely named cgroup under the cgroup2 mount if there is one, else under a v1
// hierarchy (pids, memory, ...), made as root. Destruction kills the processes still in it
// (SIGKILL, waiting until they are gone), moves any it cannot kill back to the parent,
// and removes it; also when the test failed. Throws std::runtime_error when no cgroup can
// be made (not root, no cgroup mounted).
class TestCgroup {
public:
    TestCgroup();
    ~TestCgroup();
    TestCgroup(const TestCgroup&) = delete;
    TestCgroup& operator=(const TestCgroup&) = delete;

    // The directory, as rdtmond reports it in the Cgroup property.
    const std::string& dir() const { return dir_; }
    // Moves a process (all its threads) in: one write to cgroup.procs, as runc exec does.
    void add(pid_t pid) const;
    // cgroup.procs.
    std::vector<pid_t> procs() const;
    // Starts a sleeping process straight in this cgroup with clone3(CLONE_INTO_CGROUP), as
    // crun's exec does on cgroup v2: nothing is written to cgroup.procs. Wrap it in a
    // ChildProcess. Throws std::runtime_error where that cannot be done (a v1 cgroup, a
    // kernel before 5.7).
    pid_t spawnInto() const;
    // Whether a cgroup can be made here (root and a cgroup mount).
    static bool available();

private:
    std::string parent_;
    std::string dir_;
};

} // namespace rdtmon::test
