// The L3 caches' sizes from the kernel's cacheinfo (service/resctrl/CacheSizes.h): level 3
// entries only, one per cache id, in cacheinfo's "NNNNK" format; CPUs without readable
// cache files are skipped.

#include "CacheSizes.h"
#include "TempDir.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <filesystem>
#include <fstream>

using namespace rdtmon;
using rdtmon::test::TempDir;

namespace {

void put(const std::string& path, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << text;
}

void cacheLevel(const std::string& cpuDir, int index, int level, int id, const std::string& size) {
    const std::string d = cpuDir + "/cache/index" + std::to_string(index) + "/";
    put(d + "level", std::to_string(level) + "\n");
    put(d + "id", std::to_string(id) + "\n");
    put(d + "size", size + "\n");
}

} // namespace

TEST(CacheSizes, ParsesCacheinfosFormat) {
    EXPECT_EQ(parseCacheSize("32768K\n"), 32u << 20);
    EXPECT_EQ(parseCacheSize("96M"), 96u << 20);
    EXPECT_EQ(parseCacheSize("1024"), 1024u);
    EXPECT_FALSE(parseCacheSize(""));
    EXPECT_FALSE(parseCacheSize("K"));
    EXPECT_FALSE(parseCacheSize("12KB"));
    EXPECT_FALSE(parseCacheSize("-5K"));
    EXPECT_FALSE(parseCacheSize("99999999999999999999K"));
}

TEST(CacheSizes, OneSizePerL3CacheIdFromEveryCpu) {
    TempDir dir("rdtmon-cachesizes");
    const std::string cpu = dir.path() + "/cpu";
    // Two CPUs share L3 id 0 (32 MiB), one has L3 id 1 (a different size); each also has
    // an L1 and an L2 that must not count; cpu3 is offline (no cache dir); cpu4's L3 size
    // is garbage; "cpufreq" and "online" are not CPUs.
    for (int c : {0, 1}) {
        cacheLevel(cpu + "/cpu" + std::to_string(c), 0, 1, c, "48K");
        cacheLevel(cpu + "/cpu" + std::to_string(c), 2, 2, c, "2048K");
        cacheLevel(cpu + "/cpu" + std::to_string(c), 3, 3, 0, "32768K");
    }
    cacheLevel(cpu + "/cpu2", 1, 1, 2, "32K");
    cacheLevel(cpu + "/cpu2", 3, 3, 1, "98304K");
    std::filesystem::create_directories(cpu + "/cpu3");
    cacheLevel(cpu + "/cpu4", 3, 3, 2, "lots");
    std::filesystem::create_directories(cpu + "/cpufreq/cache/index3");
    put(cpu + "/online", "0-4\n");

    const int fd = ::open(cpu.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    const auto sizes = readL3CacheSizes(fd);
    ::close(fd);
    EXPECT_EQ(sizes, (std::map<uint32_t, uint64_t>{{0, 32u << 20}, {1, 96u << 20}}));
}

TEST(CacheSizes, NothingReadableIsEmpty) {
    TempDir dir("rdtmon-cachesizes");
    const int fd = ::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    EXPECT_TRUE(readL3CacheSizes(fd).empty());
    ::close(fd);
}
