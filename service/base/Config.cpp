#include "Config.h"

#include "Errors.h"
#include "ResctrlNames.h"
#include "UniqueFd.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <initializer_list>
#include <sys/stat.h>
#include <unistd.h>

namespace rdtmon {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxConfigSize = 1u << 20;     // 1 MiB
constexpr uint64_t kMaxSeconds = 366ull * 24 * 3600; // a year: far beyond any sane setting

[[noreturn]] void bad(const std::string& key, const std::string& what) {
    throw Error(ErrorKind::InvalidArgument, key + ": " + what);
}

std::string join(const std::string& prefix, const std::string& key) {
    return prefix.empty() ? key : prefix + "." + key;
}

void checkKeys(const json& obj, const std::string& prefix,
               std::initializer_list<const char*> allowed) {
    for (const auto& [key, value] : obj.items()) {
        bool known = false;
        for (const char* a : allowed) {
            if (key == a) {
                known = true;
                break;
            }
        }
        if (!known) {
            bad(join(prefix, key), "unknown key");
        }
    }
}

const json* member(const json& obj, const char* key) {
    auto it = obj.find(key);
    return it == obj.end() ? nullptr : &*it;
}

std::string getString(const json& v, const std::string& key) {
    if (!v.is_string()) {
        bad(key, "expected a string");
    }
    std::string s = v.get<std::string>();
    if (s.find('\0') != std::string::npos) {
        bad(key, "must not contain a NUL character");
    }
    return s;
}

// An integer in [min, kMaxSeconds]; floats are rejected.
uint64_t getSeconds(const json& v, const std::string& key, uint64_t min, const char* expected) {
    if (!v.is_number_integer()) { // true for both signed and unsigned integers
        bad(key, expected);
    }
    if (v.is_number_unsigned()) {
        uint64_t n = v.get<uint64_t>();
        if (n < min) {
            bad(key, expected);
        }
        if (n > kMaxSeconds) {
            bad(key, std::string(expected) + " no larger than " + std::to_string(kMaxSeconds));
        }
        return n;
    }
    // A negative integer.
    bad(key, expected);
}

std::vector<std::string> getStringArray(const json& v, const std::string& key) {
    if (!v.is_array()) {
        bad(key, "expected an array of strings");
    }
    if (v.empty()) {
        bad(key, "expected a non-empty array of strings");
    }
    std::vector<std::string> out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        std::string k = key + "[" + std::to_string(i) + "]";
        out.push_back(getString(v[i], k));
    }
    return out;
}

SourceConfig parseSource(const json& v, const std::string& key) {
    if (!v.is_object()) {
        bad(key, "expected an object with stateDirs or command");
    }
    checkKeys(v, key, {"stateDirs", "command", "timeoutSeconds", "adopt"});
    const json* dirs = member(v, "stateDirs");
    const json* adopt = member(v, "adopt");
    if (adopt != nullptr && !adopt->is_boolean()) {
        bad(key + ".adopt", "expected true or false");
    }
    const json* cmd = member(v, "command");
    const json* timeout = member(v, "timeoutSeconds");
    if ((dirs == nullptr) == (cmd == nullptr)) {
        bad(key, "expected exactly one of stateDirs or command");
    }
    SourceConfig s;
    if (dirs != nullptr) {
        std::string k = key + ".stateDirs";
        s.stateDirs = getStringArray(*dirs, k);
        for (std::size_t i = 0; i < s.stateDirs.size(); ++i) {
            if (s.stateDirs[i].empty() || s.stateDirs[i][0] != '/') {
                bad(k + "[" + std::to_string(i) + "]", "expected an absolute path pattern");
            }
        }
        if (timeout != nullptr) {
            bad(key + ".timeoutSeconds", "only valid with command");
        }
        s.adopt = adopt == nullptr || adopt->get<bool>();
        return s;
    }
    if (adopt != nullptr && adopt->get<bool>()) {
        bad(key + ".adopt", "a command gives only container ids, so its containers cannot be "
                            "adopted; list the runtime's state root in stateDirs instead");
    }
    s.adopt = false;
    std::string k = key + ".command";
    s.command = getStringArray(*cmd, k);
    const std::string& prog = s.command[0];
    if (prog.empty() || (prog[0] != '/' && prog.find('/') != std::string::npos)) {
        bad(k + "[0]", "expected an absolute path or a program name looked up in PATH");
    }
    if (timeout != nullptr) {
        std::string tk = key + ".timeoutSeconds";
        if (!timeout->is_number()) {
            bad(tk, "expected a positive number");
        }
        double secs = timeout->get<double>();
        if (!std::isfinite(secs) || secs <= 0) {
            bad(tk, "expected a positive number");
        }
        if (secs > static_cast<double>(kMaxSeconds)) {
            bad(tk, "expected a positive number no larger than " + std::to_string(kMaxSeconds));
        }
        auto ms = static_cast<int64_t>(std::ceil(secs * 1000.0));
        s.commandTimeout = std::chrono::milliseconds(ms < 1 ? 1 : ms);
    }
    return s;
}

CountersConfig parseCounters(const json& c) {
    if (!c.is_object()) {
        bad("counters", "expected an object");
    }
    checkKeys(c, "counters", {"events", "cycleSeconds", "pin", "maxPinned"});
    CountersConfig out;
    if (const json* e = member(c, "events")) {
        if (!e->is_array() || e->empty()) {
            bad("counters.events", "expected a non-empty array of event names");
        }
        for (const json& v : *e) {
            const std::string ev = getString(v, "counters.events");
            if (!isMbmEvent(ev)) {
                bad("counters.events", std::string("expected ") + kMbmTotalBytes + " or " +
                                           kMbmLocalBytes + ", not " + ev);
            }
            out.events.push_back(ev);
        }
    }
    if (const json* s = member(c, "cycleSeconds")) {
        out.cycle = std::chrono::seconds(
            getSeconds(*s, "counters.cycleSeconds", 1, "expected a positive integer"));
    }
    if (const json* p = member(c, "pin")) {
        if (!p->is_array()) {
            bad("counters.pin", "expected an array of objects of label names and values");
        }
        for (const json& set : *p) {
            if (!set.is_object() || set.empty()) {
                bad("counters.pin", "expected an array of objects of label names and values");
            }
            std::map<std::string, std::string> labels;
            for (const auto& [k, v] : set.items()) {
                labels[k] = getString(v, "counters.pin." + k);
            }
            out.pin.push_back(std::move(labels));
        }
    }
    if (const json* m = member(c, "maxPinned")) {
        if (!m->is_number_unsigned() || m->get<uint64_t>() > 1'000'000) {
            bad("counters.maxPinned", "expected a non-negative integer");
        }
        out.maxPinned = m->get<unsigned>();
    }
    return out;
}

} // namespace

std::vector<SourceConfig> Config::defaultSources() {
    SourceConfig s;
    // containerd's runc shim: /run/containerd/runc/<namespace>/<id>; runc's own root (also
    // CRI-O's and podman's with runc): /run/runc/<id>; crun: /run/crun/<id>.
    s.stateDirs = {"/run/containerd/runc/*", "/run/runc", "/run/crun"};
    return {s};
}

Config parseConfig(const std::string& text) {
    json doc;
    try {
        doc = json::parse(text);
    } catch (const json::exception& e) {
        // e.what() names the line and column, e.g. "... at line 3, column 7: ...". Not only
        // parse_error: a number too large for a double is out_of_range (fuzzer finding).
        throw Error(ErrorKind::InvalidArgument, std::string("invalid JSON: ") + e.what());
    }
    if (!doc.is_object()) {
        throw Error(ErrorKind::InvalidArgument, "configuration: expected a JSON object");
    }
    Config cfg;
    checkKeys(doc, "", {"resctrl", "gc", "groups", "containerSources", "counters"});

    if (const json* r = member(doc, "resctrl")) {
        if (!r->is_object()) {
            bad("resctrl", "expected an object");
        }
        checkKeys(*r, "resctrl", {"path", "mount", "mountOptions"});
        if (const json* p = member(*r, "path")) {
            std::string path = getString(*p, "resctrl.path");
            if (path.empty() || path[0] != '/') {
                bad("resctrl.path", "expected an absolute path");
            }
            cfg.resctrlPath = path;
            cfg.resctrlPathExplicit = true;
        }
        if (const json* m = member(*r, "mount")) {
            if (!m->is_boolean()) {
                bad("resctrl.mount", "expected a boolean");
            }
            cfg.mount = m->get<bool>();
        }
        if (const json* o = member(*r, "mountOptions")) {
            cfg.mountOptions = getString(*o, "resctrl.mountOptions");
        }
    }

    if (const json* g = member(doc, "gc")) {
        if (!g->is_object()) {
            bad("gc", "expected an object");
        }
        checkKeys(*g, "gc", {"intervalSeconds", "graceSeconds"});
        if (const json* i = member(*g, "intervalSeconds")) {
            cfg.gcInterval = std::chrono::seconds(
                getSeconds(*i, "gc.intervalSeconds", 1, "expected a positive integer"));
        }
        if (const json* s = member(*g, "graceSeconds")) {
            cfg.gcGrace = std::chrono::seconds(
                getSeconds(*s, "gc.graceSeconds", 0, "expected a non-negative integer"));
        }
    }

    if (const json* g = member(doc, "groups")) {
        if (!g->is_object()) {
            bad("groups", "expected an object");
        }
        checkKeys(*g, "groups", {"waitForRmid", "exitGraceSeconds"});
        if (const json* e = member(*g, "exitGraceSeconds")) {
            cfg.exitGrace = std::chrono::seconds(
                getSeconds(*e, "groups.exitGraceSeconds", 0, "expected a non-negative integer"));
        }
        if (const json* w = member(*g, "waitForRmid")) {
            if (!w->is_boolean()) {
                bad("groups.waitForRmid", "expected a boolean");
            }
            cfg.waitForRmid = w->get<bool>();
        }
    }

    if (const json* c = member(doc, "counters")) {
        cfg.counters = parseCounters(*c);
    }

    if (const json* cs = member(doc, "containerSources")) {
        if (!cs->is_array()) {
            bad("containerSources", "expected an array of objects");
        }
        cfg.sources.clear();
        for (std::size_t i = 0; i < cs->size(); ++i) {
            cfg.sources.push_back(
                parseSource((*cs)[i], "containerSources[" + std::to_string(i) + "]"));
        }
    }
    return cfg;
}

Config loadConfig(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (!fd) {
        if (errno == ENOENT) {
            return Config{};
        }
        throw Error(ErrorKind::Failed,
                    "cannot read configuration " + path + ": " + std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        throw Error(ErrorKind::Failed,
                    "cannot read configuration " + path + ": " + std::strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) {
        throw Error(ErrorKind::Failed,
                    "cannot read configuration " + path + ": " + std::strerror(EISDIR));
    }
    if (!S_ISREG(st.st_mode)) {
        throw Error(ErrorKind::Failed,
                    "cannot read configuration " + path + ": not a regular file");
    }
    std::string text;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw Error(ErrorKind::Failed,
                        "cannot read configuration " + path + ": " + std::strerror(errno));
        }
        if (n == 0) {
            break;
        }
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > kMaxConfigSize) {
            throw Error(ErrorKind::InvalidArgument,
                        "configuration " + path + " is larger than 1 MiB");
        }
    }
    try {
        return parseConfig(text);
    } catch (const Error& e) {
        throw Error(e.kind(), path + ": " + e.what());
    }
}

} // namespace rdtmon
