// rdtmon-hook: the OCI createRuntime/poststop hook, a thin D-Bus client of rdtmond.
//
//   rdtmon-hook create|delete [--fail-closed] [--timeout SECONDS]   (OCI state on stdin)
//
// Exit codes:
//   0  success (silent); a skipped container (one line on stderr); any failure in the
//      default fail-open mode (one line on stderr naming the container id and the reason).
//   1  any failure with --fail-closed (same line on stderr).
//   2  usage error: no or unknown action. This is always 2, also without --fail-closed,
//      because it means the hook is wired up wrongly (a packaging bug, not a runtime
//      condition) and must be noticed rather than silently ignored.
// Bad options after a known action (e.g. "--timeout x") are a failure like any other and
// follow the fail-open/fail-closed rule.
//
// The action comes from the argument only (runc passes status "creating" to createRuntime
// hooks, crun "created"; poststop gets "stopped"). A whole-process deadline of
// timeout + 1 s guards everything, including reading stdin and connecting to the bus, so
// the hook can never hang a container start.

#include "OciState.h"

#include "Errors.h"
#include "Names.h"
#include "rdtmon/dbus/ManagerProxy.h"

#include <sdbus-c++/sdbus-c++.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <sys/time.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

namespace {

constexpr int kExitUsage = 2;
constexpr double kMaxTimeoutSeconds = 600.0;
constexpr const char* kUnknownId = "<unknown>";

// --- the whole-process deadline --------------------------------------------------------
// The SIGALRM handler may only do async-signal-safe things: it writes a line prepared in
// advance and _exit()s. The line is rebuilt in normal context whenever what we know (the
// container id, the phase) changes, into the buffer that is not current, and then
// published with one atomic pointer store.
struct DeadlineLine {
    char text[768];
    std::size_t len;
};
DeadlineLine gDeadlineLines[2];
std::atomic<const DeadlineLine*> gDeadlineLine{nullptr};
volatile std::sig_atomic_t gFailExitCode = 0;

extern "C" void onDeadline(int) {
    const DeadlineLine* line = gDeadlineLine.load();
    if (line != nullptr) {
        ssize_t ignored = ::write(STDERR_FILENO, line->text, line->len);
        (void)ignored;
    }
    ::_exit(gFailExitCode);
}

std::string seconds(double s) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%g", s);
    return buf;
}

struct Options {
    std::string action;
    bool failClosed = false;
    double timeoutSeconds = rdtmon::kDefaultHookTimeoutSeconds;
    std::string error; // a bad option after a known action; reported as a failure
};

class Hook {
public:
    explicit Hook(Options opts) : opts_(std::move(opts)) {
        gFailExitCode = opts_.failClosed ? 1 : 0;
    }

    int run();

private:
    // One line on stderr with a single write(2), so concurrent output cannot split it.
    static void emit(const std::string& line) {
        std::string out = line + "\n";
        std::size_t off = 0;
        while (off < out.size()) {
            ssize_t n = ::write(STDERR_FILENO, out.data() + off, out.size() - off);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                return;
            }
            off += static_cast<std::size_t>(n);
        }
    }

    std::string prefix() const {
        return "rdtmon-hook: container " + (id_.empty() ? std::string(kUnknownId) : id_) + ": ";
    }

    // runc and crun discard the stderr of a hook that exits 0, so a fail-open line printed
    // only there would never be seen: it also goes to the journal, with the container id
    // as a field (journalctl -t rdtmon-hook CONTAINER_ID=...). Only on these rare paths:
    // success costs nothing.
    void journal(int priority, const std::string& line) const {
        sd_journal_send("MESSAGE=%s", line.c_str(), "PRIORITY=%d", priority,
                        "SYSLOG_IDENTIFIER=rdtmon-hook", "CONTAINER_ID=%s",
                        id_.empty() ? kUnknownId : id_.c_str(), "RDTMON_ACTION=%s",
                        opts_.action.c_str(), nullptr);
    }

    int fail(std::string_view errorName, std::string_view message) {
        std::string line = prefix() + opts_.action + " failed (" +
                           (opts_.failClosed ? "fail-closed" : "fail-open") +
                           "): " + std::string(errorName) + ": " + rdtmon::printable(message, 600);
        emit(line);
        journal(opts_.failClosed ? LOG_ERR : LOG_WARNING, line);
        return opts_.failClosed ? 1 : 0;
    }

    int skip(const std::string& why) {
        std::string line = prefix() + "skipped " + opts_.action + ": " + why;
        emit(line);
        journal(LOG_INFO, line);
        return 0;
    }

    void armDeadline() {
        updateDeadline("reading the OCI state from stdin");
        double total = opts_.timeoutSeconds + 1.0;
        itimerval it{};
        it.it_value.tv_sec = static_cast<time_t>(total);
        it.it_value.tv_usec = static_cast<suseconds_t>((total - std::floor(total)) * 1e6);
        struct sigaction sa {};
        sa.sa_handler = onDeadline;
        sigemptyset(&sa.sa_mask);
        ::sigaction(SIGALRM, &sa, nullptr);
        ::setitimer(ITIMER_REAL, &it, nullptr);
    }

    void updateDeadline(std::string_view phase) {
        DeadlineLine* next =
            (gDeadlineLine.load() == &gDeadlineLines[0]) ? &gDeadlineLines[1] : &gDeadlineLines[0];
        std::string line = prefix() + opts_.action + " failed (" +
                           (opts_.failClosed ? "fail-closed" : "fail-open") +
                           "): " + rdtmon::errorName(rdtmon::ErrorKind::Failed) + ": deadline of " +
                           seconds(opts_.timeoutSeconds + 1.0) + " s exceeded while " +
                           std::string(phase) + "\n";
        std::size_t len = std::min(line.size(), sizeof(next->text));
        std::memcpy(next->text, line.data(), len);
        next->text[sizeof(next->text) - 1] = '\n';
        next->len = len;
        gDeadlineLine.store(next);
    }

    int callService(const rdtmon::OciState& st);

    Options opts_;
    std::string id_; // printable; empty until known
};

// The generated proxy declares the Manager's signals as pure virtual handlers. The hook
// never listens to them: registerProxy() is deliberately not called, so no match rules are
// installed (that would cost an extra round trip to the bus on every container start).
class ManagerClient final : public sdbus::ProxyInterfaces<org::rdtmon1::Manager_proxy> {
public:
    explicit ManagerClient(sdbus::IConnection& connection)
        : ProxyInterfaces(connection, rdtmon::kBusName, rdtmon::kManagerPath) {}
    ~ManagerClient() = default;

private:
    void onGroupCreated(const std::string&, const sdbus::ObjectPath&) override {}
    void onGroupRemoved(const std::string&, const std::string&) override {}
};

int Hook::callService(const rdtmon::OciState& st) {
    updateDeadline(std::string("waiting for ") + rdtmon::kBusName + " on the system bus");
    try {
        // Honours DBUS_SYSTEM_BUS_ADDRESS, which is how tests use a private bus.
        auto connection = sdbus::createSystemBusConnection();
        connection->setMethodCallTimeout(
            std::chrono::microseconds(static_cast<std::uint64_t>(opts_.timeoutSeconds * 1e6)));
        ManagerClient manager(*connection);
        if (opts_.action == "create") {
            manager.CreateGroup(st.id, static_cast<std::uint32_t>(*st.pid));
        } else {
            manager.RemoveGroup(st.id);
        }
    } catch (const sdbus::Error& e) {
        if (opts_.action == "delete" &&
            rdtmon::errorKindFromName(e.getName()) == rdtmon::ErrorKind::NoSuchGroup) {
            return 0; // nothing to remove (never created, skipped, or already collected)
        }
        return fail(e.getName(), e.getMessage());
    } catch (const std::exception& e) {
        return fail(rdtmon::errorName(rdtmon::ErrorKind::Failed), e.what());
    }
    return 0;
}

int Hook::run() {
    armDeadline();

    std::string text;
    try {
        text = rdtmon::readCapped(STDIN_FILENO, rdtmon::kMaxStateBytes);
    } catch (const rdtmon::Error& e) {
        return fail(rdtmon::errorName(e.kind()), std::string("OCI state on stdin: ") + e.what());
    }

    rdtmon::OciState st;
    try {
        st = rdtmon::parseOciState(text, opts_.action == "create");
    } catch (const rdtmon::Error& e) {
        id_ = rdtmon::peekContainerId(text);
        return fail(rdtmon::errorName(e.kind()), e.what());
    }
    id_ = st.id; // valid ids are printable
    updateDeadline("checking the container");

    if (!opts_.error.empty()) {
        return fail(rdtmon::errorName(rdtmon::ErrorKind::InvalidArgument), opts_.error);
    }
    if (auto why = rdtmon::skipReason(st)) {
        return skip(*why);
    }
    if (opts_.action == "create") {
        try {
            if (rdtmon::bundleEnablesMonitoring(st.bundle)) {
                return skip("the bundle's config.json sets linux.intelRdt.enableMonitoring, the "
                            "runtime makes the monitoring group itself");
            }
        } catch (const rdtmon::Error& e) {
            return fail(rdtmon::errorName(e.kind()), e.what());
        }
    }
    return callService(st);
}

bool parseSeconds(const char* s, double& out) {
    if (s == nullptr || *s == '\0') {
        return false;
    }
    char* end = nullptr;
    errno = 0;
    double v = std::strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !std::isfinite(v) || v <= 0 ||
        v > kMaxTimeoutSeconds) {
        return false;
    }
    out = v;
    return true;
}

Options parseArgs(int argc, char** argv) {
    Options o;
    o.action = argv[1];
    for (int i = 2; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--fail-closed") {
            o.failClosed = true;
        } else if (a == "--timeout" || a.starts_with("--timeout=")) {
            const char* value = nullptr;
            if (a == "--timeout") {
                value = (i + 1 < argc) ? argv[++i] : nullptr;
            } else {
                value = argv[i] + std::strlen("--timeout=");
            }
            if (!parseSeconds(value, o.timeoutSeconds) && o.error.empty()) {
                o.error = "bad --timeout value \"" + rdtmon::printable(value ? value : "", 40) +
                          "\" (expected seconds, > 0 and <= " +
                          std::to_string(static_cast<int>(kMaxTimeoutSeconds)) + ")";
            }
        } else if (o.error.empty()) {
            o.error = "unknown option \"" + rdtmon::printable(a, 40) + "\"";
        }
    }
    return o;
}

} // namespace

int main(int argc, char** argv) {
    // A runtime that closed our stderr must not turn a fail-open line into a SIGPIPE death.
    std::signal(SIGPIPE, SIG_IGN);

    std::string_view action = argc >= 2 ? argv[1] : "";
    if (action != "create" && action != "delete") {
        std::string line =
            "rdtmon-hook: usage: rdtmon-hook create|delete [--fail-closed] [--timeout SECONDS] "
            "(OCI state on stdin); got " +
            (argc >= 2 ? "action \"" + rdtmon::printable(action, 40) + "\"" : "no action") + "\n";
        ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
        (void)ignored;
        return kExitUsage;
    }
    try {
        Hook hook(parseArgs(argc, argv));
        return hook.run();
    } catch (const std::exception& e) {
        // Not expected (every path above catches its own errors); keep the contract anyway.
        std::string line = std::string("rdtmon-hook: container <unknown>: ") + std::string(action) +
                           " failed: " + rdtmon::errorName(rdtmon::ErrorKind::Failed) + ": " +
                           rdtmon::printable(e.what()) + "\n";
        ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
        (void)ignored;
        return gFailExitCode;
    }
}
