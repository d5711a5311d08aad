#pragma once

// What a container runtime leaves on disk about one container, read to adopt containers
// that never got a group (docs/architecture.md, "Adopting running containers"): runc's
// state.json (also containerd's runc shim, podman and CRI-O with runc) and crun's status
// with the config.json copy beside it. The parsers are pure functions over text (unit-tested
// and fuzzed); readRuntimeContainer() adds the reads.

#include "Labels.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rdtmon {

// The state files are a few KiB to a few tens of KiB (runc's carries the whole config).
inline constexpr std::size_t kMaxRuntimeStateBytes = 4u << 20;

struct RuntimeContainer {
    std::string id;
    std::string runtime;    // "runc" or "crun": which file it came from
    uint32_t pid = 0;       // the init, in the runtime's pid namespace
    uint64_t startTime = 0; // the init's start time (clock ticks after boot, stat field 22)
    // Where the container's cgroup is, as the runtime recorded it: absolute directories
    // (runc's cgroup_paths, one per hierarchy) and/or a path relative to the hierarchy's
    // root (crun's cgroup-path). Empty when the runtime recorded none.
    std::vector<std::string> cgroupDirs;
    std::string cgroupPath;
    std::string bundle;
    std::map<std::string, std::string> annotations;
    // The runtime makes and keeps the MON group itself (linux.intelRdt.enableMonitoring).
    bool monitoredByRuntime = false;
};

// runc's <root>/<id>/state.json. Throws Error(InvalidArgument) naming the problem when it is
// not JSON of that shape, lacks init_process_pid (1..INT32_MAX) or init_process_start, or
// its config.labels are not "key=value" strings. The annotations are config.labels but
// "bundle=", which gives the bundle.
RuntimeContainer parseRuncState(std::string_view text, const std::string& id);
// crun's <root>/<id>/status, and the config.json copy beside it (the OCI config: its
// annotations and linux.intelRdt). Throws Error(InvalidArgument) likewise; pid and
// process-start-time are required.
RuntimeContainer parseCrunStatus(std::string_view status, std::string_view config,
                                 const std::string& id);

// Reads the container id of the state root `root`: state.json when there is one, else
// crun's status and config.json. Opens nothing through a symlink, reads at most
// kMaxRuntimeStateBytes a file. nullopt with the reason in whyNot when there is no state
// file yet (runc writes state.json only after the createRuntime hooks ran), the files
// cannot be read, or they do not parse.
std::optional<RuntimeContainer> readRuntimeContainer(const std::string& root, const std::string& id,
                                                     std::string& whyNot);

// Why a container is not for adoption by what its files say (a CRI sandbox, opted out,
// monitored by its runtime, no pid or no cgroup recorded), or nullopt.
std::optional<std::string> notAdoptableReason(const RuntimeContainer& c);
// The labels from the CRI annotations (the hook's rules). Throws Error(InvalidArgument)
// naming the annotation whose value breaks the label rules.
Labels runtimeLabels(const RuntimeContainer& c);

} // namespace rdtmon
