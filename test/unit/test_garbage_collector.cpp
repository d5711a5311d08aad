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

// A runtime whose files describe every container it lists as one that could be adopted (its
// own cgroup, no annotation that keeps it out); it notes which ids it was asked about.
class DescribingSource : public ListSource {
public:
    using ListSource::ListSource;
    std::vector<RuntimeContainer> inspect(const std::set<std::string>& ids,
                                          std::map<std::string, std::string>&) const override {
        asked.insert(ids.begin(), ids.end());
        std::vector<RuntimeContainer> out;
        for (const std::string& id : ids) {
            RuntimeContainer c;
            c.id = id;
            c.runtime = "runc";
            c.pid = 4242;
            c.startTime = 1;
            std::string dir = "/sys/fs/cgroup/";
            dir += id;
            c.cgroupDirs = {dir};
            out.push_back(std::move(c));
        }
        return out;
    }
    mutable std::set<std::string> asked;
};

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

TEST(GarbageCollector, ASelftestRecordIsNeverStale) {
    // No runtime ever lists a self-test: an empty list makes every other old record stale.
    auto g = gc(sources({}), 0s);
    auto d = g.decide({rec("rdtmon-selftest-12345-1", 0), rec("c1", 0),
                       rec("rdtmon-selftest-12345-2", kNow - 3600 * kSec)},
                      kNow);
    EXPECT_TRUE(d.sourcesOk);
    EXPECT_EQ(d.stale, (std::vector<std::string>{"c1"}));
    // Only the exact prefix is reserved.
    d = g.decide({rec("rdtmon-selftest", 0), rec("x-rdtmon-selftest-1", 0)}, kNow);
    EXPECT_EQ(sorted(d.stale),
              (std::vector<std::string>{"rdtmon-selftest", "x-rdtmon-selftest-1"}));
}

TEST(GarbageCollector, AListedSelftestIdIsNeverAdopted) {
    const std::string selftest = "rdtmon-selftest-12345-1";
    std::vector<std::unique_ptr<ContainerSource>> v;
    auto source = std::make_unique<DescribingSource>(std::set<std::string>{selftest, "web"});
    const DescribingSource& described = *source;
    v.push_back(std::move(source));
    auto g = gc(std::move(v), 0s);
    auto d = g.decide({}, kNow);
    EXPECT_TRUE(d.sourcesOk);
    ASSERT_EQ(d.adoptable.size(), 1u);
    EXPECT_EQ(d.adoptable[0].container.id, "web");
    ASSERT_EQ(d.notAdoptable.count(selftest), 1u);
    EXPECT_NE(d.notAdoptable.at(selftest).find("reserved for rdtmonctl selftest"),
              std::string::npos)
        << d.notAdoptable.at(selftest);
    EXPECT_EQ(described.asked, std::set<std::string>{"web"}) << "its runtime's files were read";
    EXPECT_EQ(d.liveContainers, 2u) << "still a listed container";
}

} // namespace
} // namespace rdtmon::test
