#include "EmulatorMount.h"
#include "Errors.h"
#include "FileIo.h"
#include "Proc.h"
#include "Resctrl.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <ftw.h>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace rdtmon::test {
namespace {

// ---------------------------------------------------------------------------
// Helpers for the tests on a plain directory tree (no emulator needed).

int removeEntry(const char* path, const struct stat*, int, struct FTW*) {
    return ::remove(path);
}

// A private scratch directory, removed with everything in it (symlinks are not followed).
class ScratchDir {
public:
    ScratchDir() {
        char tmpl[] = "/tmp/rdtmon-test-resctrl-XXXXXX";
        const char* p = ::mkdtemp(tmpl);
        if (p == nullptr) {
            throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
        }
        path_ = p;
    }
    ~ScratchDir() { ::nftw(path_.c_str(), removeEntry, 16, FTW_DEPTH | FTW_PHYS); }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    const std::string& path() const { return path_; }
    std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

private:
    std::string path_;
};

void makeDirs(const std::string& path) {
    std::string cur;
    std::stringstream ss(path);
    std::string part;
    while (std::getline(ss, part, '/')) {
        if (part.empty()) {
            continue;
        }
        cur += "/" + part;
        if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) {
            throw std::runtime_error("mkdir " + cur + ": " + std::strerror(errno));
        }
    }
}

void writeFile(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::trunc);
    out << text;
    if (!out) {
        throw std::runtime_error("cannot write " + path);
    }
}

std::string readFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

std::vector<std::string> entriesOf(const std::string& dir) {
    std::vector<std::string> out;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (auto* de = ::readdir(d)) {
            std::string n = de->d_name;
            if (n != "." && n != "..") {
                out.push_back(n);
            }
        }
        ::closedir(d);
    }
    std::sort(out.begin(), out.end());
    return out;
}

// A minimal fake resctrl layout on a plain filesystem: enough for the path, symlink,
// listing and parsing logic. Kernel semantics are covered by the emulator tests.
void makeFakeResctrl(const std::string& root) {
    makeDirs(root + "/info/L3_MON");
    writeFile(root + "/info/last_cmd_status", "ok\n");
    writeFile(root + "/info/L3_MON/num_rmids", "224\n");
    writeFile(root + "/info/L3_MON/mon_features",
              "llc_occupancy\nmbm_total_bytes\nmbm_local_bytes\n");
    writeFile(root + "/tasks", "");
    makeDirs(root + "/mon_groups");
    makeDirs(root + "/mon_data/mon_L3_00");
}

pid_t impossiblePid() {
    // Above pid_max: can never name a live process.
    std::ifstream in("/proc/sys/kernel/pid_max");
    long max = 4194304;
    in >> max;
    return static_cast<pid_t>(max + 1);
}

template <typename F> ErrorKind kindOf(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.kind();
    }
    ADD_FAILURE() << "no rdtmon::Error thrown";
    return ErrorKind::Failed;
}

template <typename F> std::string messageOf(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    ADD_FAILURE() << "no rdtmon::Error thrown";
    return {};
}

// ---------------------------------------------------------------------------
// Parsers

TEST(ParseCounterValue, Numbers) {
    EXPECT_EQ(parseCounterValue("123\n"), std::optional<uint64_t>(123));
    EXPECT_EQ(parseCounterValue("0\n"), std::optional<uint64_t>(0));
    EXPECT_EQ(parseCounterValue("42"), std::optional<uint64_t>(42));
    EXPECT_EQ(parseCounterValue("18446744073709551615\n"), std::optional<uint64_t>(UINT64_MAX));
}

TEST(ParseCounterValue, WordsAndGarbageAreNoValue) {
    EXPECT_EQ(parseCounterValue("Unavailable\n"), std::nullopt);
    EXPECT_EQ(parseCounterValue("Unavailable"), std::nullopt);
    EXPECT_EQ(parseCounterValue("Error"), std::nullopt);
    EXPECT_EQ(parseCounterValue("Error\n"), std::nullopt);
    EXPECT_EQ(parseCounterValue("Unassigned"), std::nullopt);
    EXPECT_EQ(parseCounterValue(""), std::nullopt);
    EXPECT_EQ(parseCounterValue("\n"), std::nullopt);
    EXPECT_EQ(parseCounterValue("12a"), std::nullopt);
    EXPECT_EQ(parseCounterValue("-1"), std::nullopt);
    EXPECT_EQ(parseCounterValue("+1"), std::nullopt);
    EXPECT_EQ(parseCounterValue("0x10"), std::nullopt);
    EXPECT_EQ(parseCounterValue("1 2"), std::nullopt);
    // 2^64 does not fit.
    EXPECT_EQ(parseCounterValue("18446744073709551616\n"), std::nullopt);
    EXPECT_EQ(parseCounterValue("99999999999999999999999"), std::nullopt);
}

TEST(ParseDecimalValue, TheKernelsFixedPointFiguresAndNothingElse) {
    EXPECT_EQ(parseDecimalValue("12.345678\n"), std::optional<double>(12.345678));
    EXPECT_EQ(parseDecimalValue("0.0\n"), std::optional<double>(0.0));
    EXPECT_EQ(parseDecimalValue("45.5"), std::optional<double>(45.5));
    // What the kernel prints at 6 places stays exact to its last digit up to 9e9.
    EXPECT_EQ(parseDecimalValue("8999999999.999999\n"), std::optional<double>(8999999999.999999));
    for (const char* bad : {"12\n", "Unavailable\n", "", ".5", "5.", "-1.5", "+1.5", "1e3", "1.5e3",
                            "1.2.3", "1,5", " 1. 5", "nan", "inf", "0x1.8p1"}) {
        EXPECT_EQ(parseDecimalValue(bad), std::nullopt) << bad;
    }
}

TEST(ParseTaskList, OneIdPerLineMalformedSkipped) {
    EXPECT_EQ(parseTaskList(""), std::vector<pid_t>{});
    EXPECT_EQ(parseTaskList("1\n"), std::vector<pid_t>{1});
    EXPECT_EQ(parseTaskList("1\n22\n333\n"), (std::vector<pid_t>{1, 22, 333}));
    EXPECT_EQ(parseTaskList("1\n22"), (std::vector<pid_t>{1, 22}));
    EXPECT_EQ(parseTaskList("1\n\nabc\n-5\n0\n7x\n8\n"), (std::vector<pid_t>{1, 8}));
    EXPECT_EQ(parseTaskList("99999999999999\n9\n"), (std::vector<pid_t>{9}));
}

// The kernel's format (fs/resctrl/rdtgroup.c, proc_resctrl_show), line for line.
TEST(ParseCpuResctrlGroups, TheKernelsFormat) {
    EXPECT_EQ(parseCpuResctrlGroups("res:/\nmon:\n"), (TaskGroups{"", ""}));
    EXPECT_EQ(parseCpuResctrlGroups("res:/\nmon:c0ffee\n"), (TaskGroups{"", "c0ffee"}));
    EXPECT_EQ(parseCpuResctrlGroups("res:clos1\nmon:\n"), (TaskGroups{"clos1", ""}));
    EXPECT_EQ(parseCpuResctrlGroups("res:clos1\nmon:web-1\n"), (TaskGroups{"clos1", "web-1"}));
    // A name is taken as it is, blanks and all.
    EXPECT_EQ(parseCpuResctrlGroups("res:my clos\nmon:\n"), (TaskGroups{"my clos", ""}));
}

TEST(ParseCpuResctrlGroups, AnythingElseIsNoAnswer) {
    // resctrl not mounted: the kernel prints both keys with nothing after them.
    EXPECT_EQ(parseCpuResctrlGroups("res:\nmon:\n"), std::nullopt);
    // What an earlier version of rdtmon's notes said the format was.
    EXPECT_EQ(parseCpuResctrlGroups("res:/clos1\nmon:/clos1/mon_groups/c1\n"), std::nullopt);
    EXPECT_EQ(parseCpuResctrlGroups("res:/\n"), std::nullopt);
    EXPECT_EQ(parseCpuResctrlGroups("mon:web-1\n"), std::nullopt);
    EXPECT_EQ(parseCpuResctrlGroups(""), std::nullopt);
}

// ---------------------------------------------------------------------------
// findMount

class FindMount : public ::testing::Test {
protected:
    std::string write(const std::string& text) {
        std::string p = dir_ / "mountinfo";
        writeFile(p, text);
        return p;
    }
    ScratchDir dir_;
};

constexpr const char* kHostLines =
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
    "24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw\n"
    "25 22 0:23 / /tmp/resctrl rw shared:3 - tmpfs resctrl rw\n";

TEST_F(FindMount, FindsKernelMount) {
    auto p = write(std::string(kHostLines) +
                   "40 24 0:40 / /sys/fs/resctrl rw,relatime shared:20 - resctrl resctrl rw\n");
    EXPECT_EQ(Resctrl::findMount(p), std::optional<std::string>("/sys/fs/resctrl"));
}

TEST_F(FindMount, NoOptionalFieldsAndSeveralOptionalFields) {
    auto p = write("40 24 0:40 / /r1 rw - resctrl resctrl rw,mba_MBps\n");
    EXPECT_EQ(Resctrl::findMount(p), std::optional<std::string>("/r1"));
    p = write("40 24 0:40 / /r2 rw shared:2 master:3 propagate_from:4 - resctrl resctrl rw\n");
    EXPECT_EQ(Resctrl::findMount(p), std::optional<std::string>("/r2"));
}

TEST_F(FindMount, UnescapesOctalInMountPoint) {
    auto p = write(std::string(kHostLines) +
                   "40 24 0:40 / /mnt/my\\040res\\011ctrl\\134x rw - resctrl resctrl rw\n");
    EXPECT_EQ(Resctrl::findMount(p), std::optional<std::string>("/mnt/my res\tctrl\\x"));
}

TEST_F(FindMount, NoResctrlLine) {
    auto p = write(kHostLines); // a tmpfs whose *source* is "resctrl" is not it
    EXPECT_EQ(Resctrl::findMount(p), std::nullopt);
    EXPECT_EQ(Resctrl::findMount(write("")), std::nullopt);
}

TEST_F(FindMount, FuseEmulatorIsNotAutoDetected) {
    auto p = write(std::string(kHostLines) +
                   "41 24 0:41 / /run/emu rw,nosuid,nodev,relatime shared:21 - fuse.resctrl "
                   "resctrl-emu rw,user_id=0,group_id=0\n");
    EXPECT_EQ(Resctrl::findMount(p), std::nullopt);
}

TEST_F(FindMount, MalformedLinesAreSkipped) {
    auto p = write("garbage\n"
                   "1 2 3 4 5 6 7 8 9\n"
                   "40 24 0:40 / /bad rw resctrl resctrl rw\n" // no separator
                   "40 24 0:40 / /bad2 rw -\n"                 // nothing after separator
                   "40 24 0:40 / /good rw - resctrl resctrl rw\n");
    EXPECT_EQ(Resctrl::findMount(p), std::optional<std::string>("/good"));
}

TEST_F(FindMount, MissingFile) {
    EXPECT_EQ(Resctrl::findMount(dir_ / "does-not-exist"), std::nullopt);
}

TEST(ResctrlMount, NoKernelSupportIsNotSupported) {
    std::ifstream fs("/proc/filesystems");
    std::string all((std::istreambuf_iterator<char>(fs)), std::istreambuf_iterator<char>());
    if (all.find("\tresctrl\n") != std::string::npos || Resctrl::findMount()) {
        GTEST_SKIP() << "this kernel has resctrl; not mounting it from a unit test";
    }
    ScratchDir d;
    EXPECT_EQ(kindOf([&] { Resctrl::mount(d.path(), ""); }), ErrorKind::NotSupported);
}

// ---------------------------------------------------------------------------
// Resctrl on a plain directory tree

TEST(ResctrlOpen, PlainDirWithoutInfoIsNotSupported) {
    ScratchDir d;
    makeDirs(d / "mon_groups");
    EXPECT_EQ(kindOf([&] { Resctrl r(d.path()); }), ErrorKind::NotSupported);
    EXPECT_EQ(kindOf([&] { Resctrl r(d / "missing"); }), ErrorKind::NotSupported);
}

// Every symlink test runs with openat2(RESOLVE_NO_SYMLINKS) and with the openat(O_NOFOLLOW)
// fallback used on kernels without openat2.
class ResctrlSymlinks : public ::testing::TestWithParam<bool> {
protected:
    void SetUp() override { setUseOpenat2(GetParam()); }
    void TearDown() override { setUseOpenat2(true); }
};
INSTANTIATE_TEST_SUITE_P(OpenMode, ResctrlSymlinks, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "openat2" : "openat"; });

TEST_P(ResctrlSymlinks, InfoAsSymlinkIsNotSupported) {
    ScratchDir d;
    ScratchDir elsewhere;
    makeFakeResctrl(elsewhere.path());
    ASSERT_EQ(::symlink((elsewhere / "info").c_str(), (d / "info").c_str()), 0);
    EXPECT_EQ(kindOf([&] { Resctrl r(d.path()); }), ErrorKind::NotSupported);
}

TEST(ResctrlOpen, AcceptsAnyFsWithInfoAndReadsInfo) {
    ScratchDir d;
    makeFakeResctrl(d.path());
    Resctrl r(d.path() + "/");
    EXPECT_EQ(r.path(), d.path()); // trailing slash dropped
    EXPECT_FALSE(r.isKernelMount());
    EXPECT_TRUE(r.monitoringSupported());
    EXPECT_EQ(r.numRmids(), 224u);
    EXPECT_EQ(r.monFeatures(),
              (std::vector<std::string>{"llc_occupancy", "mbm_total_bytes", "mbm_local_bytes"}));
    EXPECT_EQ(r.lastCmdStatus(), "ok");
    EXPECT_EQ(r.groupPath({"", "c1"}), d.path() + "/mon_groups/c1");
    EXPECT_EQ(r.groupPath({"clos1", "c1"}), d.path() + "/clos1/mon_groups/c1");
}

TEST(ResctrlOpen, MissingMonitoringInfo) {
    ScratchDir d;
    makeDirs(d / "info");
    Resctrl r(d.path());
    EXPECT_FALSE(r.monitoringSupported());
    EXPECT_EQ(r.numRmids(), 0u);
    EXPECT_TRUE(r.monFeatures().empty());
    EXPECT_EQ(r.lastCmdStatus(), "");
}

TEST(ResctrlTree, CreateListRemoveOnPlainDirs) {
    ScratchDir d;
    makeFakeResctrl(d.path());
    makeDirs(d / "clos1/mon_groups");
    writeFile(d / "clos1/tasks", "");
    Resctrl r(d.path());
    r.createMonGroup({"", "c1"});
    r.createMonGroup({"clos1", "c2"});
    EXPECT_TRUE(exists(d / "mon_groups/c1"));
    EXPECT_TRUE(exists(d / "clos1/mon_groups/c2"));
    EXPECT_TRUE(r.monGroupExists({"", "c1"}));
    EXPECT_TRUE(r.monGroupExists({"clos1", "c2"}));
    EXPECT_FALSE(r.monGroupExists({"clos1", "c1"}));
    EXPECT_FALSE(r.monGroupExists({"nosuchclos", "c1"}));

    auto groups = r.listMonGroups();
    std::sort(groups.begin(), groups.end(),
              [](auto& a, auto& b) { return a.ctrl + "/" + a.name < b.ctrl + "/" + b.name; });
    EXPECT_EQ(groups, (std::vector<MonGroupRef>{{"", "c1"}, {"clos1", "c2"}}));

    EXPECT_EQ(kindOf([&] { r.createMonGroup({"", "c1"}); }), ErrorKind::AlreadyExists);
    EXPECT_EQ(kindOf([&] { r.createMonGroup({"nosuchclos", "c1"}); }), ErrorKind::NoSuchGroup);

    r.removeMonGroup({"", "c1"});
    EXPECT_FALSE(exists(d / "mon_groups/c1"));
    auto msg = messageOf([&] { r.removeMonGroup({"", "c1"}); });
    EXPECT_NE(msg.find(d.path() + "/mon_groups/c1"), std::string::npos) << msg;
    EXPECT_EQ(kindOf([&] { r.removeMonGroup({"", "c1"}); }), ErrorKind::NoSuchGroup);
    EXPECT_EQ(kindOf([&] { r.removeMonGroup({"nosuchclos", "c1"}); }), ErrorKind::NoSuchGroup);
}

TEST(ResctrlTree, RemoveNeverEmptiesAGroupFirst) {
    // rmdir alone: on a plain fs a populated dir cannot be removed, and the files in it
    // must still be there afterwards (no unlink was attempted).
    ScratchDir d;
    makeFakeResctrl(d.path());
    makeDirs(d / "mon_groups/c1");
    writeFile(d / "mon_groups/c1/tasks", "1\n");
    Resctrl r(d.path());
    EXPECT_EQ(kindOf([&] { r.removeMonGroup({"", "c1"}); }), ErrorKind::Failed);
    EXPECT_EQ(readFile(d / "mon_groups/c1/tasks"), "1\n");
}

TEST(ResctrlTree, InvalidNamesTouchNothing) {
    ScratchDir d;
    makeFakeResctrl(d.path());
    Resctrl r(d.path());
    const std::vector<MonGroupRef> bad = {
        {"", ""},
        {"", "."},
        {"", ".."},
        {"", "a/b"},
        {"", "../../x"},
        {"", "a\nb"},
        {"..", "c1"},
        {".", "c1"},
        {"a/b", "c1"},
        {"info", "c1"},
        {"mon_groups", "c1"},
        {"", "mon_data"},
        {"", "mon_groups"},
        {"", std::string("a\0b", 3)},
    };
    for (const auto& g : bad) {
        EXPECT_EQ(kindOf([&] { r.createMonGroup(g); }), ErrorKind::InvalidArgument)
            << g.ctrl << "|" << g.name;
        EXPECT_EQ(kindOf([&] { r.removeMonGroup(g); }), ErrorKind::InvalidArgument);
        EXPECT_EQ(kindOf([&] { r.moveTask(g, ::getpid()); }), ErrorKind::InvalidArgument);
        EXPECT_EQ(kindOf([&] { (void)r.readCounters(g); }), ErrorKind::InvalidArgument);
    }
    EXPECT_TRUE(entriesOf(d / "mon_groups").empty());
    EXPECT_EQ(entriesOf(d.path()),
              (std::vector<std::string>{"info", "mon_data", "mon_groups", "tasks"}));
}

TEST_P(ResctrlSymlinks, MonGroupsSymlinkIsNotFollowedByCreate) {
    ScratchDir d;
    ScratchDir target;
    makeDirs(d / "info");
    ASSERT_EQ(::symlink(target.path().c_str(), (d / "mon_groups").c_str()), 0);
    Resctrl r(d.path());
    auto msg = messageOf([&] { r.createMonGroup({"", "c1"}); });
    EXPECT_NE(msg.find("mon_groups"), std::string::npos) << msg;
    EXPECT_EQ(kindOf([&] { r.createMonGroup({"", "c1"}); }), ErrorKind::Failed);
    EXPECT_TRUE(entriesOf(target.path()).empty());

    // Also through a CTRL_MON symlink, and with the group removal.
    ASSERT_EQ(::symlink(target.path().c_str(), (d / "clos1").c_str()), 0);
    makeDirs(target / "mon_groups/victim");
    EXPECT_EQ(kindOf([&] { r.createMonGroup({"clos1", "c1"}); }), ErrorKind::Failed);
    EXPECT_EQ(kindOf([&] { r.removeMonGroup({"clos1", "victim"}); }), ErrorKind::Failed);
    EXPECT_EQ(kindOf([&] { r.removeMonGroup({"", "victim"}); }), ErrorKind::Failed);
    EXPECT_EQ(entriesOf(target / "mon_groups"), std::vector<std::string>{"victim"});
    EXPECT_FALSE(r.monGroupExists({"clos1", "victim"}));
    EXPECT_TRUE(r.listMonGroups().empty());
}

TEST_P(ResctrlSymlinks, GroupOrTasksSymlinkIsNotWritten) {
    ScratchDir d;
    ScratchDir target;
    makeFakeResctrl(d.path());
    makeDirs(target / "g");
    writeFile(target / "g/tasks", "untouched\n");
    writeFile(target / "file", "untouched\n");
    ASSERT_EQ(::symlink((target / "g").c_str(), (d / "mon_groups/c1").c_str()), 0);
    makeDirs(d / "mon_groups/c2");
    ASSERT_EQ(::symlink((target / "file").c_str(), (d / "mon_groups/c2/tasks").c_str()), 0);
    Resctrl r(d.path());
    EXPECT_EQ(kindOf([&] { r.moveTask({"", "c1"}, ::getpid()); }), ErrorKind::Failed);
    EXPECT_EQ(kindOf([&] { r.moveProcess({"", "c1"}, ::getpid()); }), ErrorKind::Failed);
    EXPECT_EQ(kindOf([&] { r.moveTask({"", "c2"}, ::getpid()); }), ErrorKind::Failed);
    EXPECT_EQ(kindOf([&] { r.moveProcess({"", "c2"}, ::getpid()); }), ErrorKind::Failed);
    EXPECT_EQ(kindOf([&] { (void)r.readCounters({"", "c1"}); }), ErrorKind::Failed);
    EXPECT_EQ(kindOf([&] { r.removeMonGroup({"", "c1"}); }), ErrorKind::Failed);
    EXPECT_EQ(readFile(target / "g/tasks"), "untouched\n");
    EXPECT_EQ(readFile(target / "file"), "untouched\n");
    EXPECT_TRUE(exists(d / "mon_groups/c1")); // the symlink itself is left alone
    auto groups = r.listMonGroups();
    EXPECT_EQ(groups, (std::vector<MonGroupRef>{{"", "c2"}}));
}

TEST(ResctrlTree, MoveTaskWritesOneIdPerWrite) {
    ScratchDir d;
    makeFakeResctrl(d.path());
    makeDirs(d / "mon_groups/c1");
    writeFile(d / "mon_groups/c1/tasks", "");
    Resctrl r(d.path());
    r.moveTask({"", "c1"}, 4242);
    EXPECT_EQ(readFile(d / "mon_groups/c1/tasks"), "4242\n");
    EXPECT_EQ(r.tasks({"", "c1"}), std::vector<pid_t>{4242});
    EXPECT_EQ(kindOf([&] { r.moveTask({"", "c1"}, 0); }), ErrorKind::InvalidArgument);
    EXPECT_EQ(kindOf([&] { r.moveTask({"", "nosuch"}, 1); }), ErrorKind::NoSuchGroup);
    EXPECT_EQ(kindOf([&] {
                  r.moveProcess({"", "c1"}, impossiblePid());
              }),
              ErrorKind::NoSuchProcess);
}

TEST(ResctrlTree, ReadCountersSkipsWordsAndReportsSubDomains) {
    ScratchDir d;
    makeFakeResctrl(d.path());
    const std::string g = d / "mon_groups/c1/mon_data";
    makeDirs(g + "/mon_L3_00");
    writeFile(g + "/mon_L3_00/llc_occupancy", "123\n");
    writeFile(g + "/mon_L3_00/mbm_total_bytes", "Unavailable\n");
    writeFile(g + "/mon_L3_00/mbm_local_bytes", "18446744073709551615\n");
    makeDirs(g + "/mon_L3_01/mon_sub_L3_02");
    makeDirs(g + "/mon_L3_01/mon_sub_L3_03");
    writeFile(g + "/mon_L3_01/llc_occupancy", "30\n");
    writeFile(g + "/mon_L3_01/mbm_total_bytes", "Error\n");
    writeFile(g + "/mon_L3_01/mon_sub_L3_02/llc_occupancy", "10\n");
    writeFile(g + "/mon_L3_01/mon_sub_L3_02/mbm_total_bytes", "Unassigned\n");
    writeFile(g + "/mon_L3_01/mon_sub_L3_03/llc_occupancy", "20\n");
    writeFile(g + "/mon_L3_01/mon_sub_L3_03/mbm_total_bytes", "12a\n");
    makeDirs(g + "/mon_L3_02");
    writeFile(g + "/mon_L3_02/llc_occupancy", "Unavailable\n");
    Resctrl r(d.path());
    Counters c = r.readCounters({"", "c1"});
    Counters want = {
        {"mon_L3_00", {{"llc_occupancy", 123}, {"mbm_local_bytes", UINT64_MAX}}},
        {"mon_L3_01", {{"llc_occupancy", 30}}},
        {"mon_L3_01/mon_sub_L3_02", {{"llc_occupancy", 10}}},
        {"mon_L3_01/mon_sub_L3_03", {{"llc_occupancy", 20}}},
    };
    EXPECT_EQ(c, want);
    EXPECT_EQ(kindOf([&] { (void)r.readCounters({"", "gone"}); }), ErrorKind::NoSuchGroup);
}

void removeTree(const std::string& path) {
    ::nftw(path.c_str(), removeEntry, 16, FTW_DEPTH | FTW_PHYS);
}

// The counters of one group's mon_data: two domains, the second with SNC sub-domains.
void writeMonData(const std::string& md, uint64_t base) {
    makeDirs(md + "/mon_L3_00");
    makeDirs(md + "/mon_L3_01/mon_sub_L3_02");
    makeDirs(md + "/mon_L3_01/mon_sub_L3_03");
    for (const char* dom :
         {"/mon_L3_00/", "/mon_L3_01/", "/mon_L3_01/mon_sub_L3_02/", "/mon_L3_01/mon_sub_L3_03/"}) {
        writeFile(md + dom + "llc_occupancy", std::to_string(base + 1) + "\n");
        writeFile(md + dom + "mbm_total_bytes", std::to_string(base + 2) + "\n");
        writeFile(md + dom + "mbm_local_bytes", std::to_string(base + 3) + "\n");
    }
}

// The bulk read runs with openat2 and with the openat fallback.
class ResctrlBulk : public ResctrlSymlinks {};
INSTANTIATE_TEST_SUITE_P(OpenMode, ResctrlBulk, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "openat2" : "openat"; });

TEST_P(ResctrlBulk, ReadsEveryKindOfGroupByTheDefaultGroupsLayout) {
    ScratchDir d;
    makeFakeResctrl(d.path());
    writeMonData(d / "mon_data", 100);
    writeMonData(d / "mon_groups/c1/mon_data", 200);
    writeMonData(d / "clos1/mon_data", 300);
    writeMonData(d / "clos1/mon_groups/c2/mon_data", 400);
    makeDirs(d / "clos2/mon_groups");
    writeMonData(d / "clos2/mon_data", 500);
    writeFile(d / "mon_groups/c1/mon_data/mon_L3_00/llc_occupancy", "Unavailable\n");
    writeFile(d / "mon_groups/c1/mon_data/mon_L3_01/mon_sub_L3_02/mbm_total_bytes", "Error\n");
    writeFile(d / "clos1/mon_data/mon_L3_00/mbm_local_bytes", "Unassigned\n");
    // A domain gone from one group only (CPU hotplug): that domain is left out.
    removeTree(d / "clos1/mon_groups/c2/mon_data/mon_L3_00");

    Resctrl r(d.path());
    CountersPass pass;
    // A plain file, unlike a resctrl one, still reads through an fd kept open after its
    // group is removed: keep none here (the kept files are tested on the emulator).
    pass.setBudget(0);
    r.beginCountersPass(pass);
    std::vector<std::string> keys;
    for (const auto& dom : pass.layout().domains) {
        keys.push_back(dom.key);
        EXPECT_EQ(dom.events, (std::vector<std::string>{"llc_occupancy", "mbm_local_bytes",
                                                        "mbm_total_bytes"}));
    }
    EXPECT_EQ(keys, (std::vector<std::string>{"mon_L3_00", "mon_L3_01", "mon_L3_01/mon_sub_L3_02",
                                              "mon_L3_01/mon_sub_L3_03"}));

    std::optional<Counters> root = r.readCountersBulk(pass, "", "");
    ASSERT_TRUE(root);
    EXPECT_EQ(root->size(), 4u);
    EXPECT_EQ(root->at("mon_L3_01/mon_sub_L3_03").at("mbm_local_bytes"), 103u);

    std::optional<Counters> c1 = r.readCountersBulk(pass, "", "c1");
    ASSERT_TRUE(c1);
    EXPECT_EQ(c1->at("mon_L3_00"), (std::map<std::string, uint64_t>{{"mbm_total_bytes", 202},
                                                                    {"mbm_local_bytes", 203}}));
    EXPECT_EQ(c1->at("mon_L3_01/mon_sub_L3_02").count("mbm_total_bytes"), 0u);
    // Equal to what the one-group read gives.
    EXPECT_EQ(*c1, r.readCounters({"", "c1"}));

    std::optional<Counters> clos1 = r.readCountersBulk(pass, "clos1", "");
    ASSERT_TRUE(clos1);
    EXPECT_EQ(clos1->at("mon_L3_00").count("mbm_local_bytes"), 0u);
    EXPECT_EQ(clos1->at("mon_L3_00").at("llc_occupancy"), 301u);

    std::optional<Counters> c2 = r.readCountersBulk(pass, "clos1", "c2");
    ASSERT_TRUE(c2);
    EXPECT_EQ(c2->count("mon_L3_00"), 0u);
    EXPECT_EQ(c2->size(), 3u);
    EXPECT_EQ(c2->at("mon_L3_01").at("mbm_total_bytes"), 402u);

    // Gone: an unknown group, a group under an unknown CTRL_MON group, and a group removed
    // after the pass began (the pass keeps a mon_groups dir of its CTRL_MON group).
    EXPECT_FALSE(r.readCountersBulk(pass, "", "nosuch"));
    EXPECT_FALSE(r.readCountersBulk(pass, "nosuchclos", "c1"));
    EXPECT_FALSE(r.readCountersBulk(pass, "nosuchclos", ""));
    writeMonData(d / "clos1/mon_groups/c3/mon_data", 600);
    ASSERT_TRUE(r.readCountersBulk(pass, "clos1", "c3"));
    removeTree(d / "clos1/mon_groups/c3");
    EXPECT_FALSE(r.readCountersBulk(pass, "clos1", "c3"));

    EXPECT_EQ(r.listCtrlGroups(), (std::vector<std::string>{"clos1", "clos2"}));
    // The default group, clos1, clos2, c1, c2.
    EXPECT_EQ(r.rmidsInUse(), 5u);
}

TEST_P(ResctrlBulk, ASymlinkAnywhereIsNotFollowed) {
    ScratchDir d;
    ScratchDir outside;
    makeFakeResctrl(d.path());
    writeMonData(d / "mon_data", 100);
    writeMonData(outside / "md", 900);
    makeDirs(d / "mon_groups/c1");
    ASSERT_EQ(::symlink((outside / "md").c_str(), (d / "mon_groups/c1/mon_data").c_str()), 0);
    writeMonData(d / "mon_groups/c2/mon_data", 200);
    ::unlink((d / "mon_groups/c2/mon_data/mon_L3_00/llc_occupancy").c_str());
    ASSERT_EQ(::symlink((outside / "md/mon_L3_00/llc_occupancy").c_str(),
                        (d / "mon_groups/c2/mon_data/mon_L3_00/llc_occupancy").c_str()),
              0);
    Resctrl r(d.path());
    CountersPass pass;
    r.beginCountersPass(pass);
    EXPECT_FALSE(r.readCountersBulk(pass, "", "c1"));
    std::optional<Counters> c2 = r.readCountersBulk(pass, "", "c2");
    ASSERT_TRUE(c2);
    EXPECT_EQ(c2->at("mon_L3_00").count("llc_occupancy"), 0u);
    EXPECT_EQ(c2->at("mon_L3_00").at("mbm_total_bytes"), 202u);
}

TEST(ResctrlTree, CtrlGroupOfScansCtrlMonTasks) {
    ScratchDir d;
    makeFakeResctrl(d.path());
    const pid_t me = ::getpid();
    // A MON group of the root lists the task too, but only CTRL_MON tasks count.
    makeDirs(d / "mon_groups/m1");
    writeFile(d / "mon_groups/m1/tasks", std::to_string(me) + "\n");
    makeDirs(d / "clos0/mon_groups");
    writeFile(d / "clos0/tasks", "1\n2\n");
    makeDirs(d / "notagroup");
    Resctrl r(d.path());
    EXPECT_EQ(r.ctrlGroupOf(me), "");

    makeDirs(d / "clos1/mon_groups/c1");
    writeFile(d / "clos1/tasks", "1\n" + std::to_string(me) + "\n");
    writeFile(d / "clos1/mon_groups/c1/tasks", std::to_string(me) + "\n");
    EXPECT_EQ(r.ctrlGroupOf(me), "clos1");
    EXPECT_EQ(kindOf([&] { (void)r.ctrlGroupOf(impossiblePid()); }), ErrorKind::NoSuchProcess);
    EXPECT_EQ(kindOf([&] { (void)r.ctrlGroupOf(0); }), ErrorKind::InvalidArgument);
}

// ---------------------------------------------------------------------------
// Against the emulator (kernel semantics)

std::vector<MonGroupRef> sorted(std::vector<MonGroupRef> v) {
    std::sort(v.begin(), v.end(), [](const MonGroupRef& a, const MonGroupRef& b) {
        return a.ctrl != b.ctrl ? a.ctrl < b.ctrl : a.name < b.name;
    });
    return v;
}

std::vector<pid_t> sorted(std::vector<pid_t> v) {
    std::sort(v.begin(), v.end());
    return v;
}

// Puts every thread of pid into a CTRL_MON group by writing its tasks file directly.
void writeThreadsTo(const std::string& tasksPath, pid_t pid) {
    for (pid_t t : threadsOf(pid)) {
        int fd = ::open(tasksPath.c_str(), O_WRONLY | O_CLOEXEC);
        ASSERT_GE(fd, 0) << tasksPath << ": " << std::strerror(errno);
        std::string s = std::to_string(t) + "\n";
        ssize_t n = ::write(fd, s.data(), s.size());
        int err = errno;
        ::close(fd);
        ASSERT_EQ(n, static_cast<ssize_t>(s.size())) << std::strerror(err);
    }
}

class ResctrlEmu : public ::testing::Test {
protected:
    void start(EmulatorOptions opts = {}) {
        emu_ = std::make_unique<EmulatorMount>(opts);
        r_ = std::make_unique<Resctrl>(emu_->path());
    }
    void TearDown() override {
        r_.reset();
        if (emu_) {
            emu_->stop();
        }
    }
    std::string at(const std::string& rel) const { return emu_->path() + "/" + rel; }

    std::unique_ptr<EmulatorMount> emu_;
    std::unique_ptr<Resctrl> r_;
};

TEST_F(ResctrlEmu, OpensFuseMountExplicitly) {
    start({.numRmids = 17});
    EXPECT_FALSE(r_->isKernelMount());
    EXPECT_TRUE(r_->monitoringSupported());
    EXPECT_EQ(r_->numRmids(), 17u);
    auto f = r_->monFeatures();
    EXPECT_NE(std::find(f.begin(), f.end(), "llc_occupancy"), f.end());
    // The FUSE mount is accepted explicitly but never auto-detected.
    EXPECT_NE(Resctrl::findMount(), std::optional<std::string>(emu_->path()));
}

TEST_F(ResctrlEmu, CreateListExistsRemove) {
    start();
    ASSERT_EQ(::mkdir(at("clos1").c_str(), 0755), 0) << std::strerror(errno);
    r_->createMonGroup({"", "c1"});
    r_->createMonGroup({"clos1", "c2"});
    EXPECT_TRUE(r_->monGroupExists({"", "c1"}));
    EXPECT_TRUE(r_->monGroupExists({"clos1", "c2"}));
    EXPECT_FALSE(r_->monGroupExists({"", "c2"}));
    EXPECT_FALSE(r_->monGroupExists({"clos9", "c2"}));
    EXPECT_EQ(sorted(r_->listMonGroups()), (std::vector<MonGroupRef>{{"", "c1"}, {"clos1", "c2"}}));

    EXPECT_EQ(kindOf([&] { r_->createMonGroup({"", "c1"}); }), ErrorKind::AlreadyExists);
    EXPECT_EQ(kindOf([&] { r_->createMonGroup({"clos9", "c1"}); }), ErrorKind::NoSuchGroup);

    r_->removeMonGroup({"clos1", "c2"});
    r_->removeMonGroup({"", "c1"});
    EXPECT_FALSE(r_->monGroupExists({"", "c1"}));
    EXPECT_TRUE(r_->listMonGroups().empty());
    EXPECT_TRUE(exists(at("clos1"))); // only the MON group went away
}

TEST_F(ResctrlEmu, RemoveUnknownIsNoSuchGroup) {
    start();
    auto msg = messageOf([&] { r_->removeMonGroup({"", "nope"}); });
    EXPECT_NE(msg.find(at("mon_groups/nope")), std::string::npos) << msg;
    EXPECT_EQ(kindOf([&] { r_->removeMonGroup({"", "nope"}); }), ErrorKind::NoSuchGroup);
    EXPECT_EQ(kindOf([&] { r_->removeMonGroup({"clos1", "nope"}); }), ErrorKind::NoSuchGroup);
    EXPECT_EQ(kindOf([&] { (void)r_->readCounters({"", "nope"}); }), ErrorKind::NoSuchGroup);
    EXPECT_EQ(kindOf([&] { r_->moveTask({"", "nope"}, ::getpid()); }), ErrorKind::NoSuchGroup);
    EXPECT_EQ(kindOf([&] { (void)r_->tasks({"", "nope"}); }), ErrorKind::NoSuchGroup);
}

TEST_F(ResctrlEmu, MovesEveryThreadOfAProcess) {
    start();
    ChildProcess child(spawnSleeper(5));
    auto threads = threadsOf(child.pid());
    ASSERT_EQ(threads.size(), 6u);
    const MonGroupRef g{"", "c1"};
    r_->createMonGroup(g);
    EXPECT_TRUE(r_->tasks(g).empty());
    r_->moveProcess(g, child.pid());
    EXPECT_EQ(sorted(r_->tasks(g)), threads);
    // Moving again is harmless.
    r_->moveProcess(g, child.pid());
    EXPECT_EQ(sorted(r_->tasks(g)), threads);
    // rmdir of a populated group works and the tasks go back to the parent.
    r_->removeMonGroup(g);
    EXPECT_FALSE(r_->monGroupExists(g));
    EXPECT_EQ(r_->ctrlGroupOf(child.pid()), "");
}

TEST_F(ResctrlEmu, MoveTaskOfMissingProcessIsNoSuchProcess) {
    start();
    const MonGroupRef g{"", "c1"};
    r_->createMonGroup(g);
    // ESRCH from the kernel for a single tid.
    EXPECT_EQ(kindOf([&] { r_->moveTask(g, impossiblePid()); }), ErrorKind::NoSuchProcess);
    EXPECT_EQ(kindOf([&] { r_->moveProcess(g, impossiblePid()); }), ErrorKind::NoSuchProcess);
    // A process that has exited and been reaped.
    ChildProcess child(spawnSleeper(0));
    pid_t gone = child.pid();
    child.reset();
    EXPECT_EQ(kindOf([&] { r_->moveProcess(g, gone); }), ErrorKind::NoSuchProcess);
    EXPECT_TRUE(r_->tasks(g).empty());
}

TEST_F(ResctrlEmu, CtrlGroupOfFindsTheCtrlMonGroup) {
    start();
    ChildProcess child(spawnSleeper(2));
    EXPECT_EQ(r_->ctrlGroupOf(child.pid()), "");
    ASSERT_EQ(::mkdir(at("clos1").c_str(), 0755), 0) << std::strerror(errno);
    ASSERT_EQ(::mkdir(at("clos2").c_str(), 0755), 0) << std::strerror(errno);
    writeThreadsTo(at("clos1/tasks"), child.pid());
    EXPECT_EQ(r_->ctrlGroupOf(child.pid()), "clos1");

    // A MON group under clos1 lists the task too; its CTRL_MON group stays clos1.
    const MonGroupRef g{"clos1", "c1"};
    r_->createMonGroup(g);
    r_->moveProcess(g, child.pid());
    EXPECT_EQ(sorted(r_->tasks(g)), threadsOf(child.pid()));
    EXPECT_EQ(r_->ctrlGroupOf(child.pid()), "clos1");

    EXPECT_EQ(kindOf([&] { (void)r_->ctrlGroupOf(impossiblePid()); }), ErrorKind::NoSuchProcess);
}

// Both ways of finding a task's groups: the per-task file (the kernel's
// cpu_resctrl_groups, which the emulator serves) and, without it, the tasks scan; the
// MON group of a thread is known only from the file.
TEST(ResctrlEmuTaskFile, TheGroupsOfATaskWithAndWithoutThePerTaskFile) {
    for (bool procFile : {true, false}) {
        SCOPED_TRACE(procFile ? "with cpu_resctrl_groups" : "without cpu_resctrl_groups");
        EmulatorMount emu(EmulatorOptions{.procFile = procFile});
        Resctrl r(emu.path());
        ChildProcess child(spawnSleeper(1));
        EXPECT_EQ(r.taskGroupsFile(child.pid()).has_value(), procFile);
        EXPECT_EQ(r.ctrlGroupOf(child.pid()), "");
        ASSERT_EQ(::mkdir((emu.path() + "/clos1").c_str(), 0755), 0) << std::strerror(errno);
        writeThreadsTo(emu.path() + "/clos1/tasks", child.pid());
        EXPECT_EQ(r.ctrlGroupOf(child.pid()), "clos1");
        const MonGroupRef g{"clos1", "c1"};
        r.createMonGroup(g);
        r.moveTask(g, child.pid()); // the leader only
        const std::vector<pid_t> threads = threadsOf(child.pid());
        const pid_t other = threads.front() == child.pid() ? threads.back() : threads.front();
        if (procFile) {
            EXPECT_EQ(r.monGroupOfTask(child.pid()), std::optional<std::string>("c1"));
            EXPECT_EQ(r.monGroupOfTask(other), std::optional<std::string>(""));
        } else {
            EXPECT_EQ(r.monGroupOfTask(child.pid()), std::nullopt);
        }
        EXPECT_EQ(r.ctrlGroupOf(child.pid()), "clos1");
        EXPECT_EQ(kindOf([&] { (void)r.ctrlGroupOf(impossiblePid()); }), ErrorKind::NoSuchProcess);
    }
}

TEST_F(ResctrlEmu, MoveIntoAnotherCtrlMonGroupFails) {
    start();
    ChildProcess child(spawnSleeper(1)); // in the root group
    ASSERT_EQ(::mkdir(at("clos1").c_str(), 0755), 0) << std::strerror(errno);
    const MonGroupRef g{"clos1", "c1"};
    r_->createMonGroup(g);
    std::string msg;
    ErrorKind kind = ErrorKind::InvalidArgument;
    try {
        r_->moveProcess(g, child.pid());
        FAIL() << "moved a task across CTRL_MON groups";
    } catch (const Error& e) {
        kind = e.kind();
        msg = e.what();
    }
    EXPECT_EQ(kind, ErrorKind::Failed);
    EXPECT_NE(msg.find("Can't move task to different control group"), std::string::npos) << msg;
    EXPECT_NE(msg.find(at("clos1/mon_groups/c1")), std::string::npos) << msg;
    EXPECT_TRUE(r_->tasks(g).empty());
}

TEST_F(ResctrlEmu, OutOfRmids) {
    start({.numRmids = 3}); // RMID 0 is root's
    r_->createMonGroup({"", "c1"});
    r_->createMonGroup({"", "c2"});
    std::string msg;
    try {
        r_->createMonGroup({"", "c3"});
        FAIL() << "created a group without a free RMID";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::OutOfRmids);
        msg = e.what();
    }
    EXPECT_NE(msg.find("Out of RMIDs"), std::string::npos) << msg;
    EXPECT_NE(msg.find(at("mon_groups/c3")), std::string::npos) << msg;
    EXPECT_FALSE(r_->monGroupExists({"", "c3"}));
}

TEST_F(ResctrlEmu, RmidsInLimboAreBusy) {
    start({.numRmids = 2, .limboMs = 60000});
    r_->createMonGroup({"", "c1"});
    r_->removeMonGroup({"", "c1"});
    EXPECT_EQ(kindOf([&] { r_->createMonGroup({"", "c2"}); }), ErrorKind::Busy);
    emu_->control("limbo-ms 0"); // the RMID leaves limbo: a retry succeeds
    r_->createMonGroup({"", "c2"});
    EXPECT_TRUE(r_->monGroupExists({"", "c2"}));
}

TEST_F(ResctrlEmu, InjectedMkdirFailureIsFailed) {
    start();
    emu_->control("fail-next-mkdir EIO");
    std::string msg = messageOf([&] { r_->createMonGroup({"", "c1"}); });
    EXPECT_NE(msg.find(at("mon_groups/c1")), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::strerror(EIO)), std::string::npos) << msg;
    EXPECT_FALSE(r_->monGroupExists({"", "c1"}));
    emu_->control("fail-next-mkdir EIO");
    EXPECT_EQ(kindOf([&] { r_->createMonGroup({"", "c1"}); }), ErrorKind::Failed);
    r_->createMonGroup({"", "c1"}); // one failure only
    EXPECT_TRUE(r_->monGroupExists({"", "c1"}));
}

TEST_F(ResctrlEmu, CountersLeaveOutWords) {
    start({.l3Domains = 2});
    ChildProcess child(spawnSleeper(1));
    const MonGroupRef g{"", "c1"};
    r_->createMonGroup(g);
    r_->moveProcess(g, child.pid());
    Counters c = r_->readCounters(g);
    ASSERT_EQ(c.size(), 2u);
    for (const char* d : {"mon_L3_00", "mon_L3_01"}) {
        ASSERT_TRUE(c.count(d)) << d;
        EXPECT_TRUE(c[d].count("llc_occupancy")) << d;
        EXPECT_TRUE(c[d].count("mbm_total_bytes")) << d;
        EXPECT_TRUE(c[d].count("mbm_local_bytes")) << d;
    }

    emu_->control("counter mon_groups/c1 llc_occupancy Unavailable");
    c = r_->readCounters(g);
    for (const char* d : {"mon_L3_00", "mon_L3_01"}) {
        ASSERT_TRUE(c.count(d)) << d;
        EXPECT_FALSE(c[d].count("llc_occupancy")) << d;
        EXPECT_TRUE(c[d].count("mbm_total_bytes")) << d;
    }
    emu_->control("counter mon_groups/c1 mbm_total_bytes Error");
    emu_->control("counter mon_groups/c1 mbm_local_bytes Unassigned");
    c = r_->readCounters(g); // every event is a word: no values, no failure
    EXPECT_TRUE(c.empty());

    emu_->control("counter mon_groups/c1 all clear");
    c = r_->readCounters(g);
    ASSERT_TRUE(c.count("mon_L3_00"));
    EXPECT_EQ(c["mon_L3_00"].size(), 3u);

    r_->removeMonGroup(g);
    EXPECT_EQ(kindOf([&] { (void)r_->readCounters(g); }), ErrorKind::NoSuchGroup);
}

TEST_F(ResctrlEmu, BulkReadsKeepFilesOpenAndSeeAGroupRemovedOrMadeAnew) {
    start({.l3Domains = 2});
    for (const char* g : {"c1", "c2"}) {
        r_->createMonGroup({"", g});
    }
    emu_->drive("mon_groups/c1", 0, 0, 1000);
    emu_->drive("mon_groups/c2", 0, 0, 2000);
    auto llc = [](const Counters& c) {
        return c.at("mon_L3_00").at("llc_occupancy") + c.at("mon_L3_01").at("llc_occupancy");
    };
    CountersPass pass;
    for (int round = 0; round < 2; ++round) {
        r_->beginCountersPass(pass);
        std::optional<Counters> c1 = r_->readCountersBulk(pass, "", "c1");
        std::optional<Counters> c2 = r_->readCountersBulk(pass, "", "c2");
        r_->endCountersPass(pass);
        ASSERT_TRUE(c1 && c2) << round;
        EXPECT_EQ(llc(*c1), 1000u) << round;
        EXPECT_EQ(llc(*c2), 2000u) << round;
        // 2 groups x 2 domains x 3 events, read with pread in the second round.
        EXPECT_EQ(pass.openFiles(), 12u) << round;
    }
    // c1 removed: its kept files read ENODEV, so it is gone; c2 made anew under the same
    // name reads the new group's numbers, not the old one's.
    r_->removeMonGroup({"", "c1"});
    r_->removeMonGroup({"", "c2"});
    r_->createMonGroup({"", "c2"});
    emu_->drive("mon_groups/c2", 0, 0, 30);
    emu_->counterWord("mon_groups/c2", "mbm_total_bytes", "Unavailable");
    r_->beginCountersPass(pass);
    EXPECT_FALSE(r_->readCountersBulk(pass, "", "c1"));
    std::optional<Counters> c2 = r_->readCountersBulk(pass, "", "c2");
    r_->endCountersPass(pass);
    ASSERT_TRUE(c2);
    EXPECT_EQ(llc(*c2), 30u);
    EXPECT_EQ(c2->at("mon_L3_00").count("mbm_total_bytes"), 0u);
    // c1's files were closed; c2's reopened.
    EXPECT_EQ(pass.openFiles(), 6u);
    // A group not read in a pass has its files closed at the end of it.
    r_->beginCountersPass(pass);
    r_->endCountersPass(pass);
    EXPECT_EQ(pass.openFiles(), 0u);
}

// From the second pass on, the kept files of every group are read in parallel when the
// pass begins: each group reads what a one-group read gives (every value held constant),
// in the same order of calls, words left out, a group removed left out and one made anew
// read anew.
TEST_F(ResctrlEmu, BulkReadsInParallelGiveWhatTheOneGroupReadGives) {
    start({.numRmids = 64, .l3Domains = 2});
    constexpr int kGroups = 40;
    auto name = [](int i) { return concat("g", i); };
    for (int i = 0; i < kGroups; ++i) {
        r_->createMonGroup({"", name(i)});
        // No tasks and no MBM rate: every value stays where it is.
        emu_->drive("mon_groups/" + name(i), 0, 0, static_cast<uint64_t>(1000 + i));
    }
    emu_->counterWord("mon_groups/g7", "mbm_local_bytes", "Unavailable");
    emu_->counterWord("mon_groups/g8", "all", "Error");
    CountersPass pass;
    auto readAll = [&] {
        std::vector<std::optional<Counters>> out;
        r_->beginCountersPass(pass);
        for (int i = 0; i < kGroups; ++i) {
            out.push_back(r_->readCountersBulk(pass, "", name(i)));
        }
        r_->endCountersPass(pass);
        return out;
    };
    std::vector<std::optional<Counters>> first = readAll();
    EXPECT_EQ(pass.prefetchedFiles(), 0u); // the first pass opens them
    EXPECT_EQ(pass.openFiles(), 6u * kGroups);

    r_->removeMonGroup({"", "g3"});
    r_->removeMonGroup({"", "g5"});
    r_->createMonGroup({"", "g5"});
    emu_->drive("mon_groups/g5", 0, 0, 55);
    std::vector<std::optional<Counters>> second = readAll();
    EXPECT_EQ(pass.prefetchedFiles(), 6u * kGroups);
    for (int i = 0; i < kGroups; ++i) {
        SCOPED_TRACE(name(i));
        if (i == 3) {
            EXPECT_FALSE(second[3]);
            continue;
        }
        ASSERT_TRUE(first[static_cast<std::size_t>(i)] && second[static_cast<std::size_t>(i)]);
        const Counters& c = *second[static_cast<std::size_t>(i)];
        EXPECT_EQ(c, r_->readCounters({"", name(i)}));
        if (i != 5) {
            EXPECT_EQ(c, *first[static_cast<std::size_t>(i)]);
        }
    }
    EXPECT_EQ(second[5]->at("mon_L3_00").at("llc_occupancy") +
                  second[5]->at("mon_L3_01").at("llc_occupancy"),
              55u);
    EXPECT_EQ(second[7]->at("mon_L3_00").count("mbm_local_bytes"), 0u);
    EXPECT_EQ(second[7]->at("mon_L3_00").count("mbm_total_bytes"), 1u);
    EXPECT_TRUE(second[8]->empty());
    // g3's files closed, g5's opened again by name.
    EXPECT_EQ(pass.openFiles(), 6u * (kGroups - 1));
    // A group read twice in one pass reads its files again the second time.
    r_->beginCountersPass(pass);
    emu_->drive("mon_groups/g0", 0, 0, 7);
    std::optional<Counters> once = r_->readCountersBulk(pass, "", "g0");
    std::optional<Counters> twice = r_->readCountersBulk(pass, "", "g0");
    r_->endCountersPass(pass);
    ASSERT_TRUE(once && twice);
    EXPECT_EQ(once->at("mon_L3_00").at("llc_occupancy") + once->at("mon_L3_01").at("llc_occupancy"),
              1000u);
    EXPECT_EQ(twice->at("mon_L3_00").at("llc_occupancy") +
                  twice->at("mon_L3_01").at("llc_occupancy"),
              7u);
}

TEST_F(ResctrlEmu, CountersWithSncSubDomains) {
    start({.l3Domains = 2, .snc = 2});
    const MonGroupRef g{"", "c1"};
    r_->createMonGroup(g);
    Counters c = r_->readCounters(g);
    std::vector<std::string> keys;
    for (const auto& [k, v] : c) {
        keys.push_back(k);
        EXPECT_TRUE(v.count("llc_occupancy")) << k;
    }
    EXPECT_EQ(keys, (std::vector<std::string>{
                        "mon_L3_00", "mon_L3_00/mon_sub_L3_00", "mon_L3_00/mon_sub_L3_01",
                        "mon_L3_01", "mon_L3_01/mon_sub_L3_02", "mon_L3_01/mon_sub_L3_03"}));
}

TEST_F(ResctrlEmu, ThreadThatVanishesMidMoveIsIgnored) {
    start();
    ChildProcess child(spawnSleeper(3));
    auto threads = threadsOf(child.pid());
    ASSERT_EQ(threads.size(), 4u);
    ASSERT_EQ(threads[0], child.pid());
    const MonGroupRef g{"", "c1"};
    r_->createMonGroup(g);
    // The second write (a non-leader thread) gets ESRCH, as for a thread that exited.
    emu_->control("fail-tasks-write-after 1 ESRCH");
    r_->moveProcess(g, child.pid());
    auto moved = sorted(r_->tasks(g));
    EXPECT_EQ(moved.size(), 3u);
    EXPECT_TRUE(std::binary_search(moved.begin(), moved.end(), child.pid()));
}

TEST_F(ResctrlEmu, TasksWriteErrorIsFailedAndNamesTheGroup) {
    start();
    ChildProcess child(spawnSleeper(1));
    const MonGroupRef g{"", "c1"};
    r_->createMonGroup(g);
    emu_->control("fail-tasks-write-after 0 EIO");
    std::string msg;
    try {
        r_->moveProcess(g, child.pid());
        FAIL() << "an EIO from tasks was ignored";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Failed);
        msg = e.what();
    }
    EXPECT_NE(msg.find(at("mon_groups/c1")), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::strerror(EIO)), std::string::npos) << msg;
    EXPECT_NE(msg.find("Injected failure"), std::string::npos) << msg; // last_cmd_status
}

TEST_F(ResctrlEmu, MoveIntoRemovedGroupIsNoSuchGroup) {
    start();
    ChildProcess child(spawnSleeper(0));
    const MonGroupRef g{"", "c1"};
    r_->createMonGroup(g);
    r_->removeMonGroup(g);
    EXPECT_EQ(kindOf([&] { r_->moveProcess(g, child.pid()); }), ErrorKind::NoSuchGroup);
}

TEST_F(ResctrlEmu, ListsManyGroupsCheaply) {
    constexpr int kGroups = 300;
    start({.numRmids = kGroups + 10, .closids = 4});
    ASSERT_EQ(::mkdir(at("clos1").c_str(), 0755), 0) << std::strerror(errno);
    std::vector<MonGroupRef> want;
    for (int i = 0; i < kGroups; ++i) {
        MonGroupRef g{i % 2 ? "clos1" : "", rdtmon::test::concat("g", i)};
        r_->createMonGroup(g);
        want.push_back(g);
    }
    auto t0 = std::chrono::steady_clock::now();
    auto got = r_->listMonGroups();
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    EXPECT_EQ(sorted(got), sorted(want));
    EXPECT_LT(ms, 2000) << "listing " << kGroups << " groups took " << ms << " ms";
}

} // namespace
} // namespace rdtmon::test
