#include "Errors.h"
#include "GarbageCollector.h"
#include "ListSource.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace rdtmon::test {
namespace {

using namespace std::chrono_literals;

// A source that throws something other than rdtmon::Error.
class WeirdSource : public ContainerSource {
public:
    std::string describe() const override { return "weird source"; }
    std::set<std::string> list() const override { throw std::runtime_error("bad_alloc-ish"); }
};

constexpr uint64_t kSec = 1000000;
constexpr uint64_t kNow = 1'700'000'000ull * kSec;

GroupRecord rec(const std::string& id, uint64_t created, bool pending = false) {
    GroupRecord r;
    r.id = id;
    r.pid = 1;
    r.createdUsec = created;
    r.pending = pending;
    return r;
}

GarbageCollector gc(std::vector<std::unique_ptr<ContainerSource>> sources,
                    std::chrono::seconds grace = 30s) {
    return GarbageCollector(std::move(sources), grace);
}

std::vector<std::unique_ptr<ContainerSource>> sources(std::set<std::string> a,
                                                      std::set<std::string> b = {}) {
    std::vector<std::unique_ptr<ContainerSource>> v;
    v.push_back(std::make_unique<ListSource>(std::move(a)));
    v.push_back(std::make_unique<ListSource>(std::move(b)));
    return v;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

TEST(GarbageCollector, StaleVersusLiveAcrossTheUnionOfSources) {
    auto g = gc(sources({"live1", "shared"}, {"live2", "shared", "unowned"}));
    auto d = g.decide({rec("live1", 0), rec("live2", 0), rec("shared", 0), rec("gone1", 0),
                       rec("gone2", kNow - 3600 * kSec)},
                      kNow);
    EXPECT_TRUE(d.sourcesOk);
    EXPECT_TRUE(d.failures.empty());
    EXPECT_EQ(d.liveContainers, 4u); // live1, live2, shared, unowned
    EXPECT_EQ(sorted(d.stale), (std::vector<std::string>{"gone1", "gone2"}));
}

TEST(GarbageCollector, GraceProtectsYoungRecords) {
    auto g = gc(sources({}), 30s);
    auto d = g.decide({rec("young", kNow - 29 * kSec), rec("edge", kNow - 30 * kSec),
                       rec("old", kNow - 31 * kSec), rec("justnow", kNow)},
                      kNow);
    EXPECT_TRUE(d.sourcesOk);
    // createdUsec + grace <= now is stale: the boundary counts.
    EXPECT_EQ(sorted(d.stale), (std::vector<std::string>{"edge", "old"}));
}

TEST(GarbageCollector, ZeroGraceMakesEveryAbsentRecordStale) {
    auto g = gc(sources({"live"}), 0s);
    auto d = g.decide({rec("justnow", kNow), rec("live", kNow)}, kNow);
    EXPECT_EQ(d.stale, (std::vector<std::string>{"justnow"}));
}

TEST(GarbageCollector, PendingIsNeverStale) {
    auto g = gc(sources({}), 0s);
    auto d = g.decide({rec("pending", 0, true), rec("final", 0, false)}, kNow);
    EXPECT_EQ(d.stale, (std::vector<std::string>{"final"}));
}

TEST(GarbageCollector, FutureTimestampIsNotStale) {
    // The clock was stepped back after the record was made.
    auto g = gc(sources({}), 30s);
    auto d = g.decide({rec("future", kNow + 3600 * kSec), rec("farfuture", UINT64_MAX)}, kNow);
    EXPECT_TRUE(d.sourcesOk);
    EXPECT_TRUE(d.stale.empty());
}

TEST(GarbageCollector, AnyFailingSourceRemovesNothing) {
    std::vector<std::unique_ptr<ContainerSource>> v;
    v.push_back(std::make_unique<ListSource>(std::set<std::string>{"live"}));
    v.push_back(std::make_unique<ListSource>(std::set<std::string>{}, /*fails=*/true));
    v.push_back(std::make_unique<WeirdSource>());
    auto g = gc(std::move(v), 0s);
    auto d = g.decide({rec("gone", 0), rec("live", 0)}, kNow);
    EXPECT_FALSE(d.sourcesOk);
    EXPECT_TRUE(d.stale.empty());
    ASSERT_EQ(d.failures.size(), 2u);
    EXPECT_NE(d.failures[0].find("fake source"), std::string::npos) << d.failures[0];
    EXPECT_NE(d.failures[0].find("runtime root unreadable"), std::string::npos) << d.failures[0];
    EXPECT_NE(d.failures[1].find("weird source"), std::string::npos) << d.failures[1];
}

TEST(GarbageCollector, NoSourcesRemovesNothing) {
    // With no source configured every container would look gone; that is not knowledge.
    auto g = gc({}, 0s);
    auto d = g.decide({rec("x", 0)}, kNow);
    EXPECT_FALSE(d.sourcesOk);
    EXPECT_TRUE(d.stale.empty());
    EXPECT_EQ(d.failures.size(), 1u);
}

TEST(GarbageCollector, NothingOwnedNothingStale) {
    auto g = gc(sources({"a"}), 0s);
    auto d = g.decide({}, kNow);
    EXPECT_TRUE(d.sourcesOk);
    EXPECT_TRUE(d.stale.empty());
    EXPECT_EQ(d.liveContainers, 1u);
}

} // namespace
} // namespace rdtmon::test
