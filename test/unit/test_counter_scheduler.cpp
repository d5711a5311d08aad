// CounterScheduler: every group holds counters while all fit; when they do not, pinned
// groups (up to the bound) hold them all the time and the rest take turns so that each is
// measured once per cycle, oldest figure first; the dwell follows the cycle within its
// bounds; a refused take waits; fewer slots end the turns that end first.

#include "CounterScheduler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

using rdtmon::CounterScheduler;
using ::testing::UnorderedElementsAre;

namespace {

constexpr uint64_t kSec = 1'000'000;

// Built with += (GCC 12 warns wrongly about "literal" + std::to_string()).
std::string name(int i, const char* prefix = "c") {
    std::string n = prefix;
    n += std::to_string(i);
    return n;
}

// Does what a plan says, as GroupManager does when the kernel accepts every write.
CounterScheduler::Plan step(CounterScheduler& s, uint64_t now) {
    CounterScheduler::Plan p = s.plan(now);
    for (const std::string& id : p.measure) {
        s.released(id, now);
    }
    for (const std::string& id : p.take) {
        s.took(id, now);
    }
    return p;
}

TEST(CounterScheduler, WhileAllFitEveryGroupHoldsCountersAllTheTime) {
    CounterScheduler s;
    s.setSlots(4);
    s.add("a", false, true, 0); // given counters at its mkdir
    s.add("b", false, false, 0);
    s.add("c", false, false, 0);
    const auto p = step(s, 10);
    EXPECT_TRUE(p.measure.empty());
    EXPECT_THAT(p.take, UnorderedElementsAre("b", "c"));
    EXPECT_FALSE(s.rotating("a"));
    EXPECT_EQ(s.stats().continuous, 3u);
    EXPECT_EQ(s.stats().rotating, 0u);
    EXPECT_EQ(s.stats().cycleUsec, 0u);
    EXPECT_EQ(s.nextDueUsec(), 0u) << "nothing to do until something changes";
    EXPECT_TRUE(step(s, 100 * kSec).take.empty());
}

TEST(CounterScheduler, MoreGroupsThanSlotsAreAllMeasuredWithinOneCycle) {
    CounterScheduler::Settings set;
    set.cycleUsec = 60 * kSec;
    CounterScheduler s(set);
    s.setSlots(15); // 32 counters, 2 held by the default group, 2 events
    for (int i = 0; i < 1000; ++i) {
        s.add(name(i), false, false, 0);
    }
    const auto st = s.stats();
    EXPECT_EQ(st.rotating, 1000u);
    EXPECT_EQ(st.dwellUsec, 60 * kSec / 67);
    EXPECT_LE(st.cycleUsec, 60 * kSec);
    std::map<std::string, int> measured;
    uint64_t now = kSec;
    std::set<std::string> holding;
    while (now <= kSec + st.cycleUsec) { // one cycle from the first takes
        const auto p = step(s, now);
        for (const auto& id : p.measure) {
            ++measured[id];
            holding.erase(id);
        }
        for (const auto& id : p.take) {
            holding.insert(id);
        }
        EXPECT_LE(holding.size(), 15u);
        const uint64_t due = s.nextDueUsec();
        ASSERT_GT(due, now);
        now = due;
    }
    EXPECT_EQ(measured.size(), 1000u) << "every group within one cycle";
    // 67 turns of 15 slots: the last turn's 5 spare slots go to the first measured again.
    int again = 0;
    for (const auto& [id, n] : measured) {
        EXPECT_LE(n, 2) << id;
        again += n - 1;
    }
    EXPECT_EQ(again, 67 * 15 - 1000) << "no slot left idle, none measured twice early";
}

TEST(CounterScheduler, PinnedGroupsAreNeverRotatedUpToTheBound) {
    CounterScheduler::Settings set;
    set.maxPinned = 2;
    CounterScheduler s(set);
    s.setSlots(4);
    s.add("p1", true, false, 0);
    for (int i = 0; i < 10; ++i) {
        s.add(name(i), false, false, 0);
    }
    s.add("p2", true, false, 0);
    s.add("p3", true, false, 0); // beyond the bound: takes turns with the rest
    uint64_t now = kSec;
    for (int round = 0; round < 50; ++round) {
        const auto p = step(s, now);
        for (const char* pinned : {"p1", "p2"}) {
            EXPECT_TRUE(std::find(p.measure.begin(), p.measure.end(), pinned) == p.measure.end())
                << pinned << " rotated";
            EXPECT_TRUE(s.holding(pinned)) << pinned;
        }
        now = s.nextDueUsec();
    }
    EXPECT_FALSE(s.rotating("p1"));
    EXPECT_FALSE(s.rotating("p2"));
    EXPECT_TRUE(s.rotating("p3"));
    EXPECT_EQ(s.stats().continuous, 2u);
}

TEST(CounterScheduler, TheBoundAlwaysLeavesASlotToTheRest) {
    CounterScheduler s; // maxPinned 0: half the slots
    s.setSlots(3);
    for (int i = 0; i < 6; ++i) {
        s.add(name(i, "p"), true, false, 0);
    }
    EXPECT_EQ(s.stats().continuous, 1u);
    CounterScheduler::Settings set;
    set.maxPinned = 100;
    CounterScheduler greedy(set);
    greedy.setSlots(3);
    for (int i = 0; i < 6; ++i) {
        greedy.add(name(i, "p"), true, false, 0);
    }
    EXPECT_EQ(greedy.stats().continuous, 2u);
    EXPECT_EQ(greedy.stats().rotating, 4u);
}

TEST(CounterScheduler, TheDwellStaysWithinItsBounds) {
    CounterScheduler::Settings set;
    set.cycleUsec = 50 * kSec;
    CounterScheduler few(set);
    few.setSlots(4);
    for (int i = 0; i < 6; ++i) {
        few.add(name(i), false, false, 0);
    }
    EXPECT_EQ(few.stats().dwellUsec, set.maxDwellUsec) << "2 turns: not 25 s each";
    EXPECT_EQ(few.stats().cycleUsec, 2 * set.maxDwellUsec);
    CounterScheduler many(set);
    many.setSlots(1);
    for (int i = 0; i < 1000; ++i) {
        many.add(name(i), false, false, 0);
    }
    EXPECT_EQ(many.stats().dwellUsec, set.minDwellUsec);
    EXPECT_EQ(many.stats().cycleUsec, 1000 * set.minDwellUsec) << "the cycle gives way";
}

TEST(CounterScheduler, ARefusedTakeWaitsAndOthersGoOn) {
    CounterScheduler s;
    s.setSlots(2);
    s.add("a", false, false, 0);
    s.add("b", false, false, 0);
    const auto p = s.plan(kSec);
    ASSERT_THAT(p.take, UnorderedElementsAre("a", "b"));
    s.took("a", kSec);
    s.refused("b", kSec); // taken by a group rdtmond does not own
    EXPECT_TRUE(s.plan(kSec + 1).take.empty());
    EXPECT_EQ(s.nextDueUsec(), 2 * kSec);
    EXPECT_THAT(s.plan(2 * kSec).take, UnorderedElementsAre("b"));
    // Refused again and again: each wait twice the last, up to 64 s.
    s.refused("b", 2 * kSec);
    EXPECT_EQ(s.nextDueUsec(), 4 * kSec);
    for (int i = 0; i < 10; ++i) {
        s.refused("b", 10 * kSec);
    }
    EXPECT_EQ(s.nextDueUsec(), 74 * kSec);
    s.took("b", 80 * kSec);
    s.released("b", 81 * kSec);
    s.refused("b", 82 * kSec);
    EXPECT_EQ(s.nextDueUsec(), 83 * kSec) << "a take that worked starts the waits again";
}

TEST(CounterScheduler, AGroupThatHeldCountersBeforeRotatingGetsATurnFromThen) {
    CounterScheduler s;
    s.setSlots(2);
    s.add("a", false, true, 5);
    s.add("b", false, true, 6);
    EXPECT_TRUE(step(s, kSec).take.empty());
    s.add("c", false, false, 0); // now 3 for 2 slots: everyone takes turns
    const auto p1 = step(s, 2 * kSec);
    EXPECT_TRUE(p1.measure.empty()) << "their turn starts now";
    EXPECT_TRUE(p1.take.empty());
    const uint64_t due = s.nextDueUsec();
    const auto p2 = step(s, due);
    EXPECT_THAT(p2.measure, UnorderedElementsAre("a", "b"));
    EXPECT_THAT(p2.take, UnorderedElementsAre("c"))
        << "the one never measured goes first; a and b wait for their next turn";
}

TEST(CounterScheduler, FewerSlotsEndTheTurnsThatEndFirst) {
    CounterScheduler s;
    s.setSlots(3);
    for (const char* id : {"a", "b", "c", "d"}) {
        s.add(id, false, false, 0);
    }
    step(s, kSec); // a, b, c take turns
    s.setSlots(1);
    const auto p = step(s, kSec + 10);
    EXPECT_EQ(p.measure.size(), 2u);
    EXPECT_TRUE(p.take.empty());
}

TEST(CounterScheduler, ARemovedGroupLeavesItsSlot) {
    CounterScheduler s;
    s.setSlots(1);
    s.add("a", false, false, 0);
    s.add("b", false, false, 0);
    step(s, kSec);
    const std::string first = s.holding("a") ? "a" : "b";
    const std::string second = first == "a" ? "b" : "a";
    s.remove(first);
    EXPECT_FALSE(s.has(first));
    EXPECT_THAT(step(s, kSec + 1).take, UnorderedElementsAre(second));
    EXPECT_FALSE(s.rotating(second)) << "alone, it fits";
}

} // namespace
