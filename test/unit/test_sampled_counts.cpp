// SampledCounts: a rotating group's count starts at its first turn's bytes, grows at the
// last turn's rate, never goes down when the rate drops, and gives a steady load's count.

#include "SampledCounts.h"

#include <gtest/gtest.h>

using rdtmon::Counters;
using rdtmon::SampledCounts;

namespace {

constexpr uint64_t kSec = 1'000'000;
constexpr const char* kD = "mon_L3_00";
constexpr const char* kE = "mbm_total_bytes";

Counters bytes(uint64_t n) {
    return {{kD, {{kE, n}}}};
}

TEST(SampledCounts, NothingBeforeTheFirstTurnEnds) {
    SampledCounts s;
    EXPECT_TRUE(s.at("a", 5 * kSec).empty());
    EXPECT_FALSE(s.has("a"));
    s.measured("a", bytes(100), bytes(100), 0, kSec); // no window: nothing to take a rate from
    EXPECT_FALSE(s.has("a"));
}

TEST(SampledCounts, ASteadyLoadGivesItsOwnCountAndRate) {
    SampledCounts s;
    const uint64_t rate = 300'000'000; // bytes/s, measured 1 s of every 50
    uint64_t end = 10 * kSec;
    s.measured("a", bytes(rate + 7), bytes(rate), kSec, end);
    const auto first = s.at("a", end).at(kD).at(kE);
    EXPECT_EQ(first.count, rate + 7) << "starts at the kernel's count at the turn's end";
    EXPECT_EQ(first.windowUsec, kSec);
    EXPECT_EQ(first.measuredUsec, end);
    for (int cycle = 0; cycle < 5; ++cycle) {
        const uint64_t before = s.at("a", end + 20 * kSec).at(kD).at(kE).count;
        end += 50 * kSec;
        s.measured("a", bytes(rate + 7), bytes(rate), kSec, end);
        const uint64_t after = s.at("a", end + 20 * kSec).at(kD).at(kE).count;
        EXPECT_EQ(after - before, 50 * rate) << "50 s at the driven rate";
    }
}

TEST(SampledCounts, ARateThatDropsNeverTakesTheCountDown) {
    SampledCounts s;
    s.measured("a", bytes(1000), bytes(1000), kSec, 10 * kSec);
    const uint64_t served = s.at("a", 30 * kSec).at(kD).at(kE).count; // 1000 + 20 s x 1000/s
    EXPECT_EQ(served, 21'000u);
    s.measured("a", bytes(5), bytes(0), kSec, 30 * kSec); // idle now
    EXPECT_EQ(s.at("a", 30 * kSec).at(kD).at(kE).count, served);
    EXPECT_EQ(s.at("a", 90 * kSec).at(kD).at(kE).count, served) << "no growth at rate 0";
    EXPECT_EQ(s.at("a", 20 * kSec).at(kD).at(kE).count, served) << "a time before: no less";
}

TEST(SampledCounts, GroupsAreApartAndForgotten) {
    SampledCounts s;
    s.measured("a", bytes(10), bytes(10), kSec, kSec);
    s.measured("b", bytes(20), bytes(20), kSec, kSec);
    EXPECT_EQ(s.at("b", kSec).at(kD).at(kE).count, 20u);
    s.forget("a");
    EXPECT_FALSE(s.has("a"));
    EXPECT_TRUE(s.has("b"));
    EXPECT_EQ(s.size(), 1u);
}

} // namespace
