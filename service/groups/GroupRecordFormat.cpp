// A group record's rules and the state files' format (groups.json, groups.journal): what
// GroupRegistry checks before it keeps a record, and how it writes and reads them.
#include "GroupRegistry.h"

#include "ContainerId.h"
#include "Errors.h"
#include "ResctrlNames.h"

#include <nlohmann/json.hpp>

#include <limits>

namespace rdtmon {
namespace {

constexpr int kVersion = 1;

[[noreturn]] void fail(const std::string& msg) {
    throw Error(ErrorKind::Failed, msg);
}

// A CTRL_MON group name: "" (the root group) or one path component that resctrl could hold
// as a control group (so not ".", "..", nor one of resctrl's own names).
bool isValidCtrl(const std::string& ctrl) {
    if (ctrl.empty()) {
        return true;
    }
    if (ctrl.size() > 255 || ctrl == "." || ctrl == ".." || isReservedResctrlName(ctrl)) {
        return false;
    }
    return ctrl.find('/') == std::string::npos && ctrl.find('\0') == std::string::npos;
}

} // namespace

const char* originName(Origin o) {
    return o == Origin::Adopted ? "adopted" : "hook";
}

std::optional<Origin> parseOrigin(std::string_view name) {
    if (name == "hook") {
        return Origin::Hook;
    }
    if (name == "adopted") {
        return Origin::Adopted;
    }
    return std::nullopt;
}

void validateGroupRecord(const GroupRecord& r, ErrorKind kind) {
    if (!isValidContainerId(r.id)) {
        throw Error(kind, "group record has an invalid container id");
    }
    if (!isValidCtrl(r.ctrl)) {
        throw Error(kind,
                    "group record for container " + r.id + " has an invalid control group name");
    }
    try {
        validateLabels(r.labels);
    } catch (const Error& e) {
        throw Error(kind, "group record for container " + r.id + ": " + e.what());
    }
}

namespace {
// A JSON string literal. Ids and the usual control group names are plain ASCII and are
// copied as they are; anything else goes through nlohmann (escapes, UTF-8 checks).
void appendJsonString(std::string& out, const std::string& s) {
    bool plain = true;
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            plain = false;
            break;
        }
    }
    if (plain) {
        out += '"';
        out += s;
        out += '"';
    } else {
        out += nlohmann::json(s).dump();
    }
}
} // namespace

namespace {
// One record as a JSON object, written directly: building a nlohmann DOM for every record
// on every write was the largest cost of a CreateGroup at 1,000 groups (measured by
// test/bench).
void appendRecord(std::string& out, const GroupRecord& r) {
    out += "{\"id\":";
    appendJsonString(out, r.id);
    out += ",\"ctrl\":";
    appendJsonString(out, r.ctrl);
    out += ",\"pid\":";
    out += std::to_string(r.pid);
    out += ",\"createdUsec\":";
    out += std::to_string(r.createdUsec);
    out += ",\"pending\":";
    out += r.pending ? "true" : "false";
    if (!r.labels.empty()) {
        out += ",\"labels\":{";
        bool firstLabel = true;
        for (const auto& [key, value] : r.labels) {
            if (!firstLabel) {
                out += ',';
            }
            firstLabel = false;
            appendJsonString(out, key);
            out += ':';
            appendJsonString(out, value);
        }
        out += '}';
    }
    if (!r.cgroup.empty()) {
        out += ",\"cgroup\":";
        appendJsonString(out, r.cgroup);
    }
    if (r.origin != Origin::Hook) {
        out += ",\"origin\":";
        appendJsonString(out, originName(r.origin));
    }
    if (r.waiting || r.pidStartTime != 0 || r.waitSeq != 0) {
        out += ",\"waiting\":";
        out += r.waiting ? "true" : "false";
        out += ",\"pidStartTime\":";
        out += std::to_string(r.pidStartTime);
        out += ",\"waitSeq\":";
        out += std::to_string(r.waitSeq);
    }
    out += '}';
}
} // namespace

// One record per line.
std::string GroupRegistry::serialize(const std::map<std::string, GroupRecord>& records) {
    std::string out;
    out.reserve(40 + records.size() * 112);
    out += "{\"version\":";
    out += std::to_string(kVersion);
    out += ",\"groups\":[";
    bool first = true;
    for (const auto& [id, r] : records) {
        out += first ? "\n" : ",\n";
        first = false;
        appendRecord(out, r);
    }
    out += "\n]}\n";
    return out;
}

namespace {
// One record object of either file; where names it in the messages.
GroupRecord parseRecord(const nlohmann::json& g, const std::string& where) {
    if (!g.is_object()) {
        fail(where + ": expected an object");
    }
    for (const auto& [key, value] : g.items()) {
        if (key != "id" && key != "ctrl" && key != "pid" && key != "createdUsec" &&
            key != "pending" && key != "labels" && key != "cgroup" && key != "waiting" &&
            key != "pidStartTime" && key != "waitSeq" && key != "origin") {
            fail(where + ": unknown key " + key);
        }
    }
    auto id = g.find("id");
    auto ctrl = g.find("ctrl");
    auto pid = g.find("pid");
    auto created = g.find("createdUsec");
    auto pending = g.find("pending");
    if (id == g.end() || !id->is_string()) {
        fail(where + ".id: expected a string");
    }
    if (ctrl == g.end() || !ctrl->is_string()) {
        fail(where + ".ctrl: expected a string");
    }
    if (pid == g.end() || !pid->is_number_unsigned() ||
        pid->get<uint64_t>() > std::numeric_limits<uint32_t>::max()) {
        fail(where + ".pid: expected an unsigned 32-bit integer");
    }
    if (created == g.end() || !created->is_number_unsigned()) {
        fail(where + ".createdUsec: expected an unsigned integer");
    }
    if (pending == g.end() || !pending->is_boolean()) {
        fail(where + ".pending: expected a boolean");
    }
    GroupRecord r;
    r.id = id->get<std::string>();
    r.ctrl = ctrl->get<std::string>();
    r.pid = static_cast<uint32_t>(pid->get<uint64_t>());
    r.createdUsec = created->get<uint64_t>();
    r.pending = pending->get<bool>();
    if (!isValidContainerId(r.id)) {
        fail(where + ".id: invalid container id");
    }
    if (!isValidCtrl(r.ctrl)) {
        fail(where + ".ctrl: invalid control group name");
    }
    // Optional: records written before labels existed have none.
    if (auto labels = g.find("labels"); labels != g.end()) {
        if (!labels->is_object()) {
            fail(where + ".labels: expected an object of strings");
        }
        for (const auto& [key, value] : labels->items()) {
            if (!value.is_string()) {
                fail(where + ".labels: expected an object of strings");
            }
            r.labels.emplace(key, value.get<std::string>());
        }
        try {
            validateLabels(r.labels);
        } catch (const Error& e) {
            fail(where + ".labels: " + e.what());
        }
    }
    // Optional: records written before cgroups were followed follow none.
    if (auto cg = g.find("cgroup"); cg != g.end()) {
        if (!cg->is_string()) {
            fail(where + ".cgroup: expected a string");
        }
        r.cgroup = cg->get<std::string>();
        if (!r.cgroup.empty() && (r.cgroup.front() != '/' || r.cgroup.size() > 4096 ||
                                  r.cgroup.find('\0') != std::string::npos ||
                                  r.cgroup.find('\n') != std::string::npos)) {
            fail(where + ".cgroup: expected an absolute path");
        }
    }
    // Optional: records written before adoption existed were all asked for.
    if (auto o = g.find("origin"); o != g.end()) {
        std::optional<Origin> origin =
            o->is_string() ? parseOrigin(o->get<std::string>()) : std::nullopt;
        if (!origin) {
            fail(where + ".origin: expected \"hook\" or \"adopted\"");
        }
        r.origin = *origin;
    }
    // Optional: records written before waiting existed are all active.
    if (auto waiting = g.find("waiting"); waiting != g.end()) {
        if (!waiting->is_boolean()) {
            fail(where + ".waiting: expected a boolean");
        }
        r.waiting = waiting->get<bool>();
    }
    for (auto [key, field] :
         {std::pair{"pidStartTime", &r.pidStartTime}, std::pair{"waitSeq", &r.waitSeq}}) {
        auto v = g.find(key);
        if (v == g.end()) {
            if (r.waiting) {
                fail(where + "." + key + ": a waiting record needs it");
            }
            continue;
        }
        if (!v->is_number_unsigned()) {
            fail(where + "." + key + ": expected an unsigned integer");
        }
        *field = v->get<uint64_t>();
    }
    return r;
}
} // namespace

std::map<std::string, GroupRecord> GroupRegistry::parse(const std::string& text) {
    nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) {
        fail("groups file is not valid JSON");
    }
    if (!doc.is_object()) {
        fail("groups file: expected an object");
    }
    for (const auto& [key, value] : doc.items()) {
        if (key != "version" && key != "groups") {
            fail("groups file: unknown key " + key);
        }
    }
    auto version = doc.find("version");
    if (version == doc.end() || !version->is_number_unsigned() ||
        version->get<uint64_t>() != static_cast<uint64_t>(kVersion)) {
        fail("groups file: missing or unsupported version");
    }
    auto groups = doc.find("groups");
    if (groups == doc.end() || !groups->is_array()) {
        fail("groups file: groups must be an array");
    }
    std::map<std::string, GroupRecord> out;
    std::size_t index = 0;
    for (const auto& g : *groups) {
        GroupRecord r = parseRecord(g, "groups file: groups[" + std::to_string(index++) + "]");
        if (!out.emplace(r.id, r).second) {
            fail("groups file: groups[" + std::to_string(index - 1) +
                 "].id: duplicate container id " + r.id);
        }
    }
    return out;
}

std::string GroupRegistry::journalPut(const GroupRecord& r) {
    std::string out;
    out.reserve(128);
    out += "{\"put\":";
    appendRecord(out, r);
    out += "}\n";
    return out;
}

std::string GroupRegistry::journalErase(const std::string& id) {
    std::string out = "{\"erase\":";
    appendJsonString(out, id);
    out += "}\n";
    return out;
}

GroupRegistry::JournalReplay
GroupRegistry::replayJournal(const std::string& text, std::map<std::string, GroupRecord>& records) {
    JournalReplay res;
    std::size_t pos = 0;
    for (std::size_t eol; (eol = text.find('\n', pos)) != std::string::npos; pos = eol + 1) {
        const std::string where = "groups journal: line " + std::to_string(res.lines + 1);
        const nlohmann::json line = nlohmann::json::parse(
            text.begin() + static_cast<std::ptrdiff_t>(pos),
            text.begin() + static_cast<std::ptrdiff_t>(eol), nullptr, /*allow_exceptions=*/false);
        if (line.is_discarded() || !line.is_object() || line.size() != 1) {
            fail(where + ": expected {\"put\":{...}} or {\"erase\":\"id\"}");
        }
        if (auto put = line.find("put"); put != line.end()) {
            GroupRecord r = parseRecord(*put, where + ": put");
            records.insert_or_assign(r.id, std::move(r));
        } else if (auto erase = line.find("erase"); erase != line.end()) {
            if (!erase->is_string() || !isValidContainerId(erase->get<std::string>())) {
                fail(where + ": erase: expected a container id");
            }
            records.erase(erase->get<std::string>());
        } else {
            fail(where + ": unknown key " + line.begin().key());
        }
        ++res.lines;
        res.validBytes = eol + 1;
    }
    // Past the last newline: an append that a crash cut short. Its call never returned.
    res.tornTail = res.validBytes < text.size();
    return res;
}

} // namespace rdtmon
