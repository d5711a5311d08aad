#include "Errors.h"
#include "GroupRegistry.h"

#include "TempDir.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sched.h>
#include <sstream>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

namespace rdtmon {
// Failures print records, not bytes.
static void PrintTo(const GroupRecord& r, std::ostream* os) {
    *os << GroupRegistry::journalPut(r);
}
} // namespace rdtmon

namespace rdtmon::test {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> sortedEntries(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) {
        out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

GroupRecord rec(std::string id, std::string ctrl = "", uint32_t pid = 100, uint64_t created = 5,
                bool pending = false) {
    GroupRecord r;
    r.id = std::move(id);
    r.ctrl = std::move(ctrl);
    r.pid = pid;
    r.createdUsec = created;
    r.pending = pending;
    return r;
}

TEST(GroupRegistry, MissingFileLoadsEmptyAndCreatesStateDir0700) {
    TempDir t("rdtmon-registry");
    std::string dir = t.path() + "/a/b/state";
    GroupRegistry reg(dir);
    auto res = reg.load();
    EXPECT_FALSE(res.fileExisted);
    EXPECT_FALSE(res.movedAsideTo.has_value());
    EXPECT_EQ(reg.size(), 0u);
    struct stat st {};
    ASSERT_EQ(::stat(dir.c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0700u);
    EXPECT_FALSE(fs::exists(dir + "/groups.json")); // load alone writes nothing
}

TEST(GroupRegistry, RoundTripThroughTheFile) {
    TempDir t("rdtmon-registry");
    {
        GroupRegistry reg(t.path());
        reg.load();
        reg.put(rec("zeta", "", 1, 10));
        reg.put(rec("alpha", "clos1", 4294967295u, 18446744073709551615ull, true));
        reg.put(rec("mid-1.x_y", "", 7, 0));
        reg.put(rec("zeta", "clos2", 2, 20)); // replaces
        reg.erase("mid-1.x_y");
        reg.erase("never-there"); // no-op
        EXPECT_EQ(reg.size(), 2u);
    }
    GroupRegistry again(t.path());
    auto res = again.load();
    EXPECT_TRUE(res.fileExisted);
    EXPECT_FALSE(res.movedAsideTo.has_value());
    auto all = again.all();
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0], rec("alpha", "clos1", 4294967295u, 18446744073709551615ull, true));
    EXPECT_EQ(all[1], rec("zeta", "clos2", 2, 20));
    ASSERT_TRUE(again.find("zeta").has_value());
    EXPECT_EQ(again.find("zeta")->ctrl, "clos2");
    EXPECT_FALSE(again.find("mid-1.x_y").has_value());
}

TEST(GroupRegistry, SerializeParseRoundTrip) {
    std::map<std::string, GroupRecord> m;
    m["a"] = rec("a", "", 1, 2, false);
    m["b"] = rec("b", "g", 3, 4, true);
    EXPECT_EQ(GroupRegistry::parse(GroupRegistry::serialize(m)), m);
    EXPECT_TRUE(GroupRegistry::parse(GroupRegistry::serialize({})).empty());
}

TEST(GroupRegistry, LabelsSurviveTheFileAndAnOlderFileWithoutThemLoads) {
    TempDir t("rdtmon-registry");
    GroupRecord labelled = rec("web-1", "clos1", 42, 7);
    labelled.labels = {{"pod", "web-7d9f"},
                       {"namespace", "shop"},
                       {"container", "nginx"},
                       {"pod_uid", "3f1c2a9e-0b1d"},
                       {"note", "caf\xc3\xa9 \"quoted\" back\\slash"}};
    {
        GroupRegistry reg(t.path());
        reg.load();
        reg.put(labelled);
        reg.put(rec("plain"));
    }
    // A record without labels is written as before labels existed, in both files.
    EXPECT_NE(readFile(t.file("groups.journal"))
                  .find(R"({"put":{"id":"plain","ctrl":"","pid":100,"createdUsec":5,)"
                        R"("pending":false}})"),
              std::string::npos);
    GroupRegistry again(t.path());
    EXPECT_FALSE(again.load().movedAsideTo.has_value());
    const std::string text = readFile(t.file("groups.json")); // the load compacted
    EXPECT_NE(text.find(R"({"id":"plain","ctrl":"","pid":100,"createdUsec":5,"pending":false})"),
              std::string::npos)
        << text;
    ASSERT_TRUE(again.find("web-1"));
    EXPECT_EQ(*again.find("web-1"), labelled);
    EXPECT_TRUE(again.find("plain")->labels.empty());

    // A state file written by a version without labels.
    writeFile(t.file("groups.json"),
              R"({"version":1,"groups":[)"
              "\n"
              R"({"id":"old-1","ctrl":"","pid":9,"createdUsec":3,"pending":false})"
              "\n]}\n");
    GroupRegistry old(t.path());
    auto res = old.load();
    EXPECT_FALSE(res.movedAsideTo.has_value()) << res.problem;
    ASSERT_TRUE(old.find("old-1"));
    EXPECT_TRUE(old.find("old-1")->labels.empty());
}

TEST(GroupRegistry, CgroupSurvivesTheFileAndAnOlderFileWithoutItLoads) {
    std::map<std::string, GroupRecord> m;
    GroupRecord a = rec("a");
    a.cgroup = "/sys/fs/cgroup/unified/x y";
    m.emplace("a", a);
    m.emplace("b", rec("b"));
    const std::string text = GroupRegistry::serialize(m);
    EXPECT_NE(text.find("\"cgroup\":\"/sys/fs/cgroup/unified/x y\""), std::string::npos);
    EXPECT_EQ(text.find("cgroup", text.find("\"id\":\"b\"")), std::string::npos);
    EXPECT_EQ(GroupRegistry::parse(text), m);
    auto old = GroupRegistry::parse(
        R"({"version":1,"groups":[{"id":"a","ctrl":"","pid":1,"createdUsec":2,"pending":false}]})");
    EXPECT_EQ(old.at("a").cgroup, "");
    for (const char* bad : {R"("cgroup":5)", R"("cgroup":"relative")"}) {
        EXPECT_THROW(GroupRegistry::parse(
                         std::string(R"({"version":1,"groups":[{"id":"a","ctrl":"","pid":1,)") +
                         R"("createdUsec":2,"pending":false,)" + bad + "}]}"),
                     Error)
            << bad;
    }
}

GroupRecord waitingRec(std::string id, uint64_t seq, uint64_t start = 12345) {
    GroupRecord r = rec(std::move(id), "clos1", 77, 9);
    r.waiting = true;
    r.pidStartTime = start;
    r.waitSeq = seq;
    r.labels = {{"pod", "p"}};
    return r;
}

TEST(GroupRegistry, WaitingRecordsSurviveTheFileInArrivalOrder) {
    TempDir t("rdtmon-registry");
    {
        GroupRegistry reg(t.path());
        reg.load();
        reg.put(waitingRec("z-first", 1));
        reg.put(rec("active"));
        reg.put(waitingRec("a-third", 3));
        reg.put(waitingRec("m-second", 2));
        GroupRecord granting = waitingRec("g-fourth", 4); // a grant under way
        granting.pending = true;
        reg.put(granting);
        EXPECT_EQ(reg.waitingCount(), 4u);
        reg.erase("g-fourth");
        EXPECT_EQ(reg.waitingCount(), 3u);
    }
    GroupRegistry again(t.path());
    ASSERT_FALSE(again.load().movedAsideTo.has_value());
    // Active records are written exactly as before waiting existed.
    const std::string text = readFile(t.file("groups.json"));
    EXPECT_NE(text.find(R"({"id":"active","ctrl":"","pid":100,"createdUsec":5,"pending":false})"),
              std::string::npos)
        << text;
    EXPECT_EQ(again.waitingCount(), 3u);
    std::vector<std::string> order;
    for (const GroupRecord& w : again.waiting()) {
        order.push_back(w.id);
    }
    EXPECT_EQ(order, (std::vector<std::string>{"z-first", "m-second", "a-third"}));
    EXPECT_EQ(*again.find("a-third"), waitingRec("a-third", 3));
    EXPECT_FALSE(again.find("active")->waiting);

    // Granted: the same record made active; the count follows every put.
    GroupRecord granted = *again.find("z-first");
    granted.waiting = false;
    granted.pidStartTime = 0;
    granted.waitSeq = 0;
    again.put(granted);
    EXPECT_EQ(again.waitingCount(), 2u);
    GroupRegistry third(t.path());
    third.load();
    EXPECT_EQ(third.waitingCount(), 2u);
    EXPECT_EQ(*third.find("z-first"), granted);
}

TEST(GroupRegistry, WaitingSerializeParseRoundTripAndAnOlderFileLoadsAllActive) {
    std::map<std::string, GroupRecord> m;
    m["a"] = waitingRec("a", 18446744073709551615ull, 18446744073709551615ull);
    m["b"] = rec("b", "", 3, 4, true);
    GroupRecord both = waitingRec("c", 2);
    both.pending = true;
    m["c"] = both;
    EXPECT_EQ(GroupRegistry::parse(GroupRegistry::serialize(m)), m);

    // What a version without waiting wrote: every record active.
    auto old = GroupRegistry::parse(
        R"({"version":1,"groups":[{"id":"o","ctrl":"","pid":9,"createdUsec":3,"pending":false}]})");
    ASSERT_EQ(old.size(), 1u);
    EXPECT_FALSE(old.at("o").waiting);
    EXPECT_EQ(old.at("o").pidStartTime, 0u);
    EXPECT_EQ(old.at("o").waitSeq, 0u);
}

TEST(GroupRegistry, PutRejectsBadLabelsWithoutWriting) {
    TempDir t("rdtmon-registry");
    GroupRegistry reg(t.path());
    reg.load();
    GroupRecord r = rec("ok");
    r.labels = {{"Bad", "v"}};
    expectError(ErrorKind::InvalidArgument, [&] { reg.put(r); });
    r.labels = {{"pod", "a\nb"}};
    expectError(ErrorKind::InvalidArgument, [&] { reg.put(r); });
    EXPECT_EQ(reg.size(), 0u);
    EXPECT_TRUE(fs::is_empty(t.path()));
}

TEST(GroupRegistry, WritesLeaveOnlyTheTwoFilesWithMode0600) {
    TempDir t("rdtmon-registry");
    GroupRegistry reg(t.path());
    reg.load();
    for (int i = 0; i < 20; ++i) {
        reg.put(rec(rdtmon::test::concat("c", i)));
    }
    EXPECT_EQ(sortedEntries(t.path()), std::vector<std::string>{"groups.journal"});
    for (int i = 0; i < 100; ++i) { // past a compaction: the records are rewritten
        reg.put(rec(rdtmon::test::concat("c", i % 20), "", 100 + static_cast<uint32_t>(i)));
    }
    EXPECT_EQ(sortedEntries(t.path()), (std::vector<std::string>{"groups.journal", "groups.json"}));
    for (const char* name : {"groups.json", "groups.journal"}) {
        struct stat st {};
        ASSERT_EQ(::stat(t.file(name).c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 07777, 0600u) << name;
    }
    GroupRegistry again(t.path());
    again.load();
    EXPECT_EQ(again.all(), reg.all());
}

TEST(GroupRegistry, StaleTempFileIsRemovedOnLoad) {
    TempDir t("rdtmon-registry");
    writeFile(t.file("groups.json.tmp"), "half-written");
    GroupRegistry reg(t.path());
    reg.load();
    EXPECT_FALSE(fs::exists(t.file("groups.json.tmp")));
}

TEST(GroupRegistry, StateDirUnderARegularFileFailsToLoad) {
    TempDir t("rdtmon-registry");
    writeFile(t.file("file"), "x");
    GroupRegistry reg(t.file("file") + "/state");
    std::string msg = expectError(ErrorKind::Failed, [&] { reg.load(); });
    EXPECT_NE(msg.find(std::strerror(ENOTDIR)), std::string::npos) << msg;
}

TEST(GroupRegistry, UnwritableStateDirLeavesRecordsUnchanged) {
    TempDir t("rdtmon-registry");
    std::string dir = t.file("state");
    GroupRegistry reg(dir);
    reg.load();
    reg.put(rec("keep", "", 1, 1));
    std::string before = readFile(dir + "/groups.journal");

    // The state dir's path now runs through a regular file: openat cannot succeed.
    fs::rename(dir, t.file("moved"));
    writeFile(dir, "not a directory");
    std::string msg = expectError(ErrorKind::Failed, [&] { reg.put(rec("new", "", 2, 2)); });
    EXPECT_NE(msg.find(std::strerror(ENOTDIR)), std::string::npos) << msg;
    EXPECT_FALSE(reg.find("new").has_value());
    ASSERT_TRUE(reg.find("keep").has_value());
    EXPECT_EQ(reg.size(), 1u);
    msg = expectError(ErrorKind::Failed, [&] { reg.erase("keep"); });
    EXPECT_TRUE(reg.find("keep").has_value());
    EXPECT_EQ(readFile(t.file("moved") + "/groups.journal"), before);
    EXPECT_EQ(sortedEntries(t.file("moved")), std::vector<std::string>{"groups.journal"});
}

TEST(GroupRegistry, TheFilesAreAlwaysEveryRecordAndTheCountsFollowEveryChange) {
    TempDir t("rdtmon-registry");
    const std::string dir = t.file("state");
    GroupRegistry reg(dir);
    reg.load();
    // What a load would find: the snapshot (if any) with the journal (if any) applied.
    auto fileIsAll = [&] {
        std::map<std::string, GroupRecord> onDisk;
        if (fs::exists(dir + "/groups.json")) {
            onDisk = GroupRegistry::parse(readFile(dir + "/groups.json"));
        }
        if (fs::exists(dir + "/groups.journal")) {
            GroupRegistry::replayJournal(readFile(dir + "/groups.journal"), onDisk);
        }
        std::map<std::string, GroupRecord> all;
        for (const GroupRecord& r : reg.all()) {
            all.emplace(r.id, r);
        }
        return onDisk == all;
    };
    GroupRecord a = rec("a");
    GroupRecord b = rec("b", "clos1", 7, 9, /*pending=*/true);
    GroupRecord w = rec("w");
    w.waiting = true;
    w.pidStartTime = 3;
    w.waitSeq = 1;
    w.origin = Origin::Adopted;
    for (const GroupRecord& r : {b, a, w}) {
        reg.put(r);
        EXPECT_TRUE(fileIsAll()) << r.id;
    }
    EXPECT_EQ(reg.activeCount(), 1u); // a; b is pending, w waiting
    EXPECT_EQ(reg.waitingCount(), 1u);
    b.pending = false; // its create finished
    reg.put(b);
    EXPECT_EQ(reg.activeCount(), 2u);
    EXPECT_TRUE(fileIsAll());
    w.waiting = false; // granted
    reg.put(w);
    EXPECT_EQ(reg.activeCount(), 3u);
    EXPECT_EQ(reg.waitingCount(), 0u);
    reg.erase("a");
    EXPECT_EQ(reg.activeCount(), 2u);
    EXPECT_TRUE(fileIsAll());
    // A failed write changes neither the records, nor the counts, nor what the next write
    // writes.
    fs::rename(dir, t.file("moved"));
    writeFile(dir, "not a directory");
    expectError(ErrorKind::Failed, [&] { reg.put(rec("c")); });
    expectError(ErrorKind::Failed, [&] { reg.erase("b"); });
    EXPECT_EQ(reg.activeCount(), 2u);
    fs::remove(dir);
    fs::rename(t.file("moved"), dir);
    reg.put(rec("d"));
    EXPECT_TRUE(fileIsAll());
    // Loaded again: the same records, counts and origin.
    GroupRegistry again(dir);
    again.load();
    EXPECT_EQ(again.all(), reg.all());
    EXPECT_EQ(again.activeCount(), 3u);
    EXPECT_EQ(again.find("w")->origin, Origin::Adopted);
    EXPECT_EQ(again.find("b")->origin, Origin::Hook);
}

TEST(GroupRegistry, OriginIsWrittenOnlyWhenAdoptedAndABadOneIsRefused) {
    GroupRecord r = rec("a");
    EXPECT_EQ(GroupRegistry::journalPut(r).find("origin"), std::string::npos)
        << "files stay as older versions wrote them for hooked groups";
    r.origin = Origin::Adopted;
    EXPECT_NE(GroupRegistry::journalPut(r).find("\"origin\":\"adopted\""), std::string::npos);
    const std::string good = R"({"version":1,"groups":[{"id":"a","ctrl":"","pid":1,)"
                             R"("createdUsec":2,"pending":false,"origin":"adopted"}]})";
    EXPECT_EQ(GroupRegistry::parse(good).at("a").origin, Origin::Adopted);
    for (const char* bad : {R"("runtime")", R"("")", "1", "null"}) {
        std::string text = good;
        text.replace(text.find(R"("adopted")"), 9, bad);
        expectError(ErrorKind::Failed, [&] { GroupRegistry::parse(text); });
    }
}

// A small tmpfs of our own, unmounted in TearDown whatever happens.
class RegistryOnTmpfs : public ::testing::Test {
protected:
    void SetUp() override {
        mnt_ = t_.file("mnt");
        ASSERT_EQ(::mkdir(mnt_.c_str(), 0700), 0);
        // A private mount namespace for this test process, so that even a crash cannot
        // leave the tmpfs mounted on the host. If that is not possible, TearDown unmounts.
        static const bool privateNs = [] {
            return ::unshare(CLONE_NEWNS) == 0 &&
                   ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
        }();
        (void)privateNs;
        if (::mount("rdtmon-test", mnt_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
                    "size=256k,mode=0700") != 0) {
            GTEST_SKIP() << "cannot mount tmpfs here: " << std::strerror(errno);
        }
        mounted_ = true;
    }
    void TearDown() override {
        if (mounted_) {
            EXPECT_EQ(::umount2(mnt_.c_str(), MNT_DETACH), 0) << std::strerror(errno);
        }
    }
    TempDir t_{"rdtmon-registry"};
    std::string mnt_;
    bool mounted_ = false;
};

TEST_F(RegistryOnTmpfs, FullStateDirGivesCleanErrorAndChangesNothing) {
    std::string dir = mnt_ + "/state";
    GroupRegistry reg(dir);
    reg.load();
    reg.put(rec("keep", "", 1, 1));
    std::string before = readFile(dir + "/groups.journal");

    // Fill the file system.
    {
        int fd = ::open((mnt_ + "/filler").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        ASSERT_GE(fd, 0);
        std::string chunk(4096, 'x');
        int err = 0;
        for (int i = 0; i < 1000; ++i) {
            if (::write(fd, chunk.data(), chunk.size()) < 0) {
                err = errno;
                break;
            }
        }
        ::close(fd);
        ASSERT_EQ(err, ENOSPC);
    }
    // A line longer than what is left of the journal's page.
    GroupRecord big = rec(std::string(100, 'n'), std::string(200, 'c'), 9, 9);
    big.cgroup = "/" + std::string(4000, 'g');
    std::string msg = expectError(ErrorKind::Failed, [&] { reg.put(big); });
    EXPECT_NE(msg.find(std::strerror(ENOSPC)), std::string::npos) << msg;
    EXPECT_EQ(reg.size(), 1u);
    EXPECT_TRUE(reg.find("keep").has_value());
    EXPECT_EQ(sortedEntries(dir), std::vector<std::string>{"groups.journal"});
    EXPECT_EQ(readFile(dir + "/groups.journal"), before) << "the partial line was cut off";
    // A snapshot does not fit either: the journal is not touched.
    expectError(ErrorKind::Failed, [&] { reg.put(rec("small")); });
    EXPECT_EQ(sortedEntries(dir), std::vector<std::string>{"groups.journal"}); // no temp file
    EXPECT_EQ(readFile(dir + "/groups.journal"), before);

    // Space again: the next change rewrites the state from memory, never appending after
    // what the failed append may have left.
    ASSERT_EQ(::unlink((mnt_ + "/filler").c_str()), 0);
    reg.put(big);
    EXPECT_EQ(sortedEntries(dir), std::vector<std::string>{"groups.json"});
    GroupRegistry again(dir);
    again.load();
    EXPECT_EQ(again.all(), reg.all());
    EXPECT_EQ(again.size(), 2u);
}

TEST_F(RegistryOnTmpfs, ReadOnlyStateDirGivesCleanErrorAndChangesNothing) {
    std::string dir = mnt_ + "/state";
    GroupRegistry reg(dir);
    reg.load();
    reg.put(rec("keep", "", 1, 1));
    ASSERT_EQ(::mount(nullptr, mnt_.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr), 0)
        << std::strerror(errno);
    std::string msg = expectError(ErrorKind::Failed, [&] { reg.put(rec("new")); });
    EXPECT_NE(msg.find(std::strerror(EROFS)), std::string::npos) << msg;
    EXPECT_FALSE(reg.find("new").has_value());
    expectError(ErrorKind::Failed, [&] { reg.erase("keep"); });
    EXPECT_TRUE(reg.find("keep").has_value());
    GroupRegistry again(dir); // cannot compact on a read-only file system: still loads
    EXPECT_FALSE(again.load().movedAsideTo.has_value());
    EXPECT_EQ(again.all(), reg.all());
}

TEST(GroupRegistry, CorruptFileIsMovedAsideAndRegistryStartsEmpty) {
    TempDir t("rdtmon-registry");
    writeFile(t.file("groups.json"), "{\"version\":1,\"groups\":[{\"id\":");
    GroupRegistry reg(t.path());
    auto res = reg.load();
    EXPECT_TRUE(res.fileExisted);
    ASSERT_TRUE(res.movedAsideTo.has_value());
    EXPECT_FALSE(res.problem.empty());
    EXPECT_EQ(reg.size(), 0u);
    EXPECT_FALSE(fs::exists(t.file("groups.json")));
    EXPECT_EQ(readFile(*res.movedAsideTo), "{\"version\":1,\"groups\":[{\"id\":");
    std::string name = fs::path(*res.movedAsideTo).filename().string();
    EXPECT_EQ(name.rfind("groups.json.corrupt-", 0), 0u) << name;
    EXPECT_GT(std::stoull(name.substr(std::strlen("groups.json.corrupt-"))), 0u);
    // The registry is usable afterwards.
    reg.put(rec("fresh"));
    GroupRegistry again(t.path());
    EXPECT_FALSE(again.load().movedAsideTo.has_value());
    EXPECT_TRUE(again.find("fresh").has_value());
}

TEST(GroupRegistry, SemanticallyInvalidFileIsMovedAside) {
    TempDir t("rdtmon-registry");
    writeFile(
        t.file("groups.json"),
        R"({"version":1,"groups":[{"id":"../x","ctrl":"","pid":1,"createdUsec":1,"pending":false}]})");
    GroupRegistry reg(t.path());
    auto res = reg.load();
    EXPECT_TRUE(res.movedAsideTo.has_value());
    EXPECT_EQ(reg.size(), 0u);
}

TEST(GroupRegistry, OversizedFileIsTreatedAsCorrupt) {
    TempDir t("rdtmon-registry");
    {
        int fd = ::open(t.file("groups.json").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::ftruncate(fd, (64 << 20) + 1), 0); // sparse: cheap
        ::close(fd);
    }
    GroupRegistry reg(t.path());
    auto res = reg.load();
    EXPECT_TRUE(res.movedAsideTo.has_value());
    EXPECT_NE(res.problem.find("64 MiB"), std::string::npos) << res.problem;
    EXPECT_EQ(reg.size(), 0u);
}

TEST(GroupRegistry, DirectoryAtFileNameIsMovedAside) {
    TempDir t("rdtmon-registry");
    ASSERT_EQ(::mkdir(t.file("groups.json").c_str(), 0700), 0);
    GroupRegistry reg(t.path());
    auto res = reg.load();
    EXPECT_TRUE(res.movedAsideTo.has_value());
    EXPECT_TRUE(fs::is_directory(*res.movedAsideTo));
}

TEST(GroupRegistry, SymlinkAtGroupsJsonIsNeverFollowed) {
    TempDir t("rdtmon-registry");
    std::string victim = t.file("victim");
    std::string valid = GroupRegistry::serialize({{"v", rec("v")}});
    writeFile(victim, valid);
    std::string state = t.file("state");
    ASSERT_EQ(::mkdir(state.c_str(), 0700), 0);
    ASSERT_EQ(::symlink(victim.c_str(), (state + "/groups.json").c_str()), 0);

    // Load does not read through it: it is moved aside (the link itself).
    GroupRegistry reg(state);
    auto res = reg.load();
    EXPECT_EQ(reg.size(), 0u);
    ASSERT_TRUE(res.movedAsideTo.has_value());
    EXPECT_TRUE(fs::is_symlink(*res.movedAsideTo));

    // Plant it again; a snapshot replaces the link instead of writing through it.
    ASSERT_EQ(::symlink(victim.c_str(), (state + "/groups.json").c_str()), 0);
    reg.put(rec("mine"));
    reg.compact();
    EXPECT_EQ(readFile(victim), valid);
    EXPECT_FALSE(fs::is_symlink(state + "/groups.json"));
    EXPECT_TRUE(GroupRegistry::parse(readFile(state + "/groups.json")).count("mine"));
}

TEST(GroupRegistry, SymlinkAtTempNameIsNeverFollowed) {
    TempDir t("rdtmon-registry");
    std::string victim = t.file("victim");
    writeFile(victim, "precious");
    std::string state = t.file("state");
    GroupRegistry reg(state);
    reg.load();
    ASSERT_EQ(::symlink(victim.c_str(), (state + "/groups.json.tmp").c_str()), 0);
    reg.put(rec("mine"));
    reg.compact();
    EXPECT_EQ(readFile(victim), "precious");
    EXPECT_EQ(sortedEntries(state), std::vector<std::string>{"groups.json"});
    EXPECT_TRUE(GroupRegistry::parse(readFile(state + "/groups.json")).count("mine"));
}

TEST(GroupRegistry, PutRejectsInvalidRecordsWithoutWriting) {
    TempDir t("rdtmon-registry");
    GroupRegistry reg(t.path());
    reg.load();
    expectError(ErrorKind::InvalidArgument, [&] { reg.put(rec("../etc")); });
    expectError(ErrorKind::InvalidArgument, [&] { reg.put(rec("mon_groups")); });
    expectError(ErrorKind::InvalidArgument, [&] { reg.put(rec("ok", "a/b")); });
    expectError(ErrorKind::InvalidArgument, [&] { reg.put(rec("ok", "..")); });
    EXPECT_EQ(reg.size(), 0u);
    EXPECT_TRUE(fs::is_empty(t.path()));
}

TEST(GroupRegistry, ParseRejectsEveryMalformedShape) {
    const std::string good = R"({"id":"c1","ctrl":"","pid":1,"createdUsec":2,"pending":false})";
    auto doc = [](const std::string& groups) {
        return std::string(R"({"version":1,"groups":[)") + groups + "]}";
    };
    // Sanity: the template itself parses.
    ASSERT_EQ(GroupRegistry::parse(doc(good)).size(), 1u);

    const std::vector<std::string> bad = {
        "",
        "not json",
        "[]",
        "null",
        "42",
        R"({"groups":[]})",                                            // no version
        R"({"version":2,"groups":[]})",                                // unknown version
        R"({"version":"1","groups":[]})",                              // version wrong type
        R"({"version":1.0,"groups":[]})",                              // version not an integer
        R"({"version":1})",                                            // no groups
        R"({"version":1,"groups":{}})",                                // groups wrong type
        R"({"version":1,"groups":[],"extra":true})",                   // unknown top-level key
        doc("1"),                                                      // record not an object
        doc(R"({"ctrl":"","pid":1,"createdUsec":2,"pending":false})"), // no id
        doc(R"({"id":5,"ctrl":"","pid":1,"createdUsec":2,"pending":false})"),     // id type
        doc(R"({"id":"","ctrl":"","pid":1,"createdUsec":2,"pending":false})"),    // empty id
        doc(R"({"id":"a/b","ctrl":"","pid":1,"createdUsec":2,"pending":false})"), // bad id
        doc(R"({"id":"..","ctrl":"","pid":1,"createdUsec":2,"pending":false})"),
        doc(R"({"id":"info","ctrl":"","pid":1,"createdUsec":2,"pending":false})"),
        doc(R"({"id":")" + std::string(129, 'a') +
            R"(","ctrl":"","pid":1,"createdUsec":2,"pending":false})"), // id too long
        doc(R"({"id":"c1","pid":1,"createdUsec":2,"pending":false})"),  // no ctrl
        doc(R"({"id":"c1","ctrl":null,"pid":1,"createdUsec":2,"pending":false})"),
        doc(R"({"id":"c1","ctrl":"a/b","pid":1,"createdUsec":2,"pending":false})"),
        doc(R"({"id":"c1","ctrl":"..","pid":1,"createdUsec":2,"pending":false})"),
        doc(R"({"id":"c1","ctrl":".","pid":1,"createdUsec":2,"pending":false})"),
        doc(R"({"id":"c1","ctrl":"info","pid":1,"createdUsec":2,"pending":false})"),
        doc(R"({"id":"c1","ctrl":"","createdUsec":2,"pending":false})"), // no pid
        doc(R"({"id":"c1","ctrl":"","pid":-1,"createdUsec":2,"pending":false})"),
        doc(R"({"id":"c1","ctrl":"","pid":1.5,"createdUsec":2,"pending":false})"),
        doc(R"({"id":"c1","ctrl":"","pid":"1","createdUsec":2,"pending":false})"),
        doc(R"({"id":"c1","ctrl":"","pid":4294967296,"createdUsec":2,"pending":false})"),
        doc(R"({"id":"c1","ctrl":"","pid":1,"pending":false})"), // no createdUsec
        doc(R"({"id":"c1","ctrl":"","pid":1,"createdUsec":-2,"pending":false})"),
        doc(R"({"id":"c1","ctrl":"","pid":1,"createdUsec":"2","pending":false})"),
        doc(R"({"id":"c1","ctrl":"","pid":1,"createdUsec":2})"), // no pending
        doc(R"({"id":"c1","ctrl":"","pid":1,"createdUsec":2,"pending":0})"),
        doc(R"({"id":"c1","ctrl":"","pid":1,"createdUsec":2,"pending":false,"x":1})"),
        doc(good + "," + good), // duplicate id
        // labels: not an object of strings, or breaking the label rules
        doc(R"({"id":"c1","ctrl":"","pid":1,"createdUsec":2,"pending":false,"labels":[]})"),
        doc(R"({"id":"c1","ctrl":"","pid":1,"createdUsec":2,"pending":false,"labels":"x"})"),
        doc(R"({"id":"c1","ctrl":"","pid":1,"createdUsec":2,"pending":false,"labels":null})"),
        doc(R"({"id":"c1","ctrl":"","pid":1,"createdUsec":2,"pending":false,"labels":{"a":1}})"),
        doc(R"({"id":"c1","ctrl":"","pid":1,"createdUsec":2,"pending":false,"labels":{"A":"v"}})"),
        doc(R"({"id":"c1","ctrl":"","pid":1,"createdUsec":2,"pending":false,"labels":{"":"v"}})"),
        doc(R"({"id":"c1","ctrl":"","pid":1,"createdUsec":2,"pending":false,)"
            R"("labels":{"pod":"a\nb"}})"),
        doc(R"({"id":"c1","ctrl":"","pid":1,"createdUsec":2,"pending":false,"labels":{"pod":")" +
            std::string(254, 'v') + "\"}}"),
        // waiting: a boolean; a waiting record needs its pid's start time and its place
        doc(R"({"id":"c1","ctrl":"","pid":1,"createdUsec":2,"pending":false,"waiting":1,)"
            R"("pidStartTime":1,"waitSeq":1})"),
        doc(R"({"id":"c1","ctrl":"","pid":1,"createdUsec":2,"pending":false,"waiting":true,)"
            R"("waitSeq":1})"),
        doc(R"({"id":"c1","ctrl":"","pid":1,"createdUsec":2,"pending":false,"waiting":true,)"
            R"("pidStartTime":1})"),
        doc(R"({"id":"c1","ctrl":"","pid":1,"createdUsec":2,"pending":false,"waiting":true,)"
            R"("pidStartTime":-1,"waitSeq":1})"),
        doc(R"({"id":"c1","ctrl":"","pid":1,"createdUsec":2,"pending":false,"waiting":true,)"
            R"("pidStartTime":1,"waitSeq":"1"})"),
    };
    for (const auto& text : bad) {
        SCOPED_TRACE(text);
        expectError(ErrorKind::Failed, [&] { GroupRegistry::parse(text); });
    }
}

// ------------------------------------------------------------ the journal (groups.journal)

// Lines of the journal file, for the tests below.
std::vector<std::string> journalLines(const std::string& file) {
    std::vector<std::string> out;
    std::istringstream in(readFile(file));
    for (std::string line; std::getline(in, line);) {
        out.push_back(line);
    }
    return out;
}

ino_t inodeOf(const std::string& file) {
    struct stat st {};
    return ::stat(file.c_str(), &st) == 0 ? st.st_ino : 0;
}

TEST(GroupRegistryJournal, EveryChangeAppendsOneLineAndLeavesTheSnapshotAlone) {
    TempDir t("rdtmon-registry");
    {
        GroupRegistry seed(t.path());
        seed.load();
        seed.put(rec("old"));
        seed.compact();
    }
    const ino_t snapshot = inodeOf(t.file("groups.json"));
    const std::string snapshotText = readFile(t.file("groups.json"));
    GroupRegistry reg(t.path());
    reg.load();
    reg.put(rec("a", "", 1, 1, true)); // pending
    reg.put(rec("a", "", 1, 1));       // final
    reg.erase("old");
    reg.erase("never-there"); // no-op: no line
    EXPECT_EQ(inodeOf(t.file("groups.json")), snapshot) << "a change rewrote the snapshot";
    EXPECT_EQ(readFile(t.file("groups.json")), snapshotText);
    EXPECT_EQ(reg.journalLines(), 3u);
    EXPECT_EQ(journalLines(t.file("groups.journal")),
              (std::vector<std::string>{
                  R"({"put":{"id":"a","ctrl":"","pid":1,"createdUsec":1,"pending":true}})",
                  R"({"put":{"id":"a","ctrl":"","pid":1,"createdUsec":1,"pending":false}})",
                  R"({"erase":"old"})"}));
}

TEST(GroupRegistryJournal, LoadReplaysTheJournalOntoTheSnapshotThenCompacts) {
    TempDir t("rdtmon-registry");
    // A snapshot as every earlier version wrote it, and a journal of changes since.
    writeFile(t.file("groups.json"),
              R"({"version":1,"groups":[)"
              "\n"
              R"({"id":"gone","ctrl":"","pid":1,"createdUsec":1,"pending":false},)"
              "\n"
              R"({"id":"kept","ctrl":"clos1","pid":2,"createdUsec":2,"pending":false},)"
              "\n"
              R"({"id":"made","ctrl":"","pid":3,"createdUsec":3,"pending":true})"
              "\n]}\n");
    writeFile(t.file("groups.journal"),
              R"({"erase":"gone"})"
              "\n"
              R"({"put":{"id":"made","ctrl":"","pid":3,"createdUsec":3,"pending":false}})"
              "\n"
              R"({"put":{"id":"new","ctrl":"","pid":4,"createdUsec":4,"pending":true}})"
              "\n"
              R"({"put":{"id":"twice","ctrl":"","pid":5,"createdUsec":5,"pending":false}})"
              "\n"
              R"({"erase":"twice"})"
              "\n"
              R"({"put":{"id":"twice","ctrl":"","pid":6,"createdUsec":6,"pending":false}})"
              "\n");
    GroupRegistry reg(t.path());
    const GroupRegistry::LoadResult res = reg.load();
    EXPECT_TRUE(res.fileExisted);
    EXPECT_FALSE(res.movedAsideTo.has_value()) << res.problem;
    EXPECT_EQ(res.journalLines, 6u);
    EXPECT_FALSE(res.tornJournalTail);
    const std::vector<GroupRecord> want = {rec("kept", "clos1", 2, 2), rec("made", "", 3, 3),
                                           rec("new", "", 4, 4, true), rec("twice", "", 6, 6)};
    EXPECT_EQ(reg.all(), want);
    // Compacted: one snapshot holding the same, no journal.
    EXPECT_EQ(sortedEntries(t.path()), std::vector<std::string>{"groups.json"});
    EXPECT_EQ(reg.journalLines(), 0u);
    std::vector<GroupRecord> fromSnapshot;
    for (const auto& [id, r] : GroupRegistry::parse(readFile(t.file("groups.json")))) {
        fromSnapshot.push_back(r);
    }
    EXPECT_EQ(fromSnapshot, want);
}

TEST(GroupRegistryJournal, AJournalWithoutASnapshotLoads) {
    TempDir t("rdtmon-registry");
    {
        GroupRegistry reg(t.path());
        reg.load();
        reg.put(rec("a"));
        GroupRecord w = waitingRec("w", 1);
        reg.put(w);
    }
    EXPECT_EQ(sortedEntries(t.path()), std::vector<std::string>{"groups.journal"});
    GroupRegistry again(t.path());
    const GroupRegistry::LoadResult res = again.load();
    EXPECT_TRUE(res.fileExisted);
    EXPECT_EQ(res.journalLines, 2u);
    EXPECT_EQ(again.size(), 2u);
    EXPECT_EQ(again.waitingCount(), 1u);
    EXPECT_EQ(*again.find("w"), waitingRec("w", 1));
}

TEST(GroupRegistryJournal, ATornLastLineIsIgnored) {
    const std::string full =
        R"({"put":{"id":"b","ctrl":"","pid":2,"createdUsec":2,"pending":false}})"
        "\n";
    // Every cut of the last line a crash could leave, down to nothing of it but its first
    // byte, and one whose bytes never reached the disk (zeros, as ext4 can leave them).
    std::vector<std::string> tails;
    for (std::size_t n = 1; n < full.size(); ++n) {
        tails.push_back(full.substr(0, n));
    }
    tails.push_back(std::string(full.size() - 1, '\0'));
    for (const std::string& tail : tails) {
        SCOPED_TRACE(tail);
        TempDir t("rdtmon-registry");
        writeFile(t.file("groups.journal"),
                  R"({"put":{"id":"a","ctrl":"","pid":1,"createdUsec":1,"pending":true}})"
                  "\n" +
                      tail);
        GroupRegistry reg(t.path());
        const GroupRegistry::LoadResult res = reg.load();
        ASSERT_FALSE(res.movedAsideTo.has_value()) << res.problem;
        EXPECT_TRUE(res.tornJournalTail);
        EXPECT_EQ(res.journalLines, 1u);
        EXPECT_EQ(reg.all(), std::vector<GroupRecord>{rec("a", "", 1, 1, true)});
        // The compaction at load dropped the torn bytes; what follows reads back whole.
        reg.put(rec("c"));
        GroupRegistry again(t.path());
        const GroupRegistry::LoadResult res2 = again.load();
        EXPECT_FALSE(res2.movedAsideTo.has_value()) << res2.problem;
        EXPECT_FALSE(res2.tornJournalTail);
        EXPECT_EQ(again.all(), (std::vector<GroupRecord>{rec("a", "", 1, 1, true), rec("c")}));
    }
}

TEST(GroupRegistryJournal, NothingIsAppendedAfterATornTailThatCouldNotBeCompacted) {
    TempDir t("rdtmon-registry");
    writeFile(t.file("groups.journal"),
              R"({"put":{"id":"a","ctrl":"","pid":1,"createdUsec":1,"pending":false}})"
              "\n"
              R"({"put":{"id":"b")");
    // A directory at the temp name: no snapshot can be written (nor the name removed).
    ASSERT_EQ(::mkdir(t.file("groups.json.tmp").c_str(), 0700), 0);
    GroupRegistry reg(t.path());
    const GroupRegistry::LoadResult res = reg.load();
    ASSERT_FALSE(res.movedAsideTo.has_value()) << res.problem;
    EXPECT_TRUE(res.tornJournalTail);
    EXPECT_EQ(reg.size(), 1u);
    // Appending would glue the line onto the torn bytes: the change needs a snapshot, and
    // fails as long as none can be written, changing nothing.
    const std::string before = readFile(t.file("groups.journal"));
    expectError(ErrorKind::Failed, [&] { reg.put(rec("c")); });
    EXPECT_FALSE(reg.find("c"));
    EXPECT_EQ(readFile(t.file("groups.journal")), before);
    ASSERT_EQ(::rmdir(t.file("groups.json.tmp").c_str()), 0);
    reg.put(rec("c"));
    EXPECT_EQ(sortedEntries(t.path()), std::vector<std::string>{"groups.json"});
    GroupRegistry again(t.path());
    EXPECT_FALSE(again.load().movedAsideTo.has_value());
    EXPECT_EQ(again.all(), (std::vector<GroupRecord>{rec("a", "", 1, 1), rec("c")}));
}

TEST(GroupRegistryJournal, CompactsWhenTheJournalOutgrowsMax64AndTheRecords) {
    TempDir t("rdtmon-registry");
    GroupRegistry reg(t.path());
    reg.load();
    // One record changed again and again: 64 lines are kept, the 65th compacts.
    for (uint32_t i = 1; i <= 64; ++i) {
        reg.put(rec("a", "", i));
    }
    EXPECT_EQ(reg.journalLines(), 64u);
    EXPECT_FALSE(fs::exists(t.file("groups.json")));
    reg.put(rec("a", "", 65));
    EXPECT_EQ(reg.journalLines(), 0u);
    EXPECT_EQ(sortedEntries(t.path()), std::vector<std::string>{"groups.json"});
    EXPECT_EQ(GroupRegistry::parse(readFile(t.file("groups.json"))).at("a").pid, 65u);

    // Creates (two lines each) past 64 records: the bound is the number of records, so a
    // snapshot is written once per (records / 2) creates at most, O(1) per change amortised.
    int compactions = 0;
    for (int i = 0; i < 100; ++i) {
        for (bool pending : {true, false}) {
            const std::size_t before = reg.journalLines();
            reg.put(rec(concat("r", i), "", 1, 1, pending));
            compactions += reg.journalLines() < before ? 1 : 0;
            ASSERT_LE(reg.journalLines(), std::max<std::size_t>(64, reg.size()));
        }
    }
    EXPECT_EQ(compactions, 2); // at 65 lines over 34 records, then 69 over 68
    GroupRegistry again(t.path());
    again.load();
    EXPECT_EQ(again.all(), reg.all());
}

TEST(GroupRegistryJournal, ACrashBeforeTheCompactionsRenameLosesNothing) {
    TempDir t("rdtmon-registry");
    {
        GroupRegistry reg(t.path());
        reg.load();
        reg.put(rec("base"));
        reg.compact();
        reg.put(rec("a", "", 1, 1, true));
        reg.put(rec("a"));
        reg.erase("base");
    }
    // The compaction died with its temp file half written: groups.json and the journal are
    // still the state.
    writeFile(t.file("groups.json.tmp"), R"({"version":1,"groups":[{"id":"a","ctrl")");
    GroupRegistry again(t.path());
    const GroupRegistry::LoadResult res = again.load();
    EXPECT_FALSE(res.movedAsideTo.has_value()) << res.problem;
    EXPECT_EQ(again.all(), std::vector<GroupRecord>{rec("a")});
    EXPECT_EQ(sortedEntries(t.path()), std::vector<std::string>{"groups.json"});
}

TEST(GroupRegistryJournal, ACrashBetweenTheCompactionsRenameAndTheJournalsRemovalIsHarmless) {
    TempDir t("rdtmon-registry");
    std::string journal;
    std::vector<GroupRecord> want;
    {
        GroupRegistry reg(t.path());
        reg.load();
        reg.put(rec("x", "", 1));
        reg.put(rec("gone"));
        reg.put(rec("y", "", 1, 1, true));
        reg.erase("gone");
        reg.put(rec("y", "", 2));
        reg.put(rec("x", "", 3));
        journal = readFile(t.file("groups.journal"));
        reg.compact();
        want = reg.all();
    }
    // The journal's removal never reached the disk: the new snapshot and the old journal.
    writeFile(t.file("groups.journal"), journal);
    {
        GroupRegistry again(t.path());
        const GroupRegistry::LoadResult res = again.load();
        EXPECT_FALSE(res.movedAsideTo.has_value()) << res.problem;
        EXPECT_EQ(res.journalLines, 6u);
        EXPECT_EQ(again.all(), want);
    }
    // Lines appended after such a journal are applied after it.
    writeFile(t.file("groups.journal"),
              journal + R"({"erase":"x"})" + "\n" +
                  R"({"put":{"id":"z","ctrl":"","pid":9,"createdUsec":9,"pending":false}})" + "\n");
    GroupRegistry third(t.path());
    EXPECT_FALSE(third.load().movedAsideTo.has_value());
    EXPECT_EQ(third.all(), (std::vector<GroupRecord>{rec("y", "", 2), rec("z", "", 9, 9)}));
}

TEST(GroupRegistryJournal, AJournalThatIsNotAsLeftIsReplacedByASnapshot) {
    TempDir t("rdtmon-registry");
    std::string victim = t.file("victim");
    writeFile(victim, "precious");
    std::string state = t.file("state");
    GroupRegistry reg(state);
    reg.load();
    reg.put(rec("a"));
    reg.put(rec("b"));
    // Removed behind its back: the next change writes every record, not just its line.
    ASSERT_EQ(::unlink((state + "/groups.journal").c_str()), 0);
    reg.put(rec("c"));
    EXPECT_EQ(GroupRegistry::parse(readFile(state + "/groups.json")).size(), 3u);
    EXPECT_FALSE(fs::exists(state + "/groups.journal"));
    // Grown behind its back: the same.
    reg.put(rec("d"));
    writeFile(state + "/groups.journal",
              readFile(state + "/groups.journal") + R"({"erase":"a"})" + "\n");
    reg.put(rec("e"));
    EXPECT_EQ(GroupRegistry::parse(readFile(state + "/groups.json")).size(), 5u);
    // A symlink planted at the name is never written through.
    ASSERT_EQ(::symlink(victim.c_str(), (state + "/groups.journal").c_str()), 0);
    reg.put(rec("f"));
    EXPECT_EQ(readFile(victim), "precious");
    EXPECT_FALSE(fs::is_symlink(state + "/groups.journal"));
    GroupRegistry again(state);
    EXPECT_FALSE(again.load().movedAsideTo.has_value());
    EXPECT_EQ(again.all(), reg.all());
    EXPECT_EQ(again.size(), 6u);
}

TEST(GroupRegistryJournal, ACorruptLineMovesBothFilesAside) {
    const std::string snapshot = GroupRegistry::serialize({{"a", rec("a")}});
    for (const std::string& bad : {std::string("{\"erase\":\"../x\"}\n"), std::string("\n"),
                                   std::string("{\"put\":{\"id\":\"b\"}}\n")}) {
        SCOPED_TRACE(bad);
        TempDir t("rdtmon-registry");
        writeFile(t.file("groups.json"), snapshot);
        // Bad in the middle, and bad as the last, complete, line: neither is a torn write.
        for (const std::string& journal :
             {bad + R"({"erase":"a"})" + "\n", std::string(R"({"erase":"a"})") + "\n" + bad}) {
            writeFile(t.file("groups.journal"), journal);
            GroupRegistry reg(t.path());
            const GroupRegistry::LoadResult res = reg.load();
            ASSERT_TRUE(res.movedAsideTo.has_value());
            EXPECT_NE(res.problem.find("groups journal: line"), std::string::npos) << res.problem;
            EXPECT_EQ(reg.size(), 0u);
            ASSERT_EQ(res.movedAside.size(), 2u);
            EXPECT_EQ(*res.movedAsideTo, res.movedAside[0]);
            const std::string suffix =
                res.movedAside[0].substr(res.movedAside[0].find(".corrupt-"));
            EXPECT_EQ(res.movedAside[0], t.file("groups.json") + suffix);
            EXPECT_EQ(res.movedAside[1], t.file("groups.journal") + suffix);
            EXPECT_EQ(readFile(res.movedAside[0]), snapshot);
            EXPECT_EQ(readFile(res.movedAside[1]), journal);
            EXPECT_FALSE(fs::exists(t.file("groups.json")));
            EXPECT_FALSE(fs::exists(t.file("groups.journal")));
            fs::remove(res.movedAside[0]);
            fs::remove(res.movedAside[1]);
            writeFile(t.file("groups.json"), snapshot);
        }
    }
}

TEST(GroupRegistryJournal, ACorruptSnapshotTakesTheJournalAsideToo) {
    TempDir t("rdtmon-registry");
    writeFile(t.file("groups.json"), "{\"version\":1,\"groups\":[{\"id\":");
    writeFile(t.file("groups.journal"), R"({"erase":"a"})"
                                        "\n");
    GroupRegistry reg(t.path());
    const GroupRegistry::LoadResult res = reg.load();
    ASSERT_EQ(res.movedAside.size(), 2u);
    EXPECT_EQ(reg.size(), 0u);
    EXPECT_FALSE(fs::exists(t.file("groups.journal"))) << "nothing left to mix with new records";
    reg.put(rec("fresh"));
    GroupRegistry again(t.path());
    EXPECT_FALSE(again.load().movedAsideTo.has_value());
    EXPECT_EQ(again.all(), std::vector<GroupRecord>{rec("fresh")});
}

TEST(GroupRegistryJournal, AnOversizedJournalIsTreatedAsCorrupt) {
    TempDir t("rdtmon-registry");
    {
        int fd = ::open(t.file("groups.journal").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::ftruncate(fd, (64 << 20) + 1), 0);
        ::close(fd);
    }
    GroupRegistry reg(t.path());
    const GroupRegistry::LoadResult res = reg.load();
    ASSERT_TRUE(res.movedAsideTo.has_value());
    EXPECT_NE(res.problem.find("groups.journal: larger than 64 MiB"), std::string::npos)
        << res.problem;
}

TEST(GroupRegistryJournal, ReplayRejectsEveryMalformedLine) {
    const std::string good = R"({"id":"c1","ctrl":"","pid":1,"createdUsec":2,"pending":false})";
    std::map<std::string, GroupRecord> records;
    ASSERT_EQ(GroupRegistry::replayJournal("{\"put\":" + good + "}\n", records).lines, 1u);
    const std::vector<std::string> bad = {
        "\n",
        " \n",
        "not json\n",
        "[]\n",
        "null\n",
        "{}\n",
        std::string(R"({"put":)" + good + R"(,"erase":"c1"})") + "\n", // two keys
        R"({"add":)" + good + "}\n",                                   // unknown key
        std::string(R"({"put":[]})") + "\n",
        std::string(R"({"put":{"id":"c1"}})") + "\n", // fields missing
        std::string(R"({"put":{"id":"../x","ctrl":"","pid":1,"createdUsec":2,"pending":false}})") +
            "\n",
        std::string(
            R"({"put":{"id":"c1","ctrl":"","pid":1,"createdUsec":2,"pending":false,"x":1}})") +
            "\n",
        std::string(R"({"erase":5})") + "\n",
        std::string(R"({"erase":""})") + "\n",
        std::string(R"({"erase":"a/b"})") + "\n",
        std::string(R"({"erase":"info"})") + "\n",
        "{\"put\":" + good + "}{\"erase\":\"c1\"}\n", // two objects on a line
    };
    for (const std::string& line : bad) {
        SCOPED_TRACE(line);
        std::map<std::string, GroupRecord> m;
        expectError(ErrorKind::Failed, [&] { GroupRegistry::replayJournal(line, m); });
        // The same after a good line: the line number says which.
        const std::string msg = expectError(ErrorKind::Failed, [&] {
            GroupRegistry::replayJournal("{\"put\":" + good + "}\n" + line, m);
        });
        EXPECT_NE(msg.find("line 2"), std::string::npos) << msg;
    }
}

TEST(GroupRegistryJournal, LinesRoundTripWhateverTheRecordHolds) {
    GroupRecord odd = waitingRec("w-1", 18446744073709551615ull, 7);
    odd.pending = true;
    odd.cgroup = "/sys/fs/cgroup/a b/\"q\"\\";
    odd.labels = {{"pod", "caf\xc3\xa9 \"x\" \\ y"}, {"namespace", "n"}};
    const std::string put = GroupRegistry::journalPut(odd);
    ASSERT_EQ(put.back(), '\n');
    EXPECT_EQ(put.find('\n'), put.size() - 1) << "one line, whatever the strings hold";
    std::map<std::string, GroupRecord> m;
    const GroupRegistry::JournalReplay r = GroupRegistry::replayJournal(
        put + GroupRegistry::journalPut(rec("b")) + GroupRegistry::journalErase("b"), m);
    EXPECT_EQ(r.lines, 3u);
    EXPECT_FALSE(r.tornTail);
    EXPECT_EQ(r.validBytes, put.size() + GroupRegistry::journalPut(rec("b")).size() +
                                GroupRegistry::journalErase("b").size());
    EXPECT_EQ(m, (std::map<std::string, GroupRecord>{{"w-1", odd}}));
}

} // namespace
} // namespace rdtmon::test
