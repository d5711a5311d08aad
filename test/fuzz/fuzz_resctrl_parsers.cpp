// The parsers of what resctrl files hold: counter values (mon_data), tasks lists and
// /proc/PID/cpu_resctrl_groups, and /proc/PID/stat. They never throw; a tasks list holds only
// positive ids, each of which appears as a line of the input; a counter value is a decimal
// found in the input; a CTRL_MON or MON group name from cpu_resctrl_groups is empty or one
// path component found in the input; a stat's comm is found in the input; an assignment
// mode is one of the names listed, each found in the input; an event of mbm_L3_assignments
// is found in the input.

#include "FuzzCommon.h"
#include "ProcFs.h"
#include "ResctrlParsers.h"

#include <string>

using namespace rdtmon;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text = fuzz::asText(data, size);
    try {
        if (std::optional<uint64_t> v = parseCounterValue(text)) {
            if (text.find(std::to_string(*v)) == std::string_view::npos) {
                fuzz::finding("parseCounterValue returned a value not in the text");
            }
        }
        if (std::optional<double> d = parseDecimalValue(text)) {
            if (!(*d >= 0) || parseCounterValue(text)) {
                fuzz::finding("parseDecimalValue: a negative, NaN or integer value");
            }
        }
        for (pid_t p : parseTaskList(text)) {
            if (p <= 0) {
                fuzz::finding("parseTaskList returned a non-positive id");
            }
            if (text.find(std::to_string(p)) == std::string_view::npos) {
                fuzz::finding("parseTaskList returned an id not in the text");
            }
        }
        if (std::optional<TaskGroups> g = parseCpuResctrlGroups(text)) {
            for (const std::string& name : {g->ctrl, g->mon}) {
                if (name.find('/') != std::string::npos || name.find('\n') != std::string::npos ||
                    name == "." || name == "..") {
                    fuzz::finding("parseCpuResctrlGroups returned a name that is not one "
                                  "directory");
                }
                if (text.find(name) == std::string_view::npos) {
                    fuzz::finding("parseCpuResctrlGroups returned a name not in the text");
                }
            }
        }
        if (std::optional<AssignModes> m = parseAssignModes(text)) {
            bool listed = false;
            for (const std::string& name : m->listed) {
                listed = listed || name == m->active;
                if (name.empty() || text.find(name) == std::string_view::npos) {
                    fuzz::finding("parseAssignModes returned a name not in the text");
                }
            }
            if (!listed) {
                fuzz::finding("parseAssignModes returned an active mode it did not list");
            }
        }
        if (auto counts = parseDomainCounts(text)) {
            for (const auto& [dom, n] : *counts) {
                if (text.find(std::to_string(dom) + "=" + std::to_string(n)) ==
                    std::string_view::npos) {
                    // A number may be written with leading zeros: only the value must be in.
                    if (text.find(std::to_string(n)) == std::string_view::npos) {
                        fuzz::finding("parseDomainCounts returned a count not in the text");
                    }
                }
            }
        }
        if (std::optional<Assignments> a = parseAssignments(text)) {
            for (const auto& [event, states] : *a) {
                if (event.empty() || text.find(event + ":") == std::string_view::npos) {
                    fuzz::finding("parseAssignments returned an event not in the text");
                }
            }
        }
        if (std::optional<ProcStat> st = parseProcStat(text)) {
            if (text.find(st->comm) == std::string_view::npos) {
                fuzz::finding("parseProcStat returned a comm not in the text");
            }
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "a resctrl parser threw: %s\n", e.what());
        std::abort();
    }
    return 0;
}
