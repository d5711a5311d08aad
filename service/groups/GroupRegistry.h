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

// The set of groups this service owns, persisted to <stateDir>/groups.json. Every mutation
// rewrites the file atomically (temp file in the same dir, fsync, rename, fsync of the dir)
// before it returns; if that fails the in-memory state is left unchanged and Error(Failed)
// is thrown. Bus-free.
class GroupRegistry {
public:
    struct LoadResult {
        bool fileExisted = false;
        // Set when the file was corrupt or unreadable and was moved aside: where it went.
        std::optional<std::string> movedAsideTo;
        std::string problem; // what was wrong with it, for the log
    };

    explicit GroupRegistry(std::string stateDir);

    // Creates the state dir if needed (0700) and loads groups.json. A corrupt or unreadable
    // file is renamed to groups.json.corrupt-<realtime usec> and the registry starts empty.
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

    // Serialisation, exposed for tests and fuzzing. parse throws Error(Failed) on any
    // malformed input (wrong shape, bad id, duplicate id, labels that break the rules of
    // Labels.h). A record's "labels" is written only when it has some, and a record without
    // it (every file written before labels existed) loads with none; "cgroup" likewise.
    // Likewise "waiting",
    // "pidStartTime" and "waitSeq" are written only for a waiting record (a waiting record
    // must have the other two): a file written before waiting existed loads as all active.
    static std::string serialize(const std::map<std::string, GroupRecord>& records);
    // One record's line, and the file from the lines in id order: the registry keeps each
    // record's line, so that a write at 1,000 groups formats one record, not all of them.
    static std::string serializeRecord(const GroupRecord& r);
    static std::string serializeLines(const std::map<std::string, std::string>& lines);
    static std::map<std::string, GroupRecord> parse(const std::string& text);

private:
    void persist(); // writes lines_
    void rebuildLines();

    std::string stateDir_;
    std::map<std::string, GroupRecord> records_;
    std::map<std::string, std::string> lines_; // serializeRecord of each record
    std::size_t waitingCount_ = 0;
    std::size_t activeCount_ = 0;
};

} // namespace rdtmon
