#pragma once

#include "Errors.h"
#include "Labels.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rdtmon {

// How a group came to be: asked for over the bus (the hook's CreateGroup and the like), or
// adopted by rdtmond for a running container that never asked (docs/architecture.md,
// "Adopting running containers").
enum class Origin : uint8_t { Hook, Adopted };
const char* originName(Origin o); // "hook", "adopted"
std::optional<Origin> parseOrigin(std::string_view name);

// What rdtmond knows about one group it created.
struct GroupRecord {
    std::string id;           // container id (also the MON group's directory name)
    std::string ctrl;         // CTRL_MON group: "" for root, else its directory name
    uint32_t pid = 0;         // the pid given to CreateGroup
    uint64_t createdUsec = 0; // CLOCK_REALTIME, microseconds
    // A pending record is written before mkdir and made final after the threads moved:
    // a crash in between leaves a pending record, which start-up resolves by removing the
    // group, so no group ever exists without a record.
    bool pending = false;
    // pod, namespace, container, pod_uid (or none): what the caller said the group belongs to.
    Labels labels;
    // The container's cgroup directory whose joiners are moved into the group (absolute,
    // e.g. /sys/fs/cgroup/unified/...), or "" when the group does not follow a cgroup.
    std::string cgroup;
    // Waiting for an RMID: the container asked when none was free and has no group yet
    // (docs/architecture.md, "Waiting for an RMID"). waiting and pending together: a grant
    // was under way (mkdir made, threads maybe moved, nobody told); start-up removes the
    // directory and the record waits again.
    bool waiting = false;
    // pid's start time (ProcStat::startTime) when the container asked: the grant moves pid
    // only while it still names that process, never a process that reused the pid.
    uint64_t pidStartTime = 0;
    // Arrival order: waiting records get their groups in increasing waitSeq.
    uint64_t waitSeq = 0;
    Origin origin = Origin::Hook;
    bool operator==(const GroupRecord&) const = default;
};

// Throws Error(kind) for a record that breaks a rule: a container id that is not valid, a
// CTRL_MON group name that resctrl could not hold, labels that are not valid.
void validateGroupRecord(const GroupRecord& r, ErrorKind kind);

// The set of groups this service owns, persisted in two files of <stateDir>:
//
//   groups.json     the snapshot: every record at one point (serialize/parse below).
//   groups.journal  the changes since that snapshot, one line each, in order:
//                     {"put":<a record, as in the snapshot>}\n   insert or replace
//                     {"erase":"<container id>"}\n               drop, if there
//
// A mutation appends its line and fdatasyncs the journal before it returns, so its cost
// does not grow with the number of records (rewriting the whole snapshot on every put made
// a create at 1,000 groups cost several times one at none). When the journal holds more
// lines than max(64, records) it is compacted: the records are written as a new snapshot
// atomically (temp file in the same dir, fsync, rename, fsync of the dir), then the journal
// is removed. If a write fails, the in-memory state is left unchanged and Error(Failed) is
// thrown; the journal is not appended to again until a compaction has rewritten the state
// from memory. Bus-free.
//
// What load makes of the files, so that a crash at any point is safe:
//  - The records are the snapshot (none without the file) with the journal's lines applied
//    in order. A file written before the journal existed is a snapshot alone.
//  - A last line without its '\n' is a write cut short by a crash (its call never
//    returned): it is ignored.
//  - Applying a journal to a snapshot that already holds its changes gives the same records
//    (a put sets a whole record, an erase drops one): a crash between a compaction's rename
//    and its removal of the journal loses nothing and invents nothing.
//  - Anything else that cannot be read or breaks a rule (a complete line that does not
//    parse, a snapshot that does not) makes the state corrupt: both files are moved aside,
//    neither being the state without the other, and the registry starts empty.
//  - A journal with lines is compacted away at load, so a restart leaves one snapshot.
class GroupRegistry {
public:
    struct LoadResult {
        bool fileExisted = false; // groups.json or groups.journal
        // Set when the state was corrupt or unreadable and was moved aside: where groups.json
        // went (groups.journal, when there was no groups.json).
        std::optional<std::string> movedAsideTo;
        std::vector<std::string> movedAside; // every file moved aside, groups.json first
        std::string problem;                 // what was wrong with it, for the log
        std::size_t journalLines = 0;        // journal lines applied
        bool tornJournalTail = false;        // a last line without '\n' was ignored
    };

    explicit GroupRegistry(std::string stateDir);

    // Creates the state dir if needed (0700) and loads groups.json and groups.journal. A
    // corrupt or unreadable state is renamed to <name>.corrupt-<realtime usec> (both files,
    // one suffix) and the registry starts empty. Compacts a journal that had lines; a
    // compaction that fails here is logged and tried again at the next mutation.
    LoadResult load();

    const std::string& stateDir() const { return stateDir_; }
    std::optional<GroupRecord> find(const std::string& id) const;
    std::vector<GroupRecord> all() const; // sorted by id
    std::size_t size() const { return records_.size(); }
    // The waiting records (GroupRecord::waiting), in arrival order (waitSeq, then id). The
    // count costs nothing, so the hot paths can ask it whenever something frees an RMID.
    std::size_t waitingCount() const { return waitingCount_; }
    std::vector<GroupRecord> waiting() const;
    // The records of groups that exist (neither pending nor waiting), counted as they change:
    // GroupCount is read at every create, and copying every record to count them made a
    // create at 1,000 groups cost twice one at none.
    std::size_t activeCount() const { return activeCount_; }
    static bool isActive(const GroupRecord& r) { return !r.pending && !r.waiting; }

    void put(const GroupRecord& r);    // insert or replace, then persist
    void erase(const std::string& id); // no-op if absent, else persist
    // Writes every record as a new snapshot and removes the journal (done by itself when the
    // journal grows; rdtmond also calls it when it stops, so that a version without the
    // journal finds everything in groups.json). Throws Error(Failed) if the snapshot cannot
    // be written; a journal that cannot be removed is logged and left (harmless, see above).
    void compact();
    std::size_t journalLines() const { return journalLines_; }

    // Serialisation, exposed for tests and fuzzing. parse throws Error(Failed) on any
    // malformed input (wrong shape, bad id, duplicate id, labels that break the rules of
    // Labels.h). A record's "labels" is written only when it has some, and a record without
    // it (every file written before labels existed) loads with none; "cgroup" likewise.
    // Likewise "waiting",
    // "pidStartTime" and "waitSeq" are written only for a waiting record (a waiting record
    // must have the other two): a file written before waiting existed loads as all active.
    static std::string serialize(const std::map<std::string, GroupRecord>& records);
    static std::map<std::string, GroupRecord> parse(const std::string& text);

    // The journal's lines (with their '\n') and its reader. replayJournal applies the
    // complete lines of text to records in order and throws Error(Failed) on a line that is
    // not one of the two shapes above or whose record parse would reject (records is then
    // left part-applied: load discards it). Bytes after the last '\n' are not applied.
    struct JournalReplay {
        std::size_t lines = 0;      // complete lines applied
        std::size_t validBytes = 0; // up to and including the last '\n'
        bool tornTail = false;      // bytes after it were ignored
    };
    static std::string journalPut(const GroupRecord& r);
    static std::string journalErase(const std::string& id);
    static JournalReplay replayJournal(const std::string& text,
                                       std::map<std::string, GroupRecord>& records);

private:
    // Makes the change already applied to records_ durable: a journal line, or a compaction
    // when the journal is not usable; compacts afterwards when the journal has grown.
    void persist(const std::string& line);
    // Appends line to the journal. False, with nothing written, when the journal is not as
    // this registry left it (gone, replaced, another size): the caller compacts instead.
    bool appendToJournal(const std::string& line);
    void writeSnapshot();
    void count(const GroupRecord& r, bool add);

    std::string stateDir_;
    std::map<std::string, GroupRecord> records_;
    std::size_t waitingCount_ = 0;
    std::size_t activeCount_ = 0;
    // The journal as this registry left it: whether it exists, its size and its lines.
    bool journalExists_ = false;
    uint64_t journalBytes_ = 0;
    std::size_t journalLines_ = 0;
    // False after a failed append, whose bytes may be on disk: the next mutation compacts.
    bool journalUsable_ = true;
};

} // namespace rdtmon
