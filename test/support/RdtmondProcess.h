#pragma once

// rdtmond itself, run by integration tests on a PrivateBus. Stopped by its destructor.

#include "PrivateBus.h"
#include "TempDir.h"

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <sys/types.h>
#include <vector>

namespace rdtmon::test {

// rdtmond on a private bus against a given resctrl path.
class Rdtmond {
public:
    struct Options {
        std::string resctrl;  // --resctrl
        std::string stateDir; // --state-dir; default: a dir inside the fixture's TempDir
        std::string configJson = "{}";
        std::vector<std::string> extraArgs;
        std::vector<std::string> prefix; // a wrapper that runs rdtmond (without-syscall ...)
        bool waitReady = true;
    };
    Rdtmond(const PrivateBus& bus, Options opts);
    ~Rdtmond();
    Rdtmond(const Rdtmond&) = delete;
    Rdtmond& operator=(const Rdtmond&) = delete;

    void start();   // (re)start; waits for the bus name when waitReady
    void stop();    // SIGTERM and reap; throws if it does not exit in 10 s
    void kill9();   // SIGKILL and reap
    bool running(); // still alive (reaps it if it died)
    int lastExitStatus() const { return lastStatus_; }
    pid_t pid() const { return pid_; }
    const std::string& stateDir() const { return opts_.stateDir; }
    std::string log() const; // everything it wrote to stderr so far (all runs)
    std::string configPath() const { return dir_.file("rdtmond.json"); }

private:
    const PrivateBus& bus_;
    Options opts_;
    TempDir dir_;
    pid_t pid_ = -1;
    int lastStatus_ = -1;
};

// The records of <stateDir> as rdtmond loads them: groups.json's (none without the file)
// with the complete lines of groups.journal applied in order (docs/architecture.md,
// "Ownership records and crash safety"); id -> record as JSON. Read independently of
// GroupRegistry, so the suites check the format and not only the code that writes it.
std::map<std::string, nlohmann::json> recordedGroups(const std::string& stateDir);
// The ids among them whose record passes keep: the suites that check "no group without a
// record" read them so.
std::set<std::string> recordedIds(const std::string& stateDir,
                                  const std::function<bool(const nlohmann::json&)>& keep);
// Both state files' bytes: equal before and after means nothing was written.
std::string stateFilesText(const std::string& stateDir);

} // namespace rdtmon::test
