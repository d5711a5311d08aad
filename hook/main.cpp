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
//
// create hands the container's init over as a pidfd with its pod labels (AddContainer,
// whose reply also says whether the container got its group or waits for an RMID; a
// waiting container is one line on stderr and exit 0). It falls back to
// CreateContainerGroup when the service does not know the newer method, and to
// AddContainerByPid (the pid and its start time, which the service checks, only from its
// own pid namespace) when no pidfd can be had. It never sends a bare pid number
// (CreateGroup): in another pid namespace, or once reused, that names another process. The hook
// runs on every container start, so it speaks sd-bus directly: the generated proxy would
// load and start sdbus-c++ each time. Its names come from the XML all the same (ManagerNames.h,
// generated from dbus/org.rdtmon1.Manager.xml at build time).

#include "ManagerBus.h"
#include "OciState.h"

#include "Errors.h"
#include "Names.h"
#include "ProcStat.h"
#include "UniqueFd.h"
#include "rdtmon/dbus/ManagerNames.h"

#include <systemd/sd-bus.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <string>
#include <string_view>
#include <sys/syscall.h>
#include <sys/time.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

namespace {

namespace mgr = rdtmon::xml::Manager;
using rdtmon::hook::appendLabels;
using rdtmon::hook::CallError;
using rdtmon::hook::errnoError;
using rdtmon::hook::ManagerBus;
// The calls below append their arguments by hand: the XML must still say what they append,
// and name the interface the service serves.
static_assert(std::string_view(mgr::AddContainer.in) == "sha{ss}");
static_assert(std::string_view(mgr::AddContainer.out) == "os");
static_assert(std::string_view(mgr::CreateContainerGroup.in) == "sha{ss}");
static_assert(std::string_view(mgr::AddContainerByPid.in) == "suta{ss}");
static_assert(std::string_view(mgr::AddContainerByPid.out) == "os");
static_assert(std::string_view(mgr::RemoveGroup.in) == "s");
static_assert(std::string_view(mgr::kInterface) == rdtmon::kManagerInterface);

// What a service older than AddContainer (or CreateContainerGroup) answers it.
constexpr std::string_view kUnknownMethod = "org.freedesktop.DBus.Error.UnknownMethod";

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

    // Not a failure: the container starts, and rdtmond gives it its group later.
    int waiting() {
        std::string line = prefix() + "waits for an RMID (none is free now); it will be "
                                      "monitored when one frees";
        emit(line);
        journal(LOG_NOTICE, line);
        return 0;
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
        // Not std::floor: the hook links no libm (docs/performance.md).
        it.it_value.tv_usec =
            static_cast<suseconds_t>((total - static_cast<double>(it.it_value.tv_sec)) * 1e6);
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

    int callService(const rdtmon::OciState& st, const rdtmon::Labels& labels);

    Options opts_;
    std::string id_; // printable; empty until known
};

// The process's /proc/PID/stat, as this hook sees it; nullopt when it does not exist.
std::optional<rdtmon::ProcStat> readStat(std::int32_t pid) {
    std::string text;
    rdtmon::UniqueFd fd(
        ::open(("/proc/" + std::to_string(pid) + "/stat").c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        return std::nullopt;
    }
    char buf[1024];
    for (ssize_t n; (n = ::read(fd.get(), buf, sizeof buf)) > 0;) {
        text.append(buf, static_cast<std::size_t>(n));
    }
    return rdtmon::parseProcStat(text);
}

int Hook::callService(const rdtmon::OciState& st, const rdtmon::Labels& labels) {
    updateDeadline(std::string("waiting for ") + rdtmon::kBusName + " on the system bus");
    ManagerBus bus;
    if (std::optional<CallError> e = bus.connect()) {
        return fail(e->name, e->message);
    }
    const auto timeout = static_cast<std::uint64_t>(opts_.timeoutSeconds * 1e6);
    const char* id = st.id.c_str();
    if (opts_.action == "delete") {
        // Nothing to wait for: rdtmond removes the group of a container whose last task is
        // gone by itself, and collects it if this message is lost. The container's delete
        // goes on while rdtmond removes the group.
        std::optional<CallError> e = bus.send(
            mgr::RemoveGroup, [&](sd_bus_message* m) { return sd_bus_message_append(m, "s", id); });
        if (!e) {
            return 0;
        }
        return fail(e->name, e->message);
    }

    const std::int32_t pid = *st.pid;
    // The reply of AddContainer and AddContainerByPid: whether the container waits.
    bool waits = false;
    auto readState = [&](sd_bus_message* reply) {
        const char* path = nullptr;
        const char* state = nullptr;
        int r = sd_bus_message_read(reply, "os", &path, &state);
        waits = r >= 0 && std::string_view(state) == "waiting";
        return r;
    };
    // A service that knows no pidfd method: it would need a bare pid number, which in
    // another pid namespace or once reused names another process. Not sent.
    const CallError tooOld{rdtmon::errorName(rdtmon::ErrorKind::NotSupported),
                           "rdtmond is too old to be handed a process safely (it knows neither "
                           "AddContainer nor CreateContainerGroup); upgrade it"};
    std::optional<CallError> e;
    rdtmon::UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    const int openErr = pidfd ? 0 : errno;
    if (pidfd) {
        auto appendArgs = [&](sd_bus_message* m) {
            int r = sd_bus_message_append(m, "sh", id, pidfd.get());
            return r < 0 ? r : appendLabels(m, labels);
        };
        e = bus.call(mgr::AddContainer, timeout, appendArgs, readState);
        if (e && e->name == kUnknownMethod) {
            // A service older than AddContainer.
            e = bus.call(mgr::CreateContainerGroup, timeout, appendArgs);
            if (e && e->name == kUnknownMethod) {
                e = tooOld;
            }
        } else if (!e && waits) {
            return waiting();
        }
    } else if (openErr == ENOSYS || openErr == EPERM) {
        // No pidfd_open: a kernel before 5.3 (ENOSYS), or a seccomp filter that does not know
        // the call (EPERM). The pid and its start time instead; the service checks both,
        // and that this hook shares its pid namespace.
        std::optional<rdtmon::ProcStat> stat = readStat(pid);
        if (!stat || stat->startTime == 0) {
            e = CallError{rdtmon::errorName(rdtmon::ErrorKind::NoSuchProcess),
                          "process " + std::to_string(pid) + " does not exist"};
        } else {
            e = bus.call(
                mgr::AddContainerByPid, timeout,
                [&](sd_bus_message* m) {
                    int r = sd_bus_message_append(m, "sut", id, static_cast<std::uint32_t>(pid),
                                                  static_cast<std::uint64_t>(stat->startTime));
                    return r < 0 ? r : appendLabels(m, labels);
                },
                readState);
            if (e && e->name == kUnknownMethod) {
                e = tooOld;
                e->message = "rdtmond is too old to be handed a process without a pidfd "
                             "(no AddContainerByPid); upgrade it";
            } else if (!e && waits) {
                return waiting();
            }
        }
    } else if (openErr == ESRCH) {
        e = CallError{rdtmon::errorName(rdtmon::ErrorKind::NoSuchProcess),
                      "process " + std::to_string(pid) + " does not exist"};
    } else {
        e = errnoError(openErr, "pidfd_open of process " + std::to_string(pid));
    }
    if (e) {
        return fail(e->name, e->message);
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
    rdtmon::Labels labels;
    if (opts_.action == "create") {
        try {
            if (rdtmon::bundleEnablesMonitoring(st.bundle)) {
                return skip("the bundle's config.json sets linux.intelRdt.enableMonitoring, the "
                            "runtime makes the monitoring group itself");
            }
            labels = rdtmon::criLabels(st);
        } catch (const rdtmon::Error& e) {
            return fail(rdtmon::errorName(e.kind()), e.what());
        }
    }
    return callService(st, labels);
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
