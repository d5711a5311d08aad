// The state file loader (groups.json). Invariants: only rdtmon::Error(Failed) escapes;
// every accepted record has a valid id that is also its key, a ctrl that is "" or a plain
// name and labels that keep the label rules; serialize() of what was accepted parses back to
// the same records.

#include "ContainerId.h"
#include "FuzzCommon.h"
#include "GroupRegistry.h"
#include "Labels.h"

using namespace rdtmon;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(fuzz::asText(data, size));
    std::map<std::string, GroupRecord> records;
    try {
        records = GroupRegistry::parse(text);
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::Failed) {
            fuzz::finding("GroupRegistry::parse threw a kind other than Failed");
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "GroupRegistry::parse threw a foreign exception: %s\n", e.what());
        std::abort();
    }
    for (const auto& [key, rec] : records) {
        if (key != rec.id || !isValidContainerId(rec.id)) {
            fuzz::finding("accepted a record with a bad id");
        }
        if (rec.ctrl.find('/') != std::string::npos || rec.ctrl == "." || rec.ctrl == "..") {
            fuzz::finding("accepted a record whose ctrl is a path");
        }
        try {
            validateLabels(rec.labels);
        } catch (const Error&) {
            fuzz::finding("accepted a record whose labels break the label rules");
        }
    }
    fuzz::expectOnlyRdtmonErrors("serialize round trip", [&] {
        if (GroupRegistry::parse(GroupRegistry::serialize(records)) != records) {
            fuzz::finding("serialize/parse round trip changed the records");
        }
    });
    return 0;
}
