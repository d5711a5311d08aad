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
    // A record without labels is written as before labels existed.
    const std::string text = readFile(t.file("groups.json"));
    EXPECT_NE(text.find(R"({"id":"plain","ctrl":"","pid":100,"createdUsec":5,"pending":false})"),
              std::string::npos)
        << text;
    GroupRegistry again(t.path());
    EXPECT_FALSE(again.load().movedAsideTo.has_value());
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
    // Active records are written exactly as before waiting existed.
    const std::string text = readFile(t.file("groups.json"));
    EXPECT_NE(text.find(R"({"id":"active","ctrl":"","pid":100,"createdUsec":5,"pending":false})"),
              std::string::npos)
        << text;
    GroupRegistry again(t.path());
    ASSERT_FALSE(again.load().movedAsideTo.has_value());
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
    EXPECT_FALSE(fs::exists(t.file("groups.json")));
}

TEST(GroupRegistry, AtomicWriteLeavesOnlyTheFileWithMode0600) {
    TempDir t("rdtmon-registry");
    GroupRegistry reg(t.path());
    reg.load();
    for (int i = 0; i < 20; ++i) {
        reg.put(rec(rdtmon::test::concat("c", i)));
    }
    EXPECT_EQ(sortedEntries(t.path()), std::vector<std::string>{"groups.json"});
    struct stat st {};
    ASSERT_EQ(::stat(t.file("groups.json").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    EXPECT_EQ(GroupRegistry::parse(readFile(t.file("groups.json"))).size(), 20u);
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
    std::string before = readFile(dir + "/groups.json");

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
    EXPECT_EQ(readFile(t.file("moved") + "/groups.json"), before);
}

TEST(GroupRegistry, TheFileIsAlwaysEveryRecordAndTheCountsFollowEveryChange) {
    TempDir t("rdtmon-registry");
    const std::string dir = t.file("state");
    GroupRegistry reg(dir);
    reg.load();
    auto fileIsAll = [&] {
        std::map<std::string, GroupRecord> all;
        for (const GroupRecord& r : reg.all()) {
            all.emplace(r.id, r);
        }
        return readFile(dir + "/groups.json") == GroupRegistry::serialize(all);
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
    EXPECT_EQ(GroupRegistry::serializeRecord(r).find("origin"), std::string::npos)
        << "files stay as older versions wrote them for hooked groups";
    r.origin = Origin::Adopted;
    EXPECT_NE(GroupRegistry::serializeRecord(r).find("\"origin\":\"adopted\""), std::string::npos);
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
    std::string before = readFile(dir + "/groups.json");

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
    // Enough records that the new file needs more than a page.
    std::string msg = expectError(ErrorKind::Failed, [&] {
        GroupRecord r = rec(std::string(100, 'n'), std::string(200, 'c'), 9, 9);
        reg.put(r);
    });
    EXPECT_NE(msg.find(std::strerror(ENOSPC)), std::string::npos) << msg;
    EXPECT_EQ(reg.size(), 1u);
    EXPECT_TRUE(reg.find("keep").has_value());
    EXPECT_EQ(sortedEntries(dir), std::vector<std::string>{"groups.json"}); // temp file removed
    EXPECT_EQ(readFile(dir + "/groups.json"), before);
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
    EXPECT_EQ(GroupRegistry::parse(readFile(dir + "/groups.json")).size(), 1u);
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

    // Plant it again; a write replaces the link instead of writing through it.
    ASSERT_EQ(::symlink(victim.c_str(), (state + "/groups.json").c_str()), 0);
    reg.put(rec("mine"));
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
    EXPECT_FALSE(fs::exists(t.file("groups.json")));
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

} // namespace
} // namespace rdtmon::test
