// LogLimiter: a kind of log line at most once per interval, the first at once, with the
// count of those held back on the next one; a burst at the end is not lost.

#include "LogLimiter.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

using rdtmon::exporter::LogLimiter;
using namespace std::chrono_literals;

namespace {

class Limiter : public ::testing::Test {
protected:
    std::vector<std::string> lines;
    LogLimiter limiter{[this](const std::string& l) { lines.push_back(l); }, 10s};
    const LogLimiter::Clock::time_point t0 = LogLimiter::Clock::now();
};

TEST_F(Limiter, TheFirstLineAtOnceThenOnePerInterval) {
    EXPECT_TRUE(limiter.log("a", t0));
    EXPECT_FALSE(limiter.log("b", t0 + 1s));
    EXPECT_FALSE(limiter.log("c", t0 + 9999ms));
    EXPECT_EQ(limiter.heldBack(), 2u);
    EXPECT_TRUE(limiter.log("d", t0 + 10s));
    EXPECT_EQ(limiter.heldBack(), 0u);
    // Nothing held back since "d": it stands alone.
    EXPECT_TRUE(limiter.log("e", t0 + 25s));
    EXPECT_EQ(lines, (std::vector<std::string>{"a", "d (2 more since the last line)", "e"}));
}

TEST_F(Limiter, TheIntervalRunsFromTheLastLineWritten) {
    limiter.log("a", t0);
    limiter.log("b", t0 + 8s);                // held
    EXPECT_TRUE(limiter.log("c", t0 + 12s));  // written: 12 s after "a"
    EXPECT_FALSE(limiter.log("d", t0 + 21s)); // 9 s after "c"
    EXPECT_EQ(lines.size(), 2u);
}

TEST_F(Limiter, FlushWritesTheLastHeldLineWithTheCountOfTheOthers) {
    limiter.flush();
    EXPECT_TRUE(lines.empty());
    limiter.log("a", t0);
    limiter.flush(); // nothing held back
    EXPECT_EQ(lines.size(), 1u);
    limiter.log("b", t0 + 1s);
    limiter.log("c", t0 + 2s);
    limiter.log("d", t0 + 3s);
    limiter.flush();
    EXPECT_EQ(lines, (std::vector<std::string>{"a", "d (2 more since the last line)"}));
    EXPECT_EQ(limiter.heldBack(), 0u);
    limiter.flush();
    EXPECT_EQ(lines.size(), 2u);
}

TEST_F(Limiter, OneLineFromManyThreadsAtOnce) {
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([this] {
            for (int i = 0; i < 1000; ++i) {
                limiter.log("refused", t0);
            }
        });
    }
    for (std::thread& th : threads) {
        th.join();
    }
    EXPECT_EQ(lines, std::vector<std::string>{"refused"});
    EXPECT_EQ(limiter.heldBack(), 7999u);
}

TEST(LogLimiterDefaults, TenSecondsAndTheRealClock) {
    EXPECT_EQ(LogLimiter::kDefaultInterval, std::chrono::seconds(10));
    int n = 0;
    LogLimiter limiter([&n](const std::string&) { ++n; });
    limiter.log("a");
    limiter.log("b");
    EXPECT_EQ(n, 1);
}

} // namespace
