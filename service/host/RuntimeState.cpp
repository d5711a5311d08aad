#include "RuntimeState.h"

#include "ContainerId.h"
#include "Errors.h"
#include "OciState.h"
#include "UniqueFd.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <limits>
#include <sys/stat.h>
#include <unistd.h>

namespace rdtmon {
namespace {

using nlohmann::json;

[[noreturn]] void invalid(const std::string& msg) {
    throw Error(ErrorKind::InvalidArgument, msg);
}

json parseObject(std::string_view text, const std::string& what) {
    // The same depth rule as the hook's OCI state: refused before the parser sees it.
    std::size_t depth = 0;
    bool inString = false;
    bool escaped = false;
    for (char c : text) {
        if (inString) {
            if (escaped) {
                escaped = false;
            } else if (c == '\\') {
                escaped = true;
            } else if (c == '"') {
                inString = false;
            }
            continue;
        }
        if (c == '"') {
            inString = true;
        } else if ((c == '[' || c == '{') && ++depth > kMaxJsonDepth) {
            invalid(what + " nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    json j;
    try {
        j = json::parse(text.begin(), text.end());
    } catch (const json::exception& e) {
        invalid(what + " is not valid JSON: " + printable(e.what()));
    }
    if (!j.is_object()) {
        invalid(what + " is a JSON " + std::string(j.type_name()) + ", expected an object");
    }
    return j;
}

uint32_t requirePid(const json& obj, const char* key, const std::string& what) {
    auto it = obj.find(key);
    if (it == obj.end() || !it->is_number_unsigned() || it->get<uint64_t>() == 0 ||
        it->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
        invalid(what + ": \"" + key + "\" is missing or not a pid");
    }
    return static_cast<uint32_t>(it->get<uint64_t>());
}

uint64_t requireCount(const json& obj, const char* key, const std::string& what) {
    auto it = obj.find(key);
    if (it == obj.end() || !it->is_number_unsigned() || it->get<uint64_t>() == 0) {
        invalid(what + ": \"" + key + "\" is missing or not a positive integer");
    }
    return it->get<uint64_t>();
}

std::string optString(const json& obj, const char* key, const std::string& what) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) {
        return {};
    }
    if (!it->is_string()) {
        invalid(what + ": \"" + key + "\" is a " + std::string(it->type_name()) +
                ", expected a string");
    }
    return it->get<std::string>();
}

// obj[key1][key2] is true.
bool flagAt(const json& obj, const char* key1, const char* key2) {
    auto a = obj.find(key1);
    if (a == obj.end() || !a->is_object()) {
        return false;
    }
    auto b = a->find(key2);
    return b != a->end() && b->is_boolean() && b->get<bool>();
}

void checkId(const std::string& id) {
    if (!isValidContainerId(id)) {
        invalid("\"" + printable(id) + "\" is not a valid container id");
    }
}

// Reads name below dirfd: a regular file, no symlink followed, at most the cap.
std::optional<std::string> readStateFile(int dirfd, const char* name, int& err) {
    UniqueFd fd(::openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!fd) {
        err = errno;
        return std::nullopt;
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        err = errno;
        return std::nullopt;
    }
    if (!S_ISREG(st.st_mode)) {
        err = EINVAL;
        return std::nullopt;
    }
    try {
        return readCapped(fd.get(), kMaxRuntimeStateBytes);
    } catch (const Error& e) {
        err = e.kind() == ErrorKind::InvalidArgument ? EFBIG : EIO;
        return std::nullopt;
    }
}

} // namespace

RuntimeContainer parseRuncState(std::string_view text, const std::string& id) {
    checkId(id);
    const std::string what = "runc state.json of " + id;
    json j = parseObject(text, what);
    RuntimeContainer c;
    c.id = id;
    c.runtime = "runc";
    c.pid = requirePid(j, "init_process_pid", what);
    c.startTime = requireCount(j, "init_process_start", what);
    if (auto it = j.find("cgroup_paths"); it != j.end() && it->is_object()) {
        for (const auto& [hierarchy, dir] : it->items()) {
            if (dir.is_string() && !dir.get<std::string>().empty()) {
                c.cgroupDirs.push_back(dir.get<std::string>());
            }
        }
    }
    auto cfg = j.find("config");
    if (cfg == j.end() || !cfg->is_object()) {
        invalid(what + ": \"config\" is missing or not an object");
    }
    if (auto labels = cfg->find("labels"); labels != cfg->end() && !labels->is_null()) {
        if (!labels->is_array()) {
            invalid(what + ": config.labels is not an array");
        }
        for (const json& l : *labels) {
            if (!l.is_string()) {
                invalid(what + ": config.labels holds a " + std::string(l.type_name()));
            }
            const std::string kv = l.get<std::string>();
            const std::size_t eq = kv.find('=');
            if (eq == std::string::npos || eq == 0) {
                invalid(what + ": config.labels entry \"" + printable(kv) + "\" is not key=value");
            }
            std::string key = kv.substr(0, eq);
            std::string value = kv.substr(eq + 1);
            if (key == "bundle") {
                c.bundle = std::move(value); // runc's own entry, not an annotation
            } else {
                c.annotations[std::move(key)] = std::move(value);
            }
        }
    }
    // libcontainer's config (not the OCI spec's): intel_rdt.enableMonitoring (runc >= 1.4).
    c.monitoredByRuntime = flagAt(*cfg, "intel_rdt", "enableMonitoring");
    return c;
}

RuntimeContainer parseCrunStatus(std::string_view status, std::string_view config,
                                 const std::string& id) {
    checkId(id);
    const std::string what = "crun status of " + id;
    json j = parseObject(status, what);
    RuntimeContainer c;
    c.id = id;
    c.runtime = "crun";
    c.pid = requirePid(j, "pid", what);
    c.startTime = requireCount(j, "process-start-time", what);
    c.cgroupPath = optString(j, "cgroup-path", what);
    c.bundle = optString(j, "bundle", what);
    const std::string cwhat = "crun config.json of " + id;
    json cfg = parseObject(config, cwhat);
    if (auto a = cfg.find("annotations"); a != cfg.end() && !a->is_null()) {
        if (!a->is_object()) {
            invalid(cwhat + ": \"annotations\" is not an object");
        }
        for (const auto& [key, value] : a->items()) {
            if (!value.is_string()) {
                invalid(cwhat + ": annotation " + printable(key) + " is not a string");
            }
            c.annotations[key] = value.get<std::string>();
        }
    }
    if (auto lnx = cfg.find("linux"); lnx != cfg.end() && lnx->is_object()) {
        c.monitoredByRuntime = flagAt(*lnx, "intelRdt", "enableMonitoring");
    }
    return c;
}

std::optional<RuntimeContainer> readRuntimeContainer(const std::string& root, const std::string& id,
                                                     std::string& whyNot) {
    if (!isValidContainerId(id)) {
        whyNot = "not a valid container id";
        return std::nullopt;
    }
    const std::string dir = root + "/" + id;
    UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!d) {
        whyNot = "cannot open " + dir + ": " + std::strerror(errno);
        return std::nullopt;
    }
    int err = 0;
    try {
        if (std::optional<std::string> s = readStateFile(d.get(), "state.json", err)) {
            return parseRuncState(*s, id);
        }
        if (err != ENOENT) {
            whyNot = "cannot read " + dir + "/state.json: " + std::strerror(err);
            return std::nullopt;
        }
        std::optional<std::string> st = readStateFile(d.get(), "status", err);
        if (!st) {
            whyNot = err == ENOENT ? "no state file yet (being created, or not a runc or crun "
                                     "container)"
                                   : "cannot read " + dir + "/status: " + std::strerror(err);
            return std::nullopt;
        }
        std::optional<std::string> cfg = readStateFile(d.get(), "config.json", err);
        if (!cfg) {
            whyNot = "cannot read " + dir + "/config.json: " + std::strerror(err);
            return std::nullopt;
        }
        return parseCrunStatus(*st, *cfg, id);
    } catch (const Error& e) {
        whyNot = e.what();
        return std::nullopt;
    }
}

std::optional<std::string> notAdoptableReason(const RuntimeContainer& c) {
    OciState st;
    st.id = c.id;
    st.annotations = c.annotations;
    if (std::optional<std::string> why = skipReason(st)) {
        return why;
    }
    if (c.monitoredByRuntime) {
        return std::string("monitored by its runtime (linux.intelRdt.enableMonitoring)");
    }
    if (c.cgroupDirs.empty() && (c.cgroupPath.empty() || c.cgroupPath == "/")) {
        return std::string("its runtime recorded no cgroup of its own");
    }
    return std::nullopt;
}

Labels runtimeLabels(const RuntimeContainer& c) {
    OciState st;
    st.id = c.id;
    st.annotations = c.annotations;
    return criLabels(st);
}

} // namespace rdtmon
