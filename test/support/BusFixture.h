#pragma once

// Integration-test helpers: run a command, a private dbus-daemon carrying the real policy
// file, and rdtmond itself. Everything started here is stopped by its destructor.

#include "TempDir.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace rdtmon::test {

struct CommandResult {
    int exitCode = -1; // exit status, or 128+signal, or -1 when it had to be killed on timeout
    std::string out;
    std::string err;
    bool timedOut = false;
    std::chrono::microseconds elapsed{0};
};

struct CommandOptions {
    std::string stdinText;
    std::vector<std::string> env; // extra NAME=VALUE entries
    std::optional<uid_t> uid;     // run as this uid (and gid below, groups cleared)
    gid_t gid = 65534;
    std::chrono::milliseconds timeout{30000};
};

// Runs argv without a shell; captures stdout and stderr. Kills it on timeout.
CommandResult runCommand(const std::vector<std::string>& argv, const CommandOptions& opts = {});

// A dbus-daemon on a unix socket in a temp dir. Its configuration is the system bus's
// default deny-by-default policy with the reply rules of system.conf, plus the real
// dbus/org.rdtmon1.conf. With Policy::Permissive it also lets everyone call every member
// of org.rdtmon1, so the code's own uid check can be tested.
class PrivateBus {
public:
    enum class Policy { Strict, Permissive };
    explicit PrivateBus(Policy policy = Policy::Strict,
                        const std::string& policyFile = RDTMON_SOURCE_DIR "/dbus/org.rdtmon1.conf");
    ~PrivateBus();
    PrivateBus(const PrivateBus&) = delete;
    PrivateBus& operator=(const PrivateBus&) = delete;

    const std::string& address() const { return address_; }
    std::string envEntry() const { return "DBUS_SYSTEM_BUS_ADDRESS=" + address_; }
    // busctl --address=... followed by args.
    std::vector<std::string> busctl(const std::vector<std::string>& args) const;
    bool nameHasOwner(const std::string& name) const;
    pid_t nameOwnerPid(const std::string& name) const; // -1 when nobody owns it
    std::string log() const; // dbus-daemon's stderr: policy rejections are logged there

private:
    TempDir dir_;
    std::string address_;
    pid_t pid_ = -1;
};

// rdtmond on a private bus against a given resctrl path.
class Rdtmond {
public:
    struct Options {
        std::string resctrl;  // --resctrl
        std::string stateDir; // --state-dir; default: a dir inside the fixture's TempDir
        std::string configJson = "{}";
        std::vector<std::string> extraArgs;
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

} // namespace rdtmon::test
