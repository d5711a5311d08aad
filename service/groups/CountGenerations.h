#pragma once

// The generation of every count rdtmond serves (docs/architecture.md, "Generations"): a
// number that changes whenever the kernel's count for one group, domain and event may have
// restarted, so that a client never subtracts two readings across a restart. A count
// restarts when its group is made again (RMID reuse included), when a counter is assigned
// to it (assignable counters), when the mode is switched or resctrl is mounted again; the
// kernel says none of this in the value. rdtmond sees:
// - a group it has not seen, or one made again (another incarnation: its CreatedUsec);
// - a value that was not there at the last read (Unassigned, Unavailable) and is now;
// - a value below the last one read;
// - an assignment it made itself (restart()).
// A new generation is the CLOCK_MONOTONIC microsecond at which rdtmond saw the new count,
// raised above every generation it gave before when needed, so a client comparing two never
// mistakes one for another, across a restart of rdtmond on the same boot too (which gives
// every count a new one: it cannot know that they did not restart meanwhile).
//
// Bus-free and not thread-safe: driven from the loop's thread.

#include "Resctrl.h"

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>

namespace rdtmon {

class CountGenerations {
public:
    // domain -> event -> generation, the shape of Counters.
    using Generations = std::map<std::string, std::map<std::string, uint64_t>>;

    // One group's values as a read found them, at nowUsec (CLOCK_MONOTONIC); returns the
    // generation of each. key names the group (its kind and id: an owned group and a
    // runtime's with the same id are two); incarnation changes when it is made again.
    // decimals: the values that read a decimal fraction, whose generations come out
    // with the others' (an event is one or the other).
    Generations observe(const std::string& key, uint64_t incarnation, const Counters& values,
                        uint64_t nowUsec, const Decimals& decimals = {});
    // rdtmond gave (or took) the group's counter for event: its counts restart.
    void restart(const std::string& key, const std::string& event);
    // Every group's counts of event restart (a mode switch), or of every event when it is
    // empty (resctrl mounted anew).
    void restartAll(const std::string& event);
    // Forgets every group that no observe() named since the last sweep (a full read ends
    // with it: what it did not find is gone).
    void sweep();
    std::size_t groups() const { return groups_.size(); }

    // The keys of an owned group, of a group a runtime made, and of a CTRL_MON group's own
    // counters ("/", "/NAME").
    static std::string ownedKey(const std::string& id) { return "c:" + id; }
    static std::string runtimeKey(const std::string& id) { return "r:" + id; }
    static std::string closKey(const std::string& path) { return path; }

private:
    struct Count {
        uint64_t last = 0;
        uint64_t generation = 0;
    };
    struct Group {
        uint64_t incarnation = 0;
        bool seen = false; // since the last sweep
        std::map<std::string, std::map<std::string, Count>> counts;
    };
    uint64_t next(uint64_t nowUsec);

    std::unordered_map<std::string, Group> groups_;
    uint64_t last_ = 0; // the last generation given
};

} // namespace rdtmon
