#pragma once

#include "Labels.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

// The bus-free half of rdtmon-hook: reading and checking what the runtime hands the hook.
// Everything here throws rdtmon::Error (never a nlohmann or std exception) so the hook's
// main() has one place that turns a failure into its fail-open/fail-closed line. The
// functions are pure enough to be unit-tested and fuzzed directly.
namespace rdtmon {

// Caps: the OCI state is a few hundred bytes in practice; a bundle's config.json a few KiB.
inline constexpr std::size_t kMaxStateBytes = 1024 * 1024;
inline constexpr std::size_t kMaxConfigBytes = 8 * 1024 * 1024;
// Deeper JSON than this is refused before it reaches the parser.
inline constexpr std::size_t kMaxJsonDepth = 64;

// rdtmon-hook's default --timeout (seconds). The whole process gives up at timeout + 1 s;
// the "timeout" in the hooks.d configs must be larger than that.
inline constexpr double kDefaultHookTimeoutSeconds = 5.0;

// The annotation a container sets to "false" to opt out of monitoring.
inline constexpr std::string_view kMonitoringAnnotation = "org.rdtmon.monitoring";
// org.rdtmon.counters=pinned: passed on as the label counters=pinned (any other value is
// not passed on).
inline constexpr std::string_view kCountersAnnotation = "org.rdtmon.counters";

// How a CRI runtime marks a pod's sandbox (pause) container, which runs nothing worth an
// RMID: containerd's annotation and CRI-O's, each with the value "sandbox".
inline constexpr std::string_view kContainerdContainerType = "io.kubernetes.cri.container-type";
inline constexpr std::string_view kCrioContainerType = "io.kubernetes.cri-o.ContainerType";
inline constexpr std::string_view kSandboxContainerType = "sandbox";

// The OCI runtime state (runtime-spec runtime.md, "State") as handed to hooks on stdin.
struct OciState {
    std::string ociVersion; // "" when absent
    std::string id;         // always a valid container id (isValidContainerId)
    std::string status;     // "creating" (runc), "created" (crun), "stopped", ...; "" when absent
    std::optional<std::int32_t> pid; // > 0 when set
    std::string bundle;              // "" when absent
    std::map<std::string, std::string> annotations;
};

// Parses the state. Throws Error(InvalidArgument) naming the problem when:
// the text is not JSON or nests deeper than kMaxJsonDepth; the top level is not an object;
// "id" is missing, not a string, or not a valid container id; "status", "bundle" or
// "ociVersion" is present but not a string; "annotations" is present, not null, and not an
// object whose values are all strings.
// With requirePid (the create action) "pid" must be an integer in 1..INT32_MAX (a string,
// float, 0, negative or larger value is an error). Without it (delete: poststop often has
// no pid, or 0) the pid is optional and a pid that is not such an integer is ignored.
OciState parseOciState(std::string_view json, bool requirePid);

// Best effort, never throws: the container id in a state text that parseOciState refused,
// for the failure line. Empty when there is none; the id is printable (see printable()).
std::string peekContainerId(std::string_view json) noexcept;

// Reads fd to EOF (retrying EINTR, polling on EAGAIN), reading at most cap + 1 bytes in
// total. Throws Error(InvalidArgument) when there are more than cap bytes and
// Error(Failed) on a read error. Memory use is bounded by cap, whatever the writer sends.
std::string readCapped(int fd, std::size_t cap);

// Where the labels come from: the CRI annotations, containerd's name and CRI-O's name of each.
struct CriLabelSource {
    std::string_view label;
    std::string_view containerd;
    std::string_view crio;
};
inline constexpr CriLabelSource kCriLabelSources[] = {
    {kLabelPod, "io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"},
    {kLabelNamespace, "io.kubernetes.cri.sandbox-namespace", "io.kubernetes.pod.namespace"},
    {kLabelContainer, "io.kubernetes.cri.container-name", "io.kubernetes.container.name"},
    {kLabelPodUid, "io.kubernetes.cri.sandbox-uid", "io.kubernetes.pod.uid"},
};

// The labels pod, namespace, container and pod_uid from the CRI annotations; containerd's
// annotation wins when a container carries both names. With org.rdtmon.counters=pinned,
// also counters=pinned. An absent or empty annotation gives
// no label (a container outside Kubernetes has none). Throws Error(InvalidArgument) naming
// the annotation when its value breaks the label rules (Labels.h).
Labels criLabels(const OciState& state);

// Why the container is skipped because of its annotations (org.rdtmon.monitoring equal to
// "false", or a CRI sandbox container), or nullopt.
std::optional<std::string> skipReason(const OciState& state);

// True when <bundle>/config.json sets linux.intelRdt.enableMonitoring to true (the runtime
// then makes the MON group itself). Opens the bundle directory (must be an absolute path),
// then config.json relative to it with O_NOFOLLOW|O_NONBLOCK, requires a regular file of at
// most kMaxConfigBytes, and reads nothing else from the bundle. Never blocks on a FIFO.
// Throws Error(InvalidArgument) for a missing/unreadable/non-regular/oversized/invalid
// config.json or a bad bundle path.
bool bundleEnablesMonitoring(const std::string& bundle);

// A one-line printable rendering of arbitrary bytes for messages: bytes outside printable
// ASCII become \xNN and the text is cut after maxLen characters with "...".
std::string printable(std::string_view text, std::size_t maxLen = 200);

} // namespace rdtmon
