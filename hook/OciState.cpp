#include "OciState.h"

#include "ContainerId.h"
#include "Errors.h"
#include "UniqueFd.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <limits>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

namespace rdtmon {
namespace {

using nlohmann::json;

[[noreturn]] void invalid(const std::string& msg) {
    throw Error(ErrorKind::InvalidArgument, msg);
}

// nlohmann's parser keeps its own stack, but a value nested 100000 deep still costs memory
// and recursion elsewhere (dump, destruction in older versions): refuse deep nesting before
// parsing. Brackets inside strings do not count.
void checkDepth(std::string_view text, std::string_view what) {
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
        } else if (c == '[' || c == '{') {
            if (++depth > kMaxJsonDepth) {
                invalid(std::string(what) + " nests deeper than " + std::to_string(kMaxJsonDepth) +
                        " levels");
            }
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
}

json parseJson(std::string_view text, std::string_view what) {
    checkDepth(text, what);
    try {
        return json::parse(text.begin(), text.end());
    } catch (const json::exception& e) {
        invalid(std::string(what) + " is not valid JSON: " + printable(e.what()));
    }
}

// The member as a string; nullopt when absent; InvalidArgument when present with another type.
std::optional<std::string> optionalString(const json& obj, const char* key) {
    auto it = obj.find(key);
    if (it == obj.end()) {
        return std::nullopt;
    }
    if (!it->is_string()) {
        invalid(std::string("OCI state: \"") + key + "\" is a " + it->type_name() +
                ", expected a string");
    }
    return it->get<std::string>();
}

// A pid in 1..INT32_MAX, or a description of what is wrong with it.
std::optional<std::int32_t> pidValue(const json& v, std::string& problem) {
    if (v.is_number_unsigned()) {
        auto u = v.get<std::uint64_t>();
        if (u >= 1 && u <= static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max())) {
            return static_cast<std::int32_t>(u);
        }
        problem = "is " + std::to_string(u) + ", expected 1.." +
                  std::to_string(std::numeric_limits<std::int32_t>::max());
        return std::nullopt;
    }
    if (v.is_number_integer()) {
        problem = "is " + std::to_string(v.get<std::int64_t>()) + ", expected a positive pid";
        return std::nullopt;
    }
    problem = std::string("is a ") + v.type_name() + ", expected a positive integer";
    return std::nullopt;
}

} // namespace

std::string printable(std::string_view text, std::size_t maxLen) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string s;
    std::size_t n = 0;
    for (char ch : text) {
        if (n++ >= maxLen) {
            s += "...";
            break;
        }
        auto c = static_cast<unsigned char>(ch);
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            s += ch;
        } else {
            s += "\\x";
            s += hex[c >> 4];
            s += hex[c & 0xf];
        }
    }
    return s;
}

OciState parseOciState(std::string_view text, bool requirePid) {
    json j = parseJson(text, "OCI state");
    if (!j.is_object()) {
        invalid(std::string("OCI state is a JSON ") + j.type_name() + ", expected an object");
    }
    OciState st;
    auto id = j.find("id");
    if (id == j.end()) {
        invalid("OCI state has no \"id\"");
    }
    if (!id->is_string()) {
        invalid(std::string("OCI state: \"id\" is a ") + id->type_name() + ", expected a string");
    }
    st.id = id->get<std::string>();
    validateContainerId(st.id);

    st.ociVersion = optionalString(j, "ociVersion").value_or("");
    st.status = optionalString(j, "status").value_or("");
    st.bundle = optionalString(j, "bundle").value_or("");

    auto pid = j.find("pid");
    std::string problem;
    if (pid != j.end()) {
        st.pid = pidValue(*pid, problem);
    } else {
        problem = "is missing";
    }
    if (requirePid && !st.pid) {
        invalid("OCI state: \"pid\" " + problem);
    }

    auto ann = j.find("annotations");
    if (ann != j.end() && !ann->is_null()) {
        if (!ann->is_object()) {
            invalid(std::string("OCI state: \"annotations\" is a ") + ann->type_name() +
                    ", expected an object of strings");
        }
        for (const auto& [key, value] : ann->items()) {
            if (!value.is_string()) {
                invalid("OCI state: annotation \"" + printable(key) + "\" is a " +
                        value.type_name() + ", expected a string");
            }
            st.annotations.emplace(key, value.get<std::string>());
        }
    }
    return st;
}

std::string peekContainerId(std::string_view text) noexcept {
    try {
        checkDepth(text, "OCI state");
        json j = json::parse(text.begin(), text.end(), nullptr, false);
        if (j.is_object()) {
            auto id = j.find("id");
            if (id != j.end() && id->is_string()) {
                return printable(id->get<std::string>(), 128);
            }
        }
    } catch (...) {
        // best effort only
    }
    return {};
}

std::string readCapped(int fd, std::size_t cap) {
    std::string out;
    std::size_t limit = cap + 1; // one byte more than allowed tells "too much" from "exactly cap"
    char buf[65536];
    while (out.size() < limit) {
        std::size_t want = std::min(sizeof(buf), limit - out.size());
        ssize_t n = ::read(fd, buf, want);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                pollfd p{fd, POLLIN, 0};
                ::poll(&p, 1, -1);
                continue;
            }
            throw Error(ErrorKind::Failed, std::string("read failed: ") + std::strerror(errno));
        }
        if (n == 0) {
            return out;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
    invalid("input is larger than " + std::to_string(cap) + " bytes");
}

std::optional<std::string> skipReason(const OciState& state) {
    auto it = state.annotations.find(std::string(kMonitoringAnnotation));
    if (it != state.annotations.end() && it->second == "false") {
        return "annotation " + std::string(kMonitoringAnnotation) + "=false";
    }
    for (std::string_view name : {kContainerdContainerType, kCrioContainerType}) {
        it = state.annotations.find(std::string(name));
        if (it != state.annotations.end() && it->second == kSandboxContainerType) {
            return "a CRI sandbox container (annotation " + std::string(name) + "=" +
                   std::string(kSandboxContainerType) + ")";
        }
    }
    return std::nullopt;
}

Labels criLabels(const OciState& state) {
    Labels labels;
    for (const CriLabelSource& src : kCriLabelSources) {
        for (std::string_view name : {src.containerd, src.crio}) {
            auto it = state.annotations.find(std::string(name));
            if (it == state.annotations.end() || it->second.empty()) {
                continue;
            }
            std::string problem = labelValueProblem(it->second);
            if (!problem.empty()) {
                invalid("annotation " + std::string(name) + " (label " + std::string(src.label) +
                        ") " + problem);
            }
            labels.emplace(src.label, it->second);
            break;
        }
    }
    const auto pin = state.annotations.find(std::string(kCountersAnnotation));
    if (pin != state.annotations.end() && pin->second == kCountersPinned) {
        labels.emplace(kLabelCounters, kCountersPinned);
    }
    return labels;
}

bool bundleEnablesMonitoring(const std::string& bundle) {
    if (bundle.empty() || bundle[0] != '/') {
        invalid("OCI state: bundle \"" + printable(bundle) + "\" is not an absolute path");
    }
    if (bundle.find('\0') != std::string::npos) {
        invalid("OCI state: bundle path contains a NUL byte");
    }
    const std::string where = printable(bundle) + "/config.json";
    UniqueFd dir(::open(bundle.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) {
        invalid("cannot open bundle directory " + printable(bundle) + ": " + std::strerror(errno));
    }
    UniqueFd cfg(
        ::openat(dir.get(), "config.json", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!cfg) {
        int err = errno;
        invalid("cannot open " + where + ": " +
                (err == ELOOP ? std::string("it is a symbolic link") : std::strerror(err)));
    }
    struct stat st {};
    if (::fstat(cfg.get(), &st) != 0) {
        invalid("cannot stat " + where + ": " + std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        invalid(where + " is not a regular file");
    }
    if (static_cast<std::uint64_t>(st.st_size) > kMaxConfigBytes) {
        invalid(where + " is larger than " + std::to_string(kMaxConfigBytes) + " bytes");
    }
    std::string text;
    try {
        text = readCapped(cfg.get(), kMaxConfigBytes);
    } catch (const Error& e) {
        invalid(where + ": " + e.what());
    }
    json j = parseJson(text, where);
    if (!j.is_object()) {
        invalid(where + " is a JSON " + j.type_name() + ", expected an object");
    }
    auto lnx = j.find("linux");
    if (lnx == j.end() || !lnx->is_object()) {
        return false;
    }
    auto rdt = lnx->find("intelRdt");
    if (rdt == lnx->end() || !rdt->is_object()) {
        return false;
    }
    auto mon = rdt->find("enableMonitoring");
    return mon != rdt->end() && mon->is_boolean() && mon->get<bool>();
}

} // namespace rdtmon
