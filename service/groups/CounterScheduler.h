#pragma once

// Who holds the assignable counters, when more groups exist than counters
// (docs/architecture.md, "Rotating the counters"). Pure: no resctrl, no clock of its own; the
// GroupManager does what a plan says and reports back.
//
// slots is how many groups can hold counters at once (each holds one per counted event and
// L3 domain). While every group fits, every group holds them all the time (continuous).
// When they do not, pinned groups (up to maxPinned, which always leaves a slot to the rest)
// stay continuous and the other groups take turns in the remaining slots: a turn lasts one
// dwell, and the groups measured longest ago (never measured first) go next, so that every
// group is measured once per cycle. The dwell is cycle / turns, kept between minDwell and
// maxDwell. A group whose turn ended is measured (its count started at the turn's start)
// before its counters go to the next.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace rdtmon {

class CounterScheduler {
public:
    struct Settings {
        uint64_t cycleUsec = 50'000'000;   // the aimed-at cycle when groups take turns
        uint64_t minDwellUsec = 500'000;   // a turn is never shorter (a rate needs time)
        uint64_t maxDwellUsec = 5'000'000; // nor longer (few groups take turns quickly)
        unsigned maxPinned = 0;            // 0: half the slots
        uint64_t retryUsec = 1'000'000;    // after a take the kernel refused (doubling)
    };
    struct Plan {
        std::vector<std::string> measure; // turns that ended: read, then give back
        std::vector<std::string> take;    // assign now
    };
    struct Stats {
        unsigned continuous = 0; // holding all the time
        unsigned rotating = 0;   // taking turns
        uint64_t dwellUsec = 0;  // of a turn (0 when none rotate)
        uint64_t cycleUsec = 0;  // turns x dwell: every rotating group measured once
    };

    CounterScheduler();
    explicit CounterScheduler(Settings s);

    void setSlots(unsigned slots);
    unsigned slots() const { return slots_; }
    // A group to schedule; holding: it holds its counters already (the kernel assigns at
    // mkdir), since heldSinceUsec. Known ids are left as they are.
    void add(const std::string& id, bool pinned, bool holding, uint64_t heldSinceUsec);
    void remove(const std::string& id);
    bool has(const std::string& id) const { return groups_.count(id) != 0; }
    std::vector<std::string> ids() const;

    // What to do at nowUsec: first the measures (each frees a slot), then the takes. Report
    // each outcome: released() for each measure, took() or refused() for each take.
    Plan plan(uint64_t nowUsec);
    void took(const std::string& id, uint64_t nowUsec);
    void refused(const std::string& id, uint64_t nowUsec); // no counter free: later
    void released(const std::string& id, uint64_t nowUsec);

    // Whether id takes turns (its figures are measured over a turn, not read as they are).
    bool rotating(const std::string& id) const;
    bool holding(const std::string& id) const;
    uint64_t heldSinceUsec(const std::string& id) const;
    // When the next plan has something to do (0: none is due; a time <= now: now).
    uint64_t nextDueUsec() const;
    Stats stats() const;

private:
    struct Group {
        bool pinned = false;
        uint64_t seq = 0; // the order groups came in
        bool holding = false;
        uint64_t heldSinceUsec = 0;
        uint64_t turnEndsUsec = 0; // while holding a turn
        bool rotating = false;
        uint64_t lastMeasuredUsec = 0; // 0: never
        uint64_t notBeforeUsec = 0;    // after a refused take
        unsigned refusals = 0;         // in a row
    };
    void assignRoles();
    uint64_t dwell() const;

    Settings s_;
    unsigned slots_ = 0;
    uint64_t seq_ = 0;
    std::map<std::string, Group> groups_;
};

} // namespace rdtmon
