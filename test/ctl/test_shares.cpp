// Pods and domain loads from one interval's rates (client/Shares.h): a pod is the sum of its
// containers, a domain's load is the sum of every CLOS's own counters, and each consumer's
// share of it; a figure that cannot be known is absent, never a partial sum.

#include "Shares.h"

#include <gtest/gtest.h>

using namespace rdtmon::client;

namespace {

Figures fig(uint64_t llc, double total, double local) {
    return Figures{llc, total, local};
}

// An entry with the same figures on both L3 domains; total is their sum.
GroupRates entry(const std::string& id, Labels labels, const Figures& perDomain) {
    GroupRates g;
    g.id = id;
    g.labels = std::move(labels);
    g.origin = id.front() == '/' ? "" : "hook";
    g.domains = {{"mon_L3_00", perDomain}, {"mon_L3_01", perDomain}};
    g.total = kZeroFigures;
    accumulate(g.total, perDomain);
    accumulate(g.total, perDomain);
    return g;
}

Labels pod(const std::string& ns, const std::string& name, const std::string& container) {
    return {{"namespace", ns}, {"pod", name}, {"container", container}};
}

RateReport sample() {
    RateReport r;
    r.intervalSeconds = 1;
    r.containers = {entry("a", pod("shop", "web", "nginx"), fig(100, 10e6, 8e6)),
                    entry("b", pod("shop", "web", "php"), fig(300, 30e6, 20e6)),
                    entry("c", pod("data", "db", "pg"), fig(600, 60e6, 60e6)),
                    entry("d", {}, fig(0, 0, 0))};
    r.closes = {entry("/", {}, fig(2000, 200e6, 150e6))};
    return r;
}

const ClosOf kClos{{"a", "/"}, {"b", "/"}, {"c", "/"}, {"d", "/"}};

} // namespace

TEST(Pods, APodIsTheSumOfItsContainersAndAContainerWithoutOneStandsAlone) {
    const RateReport p = byPod(sample());
    ASSERT_EQ(p.containers.size(), 3u);
    EXPECT_EQ(p.containers[0].id, "d"); // no pod: as it is
    EXPECT_EQ(p.containers[1].id, "data/db");
    EXPECT_EQ(p.containers[2].id, "shop/web");
    const GroupRates& web = p.containers[2];
    EXPECT_EQ(web.labels, (Labels{{"namespace", "shop"}, {"pod", "web"}}));
    EXPECT_EQ(web.domains.at("mon_L3_01").llcBytes, 400u);
    EXPECT_DOUBLE_EQ(web.domains.at("mon_L3_00").mbmTotalBytesPerSec.value(), 40e6);
    EXPECT_DOUBLE_EQ(web.total.mbmLocalBytesPerSec.value(), 56e6);
    EXPECT_EQ(p.closes.size(), 1u);
    EXPECT_EQ(podSizes(sample()),
              (std::map<std::string, std::size_t>{{"d", 1}, {"data/db", 1}, {"shop/web", 2}}));
}

TEST(Pods, AFigureOneContainerLacksLeavesThePodsUnknownAndPowerAddsUp) {
    RateReport r = sample();
    r.containers[1].domains.at("mon_L3_01").mbmTotalBytesPerSec.reset(); // b: a reset there
    r.containers[1].total.mbmTotalBytesPerSec.reset();
    r.containers[0].watts = 5;
    r.containers[1].watts = 7;
    r.containers[2].watts = 9;
    r.containers[1].sampledWindowSeconds = 0.75;
    r.containers[1].sampledAgeSeconds = 3;
    const RateReport p = byPod(r);
    const GroupRates& web = p.containers[2];
    EXPECT_FALSE(web.domains.at("mon_L3_01").mbmTotalBytesPerSec);
    EXPECT_TRUE(web.domains.at("mon_L3_00").mbmTotalBytesPerSec);
    EXPECT_FALSE(web.total.mbmTotalBytesPerSec);
    EXPECT_TRUE(web.total.llcBytes);
    EXPECT_DOUBLE_EQ(web.watts.value(), 12);
    EXPECT_DOUBLE_EQ(web.sampledWindowSeconds.value(), 0.75) << "sampled when any is";
    EXPECT_FALSE(p.containers[0].watts) << "d has none";
}

TEST(DomainLoads, TheDomainIsEveryClosAndEachConsumerHasItsShare) {
    const std::vector<DomainLoad> loads = domainLoads(sample(), kClos);
    ASSERT_EQ(loads.size(), 2u);
    const DomainLoad& l = loads[0];
    EXPECT_EQ(l.domain, "mon_L3_00");
    EXPECT_DOUBLE_EQ(l.total.mbmTotalBytesPerSec.value(), 200e6);
    EXPECT_DOUBLE_EQ(l.remoteBytesPerSec.value(), 50e6);
    EXPECT_EQ(l.total.llcBytes, 2000u);
    ASSERT_EQ(l.consumers.size(), 3u);
    const Share& web = l.consumers[2];
    EXPECT_EQ(web.id, "shop/web");
    EXPECT_DOUBLE_EQ(web.bandwidthShare.value(), 0.2);
    EXPECT_DOUBLE_EQ(web.cacheShare.value(), 0.2);
    EXPECT_DOUBLE_EQ(l.consumers[1].bandwidthShare.value(), 0.3); // data/db
    EXPECT_DOUBLE_EQ(l.consumers[0].bandwidthShare.value(), 0.0); // d
    // What ran outside the containers, from the containers' CLOS (closOf names containers).
    ASSERT_EQ(l.outside.size(), 1u);
    const Share& out = l.outside[0];
    EXPECT_TRUE(out.outside);
    EXPECT_EQ(out.id, "/");
    EXPECT_DOUBLE_EQ(out.figures.mbmTotalBytesPerSec.value(), 100e6);
    EXPECT_DOUBLE_EQ(out.bandwidthShare.value(), 0.5);
    EXPECT_EQ(out.figures.llcBytes, 1000u);
}

TEST(DomainLoads, WhileGroupsTakeTurnsTheDomainsBandwidthIsUnknown) {
    RateReport r = sample();
    r.containers[2].sampledWindowSeconds = 0.75;
    const std::vector<DomainLoad> loads = domainLoads(r, kClos);
    EXPECT_FALSE(loads[0].total.mbmTotalBytesPerSec);
    EXPECT_FALSE(loads[0].remoteBytesPerSec);
    EXPECT_FALSE(loads[0].consumers[0].bandwidthShare);
    EXPECT_TRUE(loads[0].total.llcBytes) << "occupancy is counted without counters";
    EXPECT_EQ(loads[0].consumers[1].id, "data/db");
    EXPECT_DOUBLE_EQ(loads[0].consumers[1].cacheShare.value(), 0.3);
}

TEST(DomainLoads, NoClosMeansNoTotalAndNoShare) {
    RateReport r = sample();
    r.closes.clear();
    const std::vector<DomainLoad> loads = domainLoads(r, kClos);
    ASSERT_EQ(loads.size(), 2u);
    EXPECT_FALSE(loads[0].total.llcBytes);
    EXPECT_FALSE(loads[0].consumers[0].cacheShare);
}

TEST(DomainLoads, OccupancyAgainstTheCachesSizeWhereItIsKnown) {
    const CacheSizes caches = cacheSizesOf({{0, 4000}});
    EXPECT_EQ(caches, (CacheSizes{{"mon_L3_00", 4000}}));
    const std::vector<DomainLoad> loads = domainLoads(sample(), kClos, caches);
    ASSERT_EQ(loads.size(), 2u);
    EXPECT_EQ(loads[0].cacheBytes, 4000u);
    EXPECT_FALSE(loads[1].cacheBytes) << "mon_L3_01's size is unknown";
    // data/db holds 600 of the 2000 occupied bytes, and of the cache's 4000.
    EXPECT_EQ(loads[0].consumers[1].id, "data/db");
    EXPECT_DOUBLE_EQ(loads[0].consumers[1].cacheShare.value(), 0.3);
    EXPECT_DOUBLE_EQ(loads[0].consumers[1].cacheSizeShare.value(), 0.15);
    EXPECT_DOUBLE_EQ(loads[0].outside[0].cacheSizeShare.value(), 0.25);
    EXPECT_FALSE(loads[1].consumers[1].cacheSizeShare);
}

TEST(DomainLoads, EachSncNodeHasItsOwnLoadRightAfterItsDomain) {
    RateReport r = sample();
    // Domain 0 has two SNC nodes; every entry's figures there split 1:3 between them.
    for (auto* list : {&r.containers, &r.closes}) {
        for (GroupRates& g : *list) {
            const Figures whole = g.domains.at("mon_L3_00");
            auto part = [&](double f) {
                return Figures{static_cast<uint64_t>(static_cast<double>(*whole.llcBytes) * f),
                               *whole.mbmTotalBytesPerSec * f, *whole.mbmLocalBytesPerSec * f};
            };
            g.domains["mon_L3_00/mon_sub_L3_00"] = part(0.25);
            g.domains["mon_L3_00/mon_sub_L3_01"] = part(0.75);
        }
    }
    const std::vector<DomainLoad> loads = domainLoads(r, kClos, cacheSizesOf({{0, 4000}}));
    ASSERT_EQ(loads.size(), 4u);
    EXPECT_EQ(loads[0].domain, "mon_L3_00");
    EXPECT_EQ(loads[1].domain, "mon_L3_00/mon_sub_L3_00");
    EXPECT_EQ(loads[2].domain, "mon_L3_00/mon_sub_L3_01");
    EXPECT_EQ(loads[3].domain, "mon_L3_01");
    const DomainLoad& node1 = loads[2];
    EXPECT_DOUBLE_EQ(node1.total.mbmTotalBytesPerSec.value(), 150e6);
    EXPECT_DOUBLE_EQ(node1.remoteBytesPerSec.value(), 150e6 - 112.5e6);
    EXPECT_FALSE(node1.cacheBytes) << "an SNC node shares its domain's L3";
    EXPECT_EQ(node1.consumers[1].id, "data/db");
    EXPECT_DOUBLE_EQ(node1.consumers[1].bandwidthShare.value(), 0.3);
    EXPECT_DOUBLE_EQ(node1.outside[0].figures.mbmTotalBytesPerSec.value(), 75e6);
}
