#pragma once

// Child processes for tests: a command run to completion with its output captured
// (runCommand), and the pieces the fixtures use to run a daemon in the background and stop
// it (spawnLogged, terminate).

#include <chrono>
#include <functional>
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

// Runs fn in a forked child as user and group nobody (65534, no supplementary groups) and
// returns the text it returned, or "setup failed" when the child could not become nobody.
// For a call that busctl cannot make as another user (one that passes a file descriptor).
std::string runAsNobody(const std::function<std::string()>& fn);

// This process's environment with the NAME=VALUE entries of extra added or replacing.
std::vector<std::string> mergedEnv(const std::vector<std::string>& extra);

// Forks and execs argv (PATH is searched) with env. stdin is /dev/null; stderr, and stdout
// too when stdoutToLog, append to logPath; otherwise stdout is /dev/null.
pid_t spawnLogged(std::vector<std::string> argv, std::vector<std::string> env,
                  const std::string& logPath, bool stdoutToLog);

// Waits up to timeout for pid to exit; returns its wait status or nullopt.
std::optional<int> waitForExit(pid_t pid, std::chrono::milliseconds timeout);

// SIGTERM, up to `grace` to exit, then SIGKILL and reap. The wait status when it stopped
// on SIGTERM, nullopt when it had to be killed.
std::optional<int> terminate(pid_t pid, std::chrono::milliseconds grace);

// A wait status as an exit code: the exit status, 128+signal, or -1.
int waitStatusToCode(int status);

} // namespace rdtmon::test
