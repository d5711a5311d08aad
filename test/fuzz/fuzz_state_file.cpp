// The state files' loaders: the snapshot (groups.json) and the journal (groups.journal), the
// same input fed to both. Invariants: only rdtmon::Error(Failed) escapes; every accepted
// record has a valid id that is also its key, a ctrl that is "" or a plain name and labels
// that keep the label rules; serialize() of what was accepted parses back to the same
// records, and so do journal lines written for them; the journal reader applies only
// complete lines and says where they end.

#include "ContainerId.h"
#include "FuzzCommon.h"
#include "GroupRegistry.h"
#include "Labels.h"

using namespace rdtmon;

namespace {

void checkRecords(const std::map<std::string, GroupRecord>& records) {
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
    fuzz::expectOnlyRdtmonErrors("journal round trip", [&] {
        // Every record put, then one erased and put again: the same records back.
        std::string journal;
        for (const auto& [id, rec] : records) {
            journal += GroupRegistry::journalPut(rec);
        }
        if (!records.empty()) {
            journal += GroupRegistry::journalErase(records.begin()->first);
            journal += GroupRegistry::journalPut(records.begin()->second);
        }
        std::map<std::string, GroupRecord> back;
        const GroupRegistry::JournalReplay r = GroupRegistry::replayJournal(journal, back);
        if (back != records || r.tornTail || r.validBytes != journal.size()) {
            fuzz::finding("journal lines written for accepted records did not read back");
        }
    });
}

template <class F> bool onlyFailed(const char* what, F&& f) {
    try {
        f();
        return true;
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::Failed) {
            fuzz::finding((std::string(what) + " threw a kind other than Failed").c_str());
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s threw a foreign exception: %s\n", what, e.what());
        std::abort();
    }
    return false;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(fuzz::asText(data, size));

    std::map<std::string, GroupRecord> records;
    if (onlyFailed("GroupRegistry::parse", [&] { records = GroupRegistry::parse(text); })) {
        checkRecords(records);
    }

    std::map<std::string, GroupRecord> replayed;
    GroupRegistry::JournalReplay r;
    if (onlyFailed("GroupRegistry::replayJournal",
                   [&] { r = GroupRegistry::replayJournal(text, replayed); })) {
        const std::size_t lastNewline = text.rfind('\n');
        const std::size_t complete = lastNewline == std::string::npos ? 0 : lastNewline + 1;
        if (r.validBytes != complete || r.tornTail != (complete < text.size())) {
            fuzz::finding("replayJournal misplaced the end of the complete lines");
        }
        // What follows the last newline never changes the result.
        std::map<std::string, GroupRecord> prefix;
        GroupRegistry::replayJournal(text.substr(0, complete), prefix);
        if (prefix != replayed) {
            fuzz::finding("a torn last line changed the replayed records");
        }
        checkRecords(replayed);
    }
    return 0;
}
