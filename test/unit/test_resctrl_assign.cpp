// Assignable counters in the resctrl layer: the parsers of info/L3_MON's files and of
// mbm_L3_assignments, and Resctrl's reads and writes of them against resctrl-emu in each
// of its modes.
#include "EmulatorMount.h"
#include "Errors.h"
#include "Resctrl.h"
#include "ResctrlParsers.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace rdtmon::test {
namespace {

TEST(AssignParsers, ModesNameTheBracketedOneAndListEvery) {
    EXPECT_EQ(parseAssignModes("[mbm_event]\ndefault\n"),
              (AssignModes{"mbm_event", {"mbm_event", "default"}}));
    EXPECT_EQ(parseAssignModes("mbm_event\n[default]\n"),
              (AssignModes{"default", {"mbm_event", "default"}}));
    EXPECT_EQ(parseAssignModes("[default]\n"), (AssignModes{"default", {"default"}}));
    EXPECT_EQ(parseAssignModes("[mbm_event]"), (AssignModes{"mbm_event", {"mbm_event"}}));
    for (const char* bad : {"", "\n", "default\n", "[a]\n[b]\n", "[]\n", "[mbm event]\n",
                            "[mbm_event]\nde/fault\n", "[x\n"}) {
        EXPECT_EQ(parseAssignModes(bad), std::nullopt) << bad;
    }
}

TEST(AssignParsers, DomainCountsAreOneLineOfIdEqualsCount) {
    using M = std::map<unsigned, unsigned>;
    EXPECT_EQ(parseDomainCounts("0=32;1=32\n"), (M{{0, 32}, {1, 32}}));
    EXPECT_EQ(parseDomainCounts("0=30;1=0"), (M{{0, 30}, {1, 0}}));
    EXPECT_EQ(parseDomainCounts("7=1\n"), (M{{7, 1}}));
    for (const char* bad :
         {"", "0=1;0=2", "0=", "=1", "0=-1", "0=1;", "0=1\n1=2\n", "a=1", "0=99999999999"}) {
        EXPECT_EQ(parseDomainCounts(bad), std::nullopt) << bad;
    }
}

TEST(AssignParsers, AssignmentsAreAnEventPerLineWithAStatePerDomain) {
    const std::optional<Assignments> a =
        parseAssignments("mbm_total_bytes:0=e;1=_\nmbm_local_bytes:0=_;1=e\n");
    ASSERT_TRUE(a);
    EXPECT_EQ(*a, (Assignments{{"mbm_total_bytes", {{0, true}, {1, false}}},
                               {"mbm_local_bytes", {{0, false}, {1, true}}}}));
    EXPECT_EQ(parseAssignments(""), Assignments{});
    for (const char* bad : {"mbm_total_bytes\n", "mbm_total_bytes:0=x\n", ":0=e\n",
                            "mbm_total_bytes:0=e\nmbm_total_bytes:0=e\n", "a b:0=e\n",
                            "mbm_total_bytes:0=e;0=_\n", "mbm_total_bytes:0=ee\n"}) {
        EXPECT_EQ(parseAssignments(bad), std::nullopt) << bad;
    }
}

class ResctrlAssign : public ::testing::Test {
protected:
    void mount(const std::string& mode, unsigned counters = 4) {
        emu_ = std::make_unique<EmulatorMount>(
            EmulatorOptions{.mbmAssign = mode, .numMbmCntrs = counters});
        r_ = std::make_unique<Resctrl>(emu_->path());
    }
    MonGroupRef make(const std::string& name) {
        MonGroupRef g{"", name};
        r_->createMonGroup(g);
        return g;
    }
    std::unique_ptr<EmulatorMount> emu_;
    std::unique_ptr<Resctrl> r_;
};

TEST_F(ResctrlAssign, AnOlderKernelHasNoModeAndNoAssignments) {
    emu_ = std::make_unique<EmulatorMount>();
    r_ = std::make_unique<Resctrl>(emu_->path());
    const AssignInfo a = r_->assignInfo();
    EXPECT_EQ(a.mode, "");
    EXPECT_FALSE(a.mbmEvent());
    EXPECT_TRUE(a.counters.empty());
    const MonGroupRef g = make("g");
    expectError(ErrorKind::NotSupported, [&] { r_->assignments(g); });
    expectError(ErrorKind::NotSupported, [&] { r_->setAssignment(g, "mbm_total_bytes", 0, true); });
}

TEST_F(ResctrlAssign, IntelHasTheDefaultModeOnly) {
    mount("intel");
    const AssignInfo a = r_->assignInfo();
    EXPECT_EQ(a.mode, "default");
    EXPECT_FALSE(a.switchable);
    EXPECT_TRUE(a.counters.empty());
}

TEST_F(ResctrlAssign, MbmEventModeReadsCountersAndAssignsAndFrees) {
    mount("mbm_event", 4);
    AssignInfo a = r_->assignInfo();
    EXPECT_TRUE(a.mbmEvent());
    EXPECT_TRUE(a.switchable);
    EXPECT_EQ(a.counters, (std::map<unsigned, unsigned>{{0, 4}, {1, 4}}));
    EXPECT_EQ(a.available, (std::map<unsigned, unsigned>{{0, 2}, {1, 2}}));
    EXPECT_EQ(a.onMkdir, std::optional<bool>(true));

    const MonGroupRef g = make("g");
    const MonGroupRef h = make("h"); // none left for it
    EXPECT_EQ(r_->assignments(g)["mbm_total_bytes"], (std::map<unsigned, bool>{{0, 1}, {1, 1}}));
    EXPECT_EQ(r_->assignments(h)["mbm_local_bytes"], (std::map<unsigned, bool>{{0, 0}, {1, 0}}));
    // ENOSPC is OutOfCounters (Busy), and the message carries the kernel's reason.
    try {
        r_->setAssignment(h, "mbm_total_bytes", 1, true);
        ADD_FAILURE() << "no error";
    } catch (const OutOfCounters& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Busy);
        EXPECT_NE(std::string(e.what()).find("Failed to allocate counter for mbm_total_bytes "
                                             "in domain 1"),
                  std::string::npos)
            << e.what();
    }
    r_->setAssignment(g, "mbm_total_bytes", std::nullopt, false);
    r_->setAssignment(h, "mbm_total_bytes", 1, true);
    EXPECT_EQ(r_->assignments(h)["mbm_total_bytes"], (std::map<unsigned, bool>{{0, 0}, {1, 1}}));
    EXPECT_EQ(r_->assignInfo().available, (std::map<unsigned, unsigned>{{0, 1}, {1, 0}}));
    // What the kernel refuses otherwise is InvalidArgument; what is not a word never goes.
    expectError(ErrorKind::InvalidArgument,
                [&] { r_->setAssignment(h, "llc_occupancy", 0, true); });
    expectError(ErrorKind::InvalidArgument,
                [&] { r_->setAssignment(h, "mbm_total_bytes", 9, true); });
    expectError(ErrorKind::InvalidArgument,
                [&] { r_->setAssignment(h, "mbm_total_bytes:0=e\nx", 0, true); });
    expectError(ErrorKind::NoSuchGroup, [&] {
        r_->setAssignment(MonGroupRef{"", "gone"}, "mbm_total_bytes", 0, true);
    });
}

TEST_F(ResctrlAssign, ATurnTakesAndFreesEveryCounterInOneWriteAndReadsOnlyItsFiles) {
    mount("mbm_event", 4); // the default group holds 2 per domain, g the other 2
    const MonGroupRef g = make("g");
    const MonGroupRef h = make("h");
    const std::vector<std::string> both = {"mbm_total_bytes", "mbm_local_bytes"};
    TurnFiles th = r_->openTurn(h, both, {0, 1});
    ASSERT_TRUE(th.isOpen());
    EXPECT_TRUE(r_->readTurn(th).empty()) << "Unassigned everywhere: no number";

    // None free: refused at the first domain, nothing taken.
    EXPECT_THROW(r_->assignTurn(th, true), OutOfCounters);
    EXPECT_EQ(r_->assignments(h)["mbm_total_bytes"], (std::map<unsigned, bool>{{0, 0}, {1, 0}}));
    // One free per domain: the first line takes them, the second is refused, and what the
    // first took stays taken (the kernel stops at the first error) until freed.
    r_->setAssignment(g, "mbm_total_bytes", std::nullopt, false);
    EXPECT_THROW(r_->assignTurn(th, true), OutOfCounters);
    EXPECT_EQ(r_->assignments(h)["mbm_total_bytes"], (std::map<unsigned, bool>{{0, 1}, {1, 1}}));
    EXPECT_EQ(r_->assignments(h)["mbm_local_bytes"], (std::map<unsigned, bool>{{0, 0}, {1, 0}}));
    r_->assignTurn(th, false);
    EXPECT_EQ(r_->assignments(h)["mbm_total_bytes"], (std::map<unsigned, bool>{{0, 0}, {1, 0}}));
    EXPECT_EQ(r_->assignInfo().available, (std::map<unsigned, unsigned>{{0, 1}, {1, 1}}));

    // g's local counters, read through its turn's files only: local on both domains, never
    // total (g's total reads Unassigned now) nor llc_occupancy.
    emu_->drive("mon_groups/g", 100'000'000, 50'000'000, 1 << 20);
    TurnFiles tg = r_->openTurn(g, {"mbm_local_bytes"}, {0, 1});
    const Counters a = r_->readTurn(tg);
    EXPECT_EQ(a.size(), 2u);
    for (const char* d : {"mon_L3_00", "mon_L3_01"}) {
        ASSERT_EQ(a.count(d), 1u) << d;
        EXPECT_EQ(a.at(d).size(), 1u) << d;
        EXPECT_EQ(a.at(d).count("mbm_local_bytes"), 1u) << d;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const Counters b = r_->readTurn(tg); // the same fds, read again from offset 0
    EXPECT_GT(b.at("mon_L3_00").at("mbm_local_bytes"), a.at("mon_L3_00").at("mbm_local_bytes"));

    // Gone: its kept files say so, and so does opening.
    r_->removeMonGroup(g);
    expectError(ErrorKind::NoSuchGroup, [&] { r_->readTurn(tg); });
    expectError(ErrorKind::NoSuchGroup, [&] { r_->openTurn(g, both, {0, 1}); });
    expectError(ErrorKind::InvalidArgument, [&] { r_->openTurn(h, {"a b"}, {0}); });
}

TEST_F(ResctrlAssign, DefaultModeRefusesAssignmentsAsInvalid) {
    mount("default", 4);
    const AssignInfo a = r_->assignInfo();
    EXPECT_EQ(a.mode, "default");
    EXPECT_TRUE(a.switchable);
    EXPECT_EQ(a.counters, (std::map<unsigned, unsigned>{{0, 4}, {1, 4}}));
    EXPECT_TRUE(a.available.empty());
    EXPECT_FALSE(a.onMkdir.has_value());
    const MonGroupRef g = make("g");
    expectError(ErrorKind::InvalidArgument, [&] { r_->assignments(g); });
    expectError(ErrorKind::InvalidArgument,
                [&] { r_->setAssignment(g, "mbm_total_bytes", 0, true); });
}

} // namespace
} // namespace rdtmon::test
