// rdtmonctl selftest's load without a bus or resctrl (ctl/selftest/): the plan for the
// caches of real parts, /proc/meminfo, the CPUs of an L3 domain in a fake sysfs, and the
// stream itself on small buffers. The verdicts: test_selftest_judgement.cpp.

#include "LoadPlan.h"
#include "StreamLoad.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace rdtmon::ctl::selftest;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {

namespace fs = std::filesystem;

// A directory of its own, removed on destruction (test/support's TempDir needs the bus).
class FakeTree {
public:
    FakeTree() {
        std::string pattern = (fs::temp_directory_path() / "rdtmon-selftest-XXXXXX").string();
        if (mkdtemp(pattern.data()) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        root_ = pattern;
    }
    ~FakeTree() {
        std::error_code ec;
        fs::remove_all(root_, ec);
    }
    FakeTree(const FakeTree&) = delete;
    FakeTree& operator=(const FakeTree&) = delete;

    void write(const std::string& rel, const std::string& text) const {
        const fs::path p = root_ / rel;
        fs::create_directories(p.parent_path());
        std::ofstream(p) << text;
    }
    // cpuN with an L1d (index0), an L2 (index2, id = cpu) and an L3 (index3) of this id.
    void cpu(int n, unsigned l3Id, const char* online = nullptr) const {
        const std::string dir = "cpu" + std::to_string(n);
        if (online != nullptr) {
            write(dir + "/online", online);
        }
        write(dir + "/cache/index0/level", "1\n");
        write(dir + "/cache/index0/id", std::to_string(l3Id) + "\n");
        write(dir + "/cache/index2/level", "2\n");
        write(dir + "/cache/index2/id", std::to_string(n) + "\n");
        write(dir + "/cache/index3/level", "3\n");
        write(dir + "/cache/index3/id", std::to_string(l3Id) + "\n");
        write(dir + "/cache/index3/size", "107520K\n");
    }
    std::string path() const { return root_.string(); }

private:
    fs::path root_;
};

uint64_t sumOfLineWords(const std::vector<uint64_t>& buf) {
    uint64_t sum = 0;
    for (std::size_t i = 0; i < buf.size(); i += kWordsPerLine) {
        sum += buf[i];
    }
    return sum;
}

} // namespace

// --- the plan ---

TEST(PlanLoad, IntelClient32MiBTakesTheFloorBuffer) {
    const LoadPlan p = planLoad(32 * kMiB, 16 * kGiB);
    EXPECT_EQ(p.refusal, "");
    EXPECT_EQ(p.bufferBytes, 256 * kMiB); // the floor, 8 times the cache
    EXPECT_EQ(p.passes, 8u);              // 2 GiB
}

TEST(PlanLoad, AmdVcache96MiBTakesFourCaches) {
    const LoadPlan p = planLoad(96 * kMiB, 16 * kGiB);
    EXPECT_EQ(p.refusal, "");
    EXPECT_EQ(p.bufferBytes, 384 * kMiB);
    EXPECT_EQ(p.passes, 6u); // 2.25 GiB
}

TEST(PlanLoad, SapphireRapids105MiB) {
    const LoadPlan p = planLoad(105 * kMiB, 64 * kGiB);
    EXPECT_EQ(p.refusal, "");
    EXPECT_EQ(p.bufferBytes, 420 * kMiB);
    EXPECT_EQ(p.passes, 5u); // 2.05 GiB
}

TEST(PlanLoad, Cache480MiBNearTheCap) {
    const LoadPlan p = planLoad(480 * kMiB, 64 * kGiB);
    EXPECT_EQ(p.refusal, "");
    EXPECT_EQ(p.bufferBytes, 1920 * kMiB);
    EXPECT_EQ(p.passes, 2u); // 3.75 GiB: one pass would be short of 2 GiB
}

TEST(PlanLoad, BufferIsWholeHugePages) {
    const LoadPlan p = planLoad(100 * kMiB + 1024, 64 * kGiB);
    EXPECT_EQ(p.bufferBytes, 402 * kMiB); // 400 MiB + 4 KiB, rounded up to 2 MiB
}

TEST(PlanLoad, EveryCacheGetsABufferItCannotHoldAndABoundedLoad) {
    for (const uint64_t l3 : {8 * kMiB, 32 * kMiB, 64 * kMiB, 96 * kMiB, 105 * kMiB, 260 * kMiB,
                              320 * kMiB, 480 * kMiB, 512 * kMiB}) {
        SCOPED_TRACE(bytesText(l3));
        const LoadPlan p = planLoad(l3, 64 * kGiB);
        ASSERT_EQ(p.refusal, "");
        EXPECT_GE(p.bufferBytes, kCacheMultiple * l3);
        EXPECT_GE(p.bufferBytes, kMinBufferBytes);
        EXPECT_LE(p.bufferBytes, kMaxBufferBytes);
        EXPECT_EQ(p.bufferBytes % (2 * kMiB), 0u);
        EXPECT_GE(p.bufferBytes * p.passes, kTargetBytes);
        EXPECT_LT(p.bufferBytes * p.passes, kTargetBytes + p.bufferBytes); // no extra pass
    }
}

TEST(PlanLoad, RefusesACacheWhoseBufferWouldPassTheCap) {
    const LoadPlan p = planLoad(600 * kMiB, 64 * kGiB);
    EXPECT_THAT(p.refusal, HasSubstr("600.0 MiB L3"));
    EXPECT_THAT(p.refusal, HasSubstr("2.00 GiB cap"));
    EXPECT_EQ(p.passes, 0u);
}

TEST(PlanLoad, RefusesAnUnknownCache) {
    EXPECT_THAT(planLoad(0, 64 * kGiB).refusal, HasSubstr("size is unknown"));
}

TEST(PlanLoad, RefusesWithoutRoomForBufferAndMargin) {
    // 384 MiB buffer + 512 MiB margin = 896 MiB.
    const LoadPlan shortBy = planLoad(96 * kMiB, 896 * kMiB - 4096);
    EXPECT_THAT(shortBy.refusal, HasSubstr("needs 896.0 MiB"));
    EXPECT_THAT(shortBy.refusal, HasSubstr("a 384.0 MiB buffer"));
    EXPECT_THAT(shortBy.refusal, HasSubstr("512.0 MiB left to the node"));
    EXPECT_THAT(shortBy.refusal, HasSubstr("MemAvailable is 896.0 MiB")); // rounded
    EXPECT_EQ(shortBy.bufferBytes, 384 * kMiB); // the figures stay for the report

    EXPECT_EQ(planLoad(96 * kMiB, 896 * kMiB).refusal, "");
    EXPECT_THAT(planLoad(32 * kMiB, 700 * kMiB).refusal, HasSubstr("MemAvailable is 700.0 MiB"));
}

TEST(MemAvailable, ParsesTheKilobytesLine) {
    const std::string meminfo = "MemTotal:       65536000 kB\n"
                                "MemFree:         1234567 kB\n"
                                "MemAvailable:   40000000 kB\n"
                                "Buffers:          123456 kB\n";
    EXPECT_EQ(memAvailableBytes(meminfo), uint64_t{40'000'000} * 1024);
    EXPECT_EQ(memAvailableBytes("MemAvailable: 7 kB"), 7u * 1024); // last line, no newline
}

TEST(MemAvailable, MissingLineIsNothing) {
    // Kernels before 3.14 have no MemAvailable.
    EXPECT_EQ(memAvailableBytes("MemTotal: 1000 kB\nMemFree: 500 kB\n"), std::nullopt);
    EXPECT_EQ(memAvailableBytes(""), std::nullopt);
    EXPECT_EQ(memAvailableBytes("XMemAvailable: 5 kB\n"), std::nullopt);
}

TEST(MemAvailable, GarbageIsNothing) {
    for (const char* text :
         {"MemAvailable: abc kB\n", "MemAvailable: 12 MB\n", "MemAvailable: 12\n",
          "MemAvailable: -5 kB\n", "MemAvailable: 12x kB\n", "MemAvailable:\n",
          "MemAvailable: 99999999999999999999 kB\n", "MemAvailable: 18014398509481984 kB\n"}) {
        SCOPED_TRACE(text);
        EXPECT_EQ(memAvailableBytes(text), std::nullopt);
    }
}

TEST(CpusOfL3Domain, OnlineCpusOfTheCacheInNumericOrder) {
    FakeTree t;
    t.write("online", "0-5,10\n");
    t.write("cpufreq/boost", "1\n");
    t.write("cpuidle/current_driver", "intel_idle\n");
    t.cpu(0, 0); // no online file: cpu0 cannot go offline
    t.cpu(1, 0, "1\n");
    t.cpu(2, 0, "0\n"); // offline
    t.cpu(3, 1, "1\n");
    t.cpu(4, 1, "1\n");
    t.cpu(5, 1, "1\n"); // its L1 and L2 ids are 1 and 5: only level 3 counts
    t.cpu(10, 0, "1\n");
    EXPECT_THAT(cpusOfL3Domain(t.path(), 0), ElementsAre(0, 1, 10));
    EXPECT_THAT(cpusOfL3Domain(t.path(), 1), ElementsAre(3, 4, 5));
    EXPECT_THAT(cpusOfL3Domain(t.path(), 5), ElementsAre()); // cpu5's L2 id
    EXPECT_THAT(cpusOfL3Domain(t.path() + "/missing", 0), ElementsAre());
}

TEST(CpusOfL3Domain, SizeOfTheCache) {
    FakeTree t;
    t.cpu(0, 0);
    t.cpu(1, 1);
    t.write("cpu1/cache/index3/size", "98304K\n");
    EXPECT_EQ(l3BytesOfDomain(t.path(), 0), 105 * kMiB);
    EXPECT_EQ(l3BytesOfDomain(t.path(), 1), 96 * kMiB);
    EXPECT_EQ(l3BytesOfDomain(t.path(), 2), std::nullopt);
    t.write("cpu1/cache/index3/size", "lots\n");
    EXPECT_EQ(l3BytesOfDomain(t.path(), 1), std::nullopt);
}

TEST(DomainKey, AsResctrlNamesIt) {
    EXPECT_EQ(domainKey(0), "mon_L3_00");
    EXPECT_EQ(domainKey(1), "mon_L3_01");
    EXPECT_EQ(domainKey(12), "mon_L3_12");
}

// --- the stream ---

TEST(StreamRead, ReadsTheFirstWordOfEveryLineEachPass) {
    // 4100 words: the last, partial line (word 4096) is read too.
    std::vector<uint64_t> buf(4100);
    for (std::size_t i = 0; i < buf.size(); ++i) {
        buf[i] = i % kWordsPerLine == 0 ? i * 3 + 1 : uint64_t{1} << 40; // others must not count
    }
    const std::atomic<bool> stop{false};
    const StreamResult r = streamRead(buf.data(), buf.size(), 5, stop, 60);
    EXPECT_EQ(r.passesDone, 5u);
    EXPECT_EQ(r.checksum, 5 * sumOfLineWords(buf));
    EXPECT_GE(r.seconds, 0);
}

TEST(StreamRead, StopSetBeforehandDoesNoPass) {
    std::vector<uint64_t> buf(1024, 7);
    const std::atomic<bool> stop{true};
    const StreamResult r = streamRead(buf.data(), buf.size(), 5, stop, 60);
    EXPECT_EQ(r.passesDone, 0u);
    EXPECT_EQ(r.checksum, 0u);
}

TEST(StreamRead, StopIsHonouredBetweenPasses) {
    std::vector<uint64_t> buf(8192, 1); // 64 KiB: a pass takes microseconds
    std::atomic<bool> stop{false};
    std::thread stopper([&stop] {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        stop.store(true, std::memory_order_release);
    });
    const StreamResult r = streamRead(buf.data(), buf.size(), UINT32_MAX, stop, 60);
    stopper.join();
    EXPECT_GT(r.passesDone, 0u);
    EXPECT_LT(r.passesDone, UINT32_MAX);
    EXPECT_LT(r.seconds, 30);
    EXPECT_EQ(r.checksum, uint64_t{r.passesDone} * sumOfLineWords(buf));
}

TEST(StreamRead, TimeLimitIsHonoured) {
    std::vector<uint64_t> buf(8192, 1);
    const std::atomic<bool> stop{false};
    const StreamResult r = streamRead(buf.data(), buf.size(), UINT32_MAX, stop, 0.05);
    EXPECT_GT(r.passesDone, 0u);
    EXPECT_LT(r.passesDone, UINT32_MAX);
    EXPECT_GE(r.seconds, 0.05);
    EXPECT_LT(r.seconds, 10);

    EXPECT_EQ(streamRead(buf.data(), buf.size(), 3, stop, 0).passesDone, 0u);
}

TEST(TouchBuffer, WritesEachLineThenTheStreamSumsThem) {
    std::vector<uint64_t> buf(1000, 0);
    touchBuffer(buf.data(), buf.size());
    uint64_t expected = 0;
    for (std::size_t i = 0; i < buf.size(); ++i) {
        if (i % kWordsPerLine == 0) {
            EXPECT_EQ(buf[i], i);
            expected += i;
        } else {
            EXPECT_EQ(buf[i], 0u) << i;
        }
    }
    const std::atomic<bool> stop{false};
    EXPECT_EQ(streamRead(buf.data(), buf.size(), 2, stop, 60).checksum, 2 * expected);
}
