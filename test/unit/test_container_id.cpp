#include "ContainerId.h"
#include "Errors.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace rdtmon {
namespace {

using namespace std::string_literals;

void expectInvalid(std::string_view id) {
    EXPECT_FALSE(isValidContainerId(id)) << "id \"" << id << "\"";
    try {
        validateContainerId(id);
        ADD_FAILURE() << "validateContainerId accepted \"" << id << "\"";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
        EXPECT_NE(std::string(e.what()).find("container id"), std::string::npos) << e.what();
    }
}

void expectValid(std::string_view id) {
    EXPECT_TRUE(isValidContainerId(id)) << "id \"" << id << "\"";
    EXPECT_NO_THROW(validateContainerId(id)) << "id \"" << id << "\"";
}

TEST(ContainerId, AcceptsTheCharset) {
    expectValid("a");
    expectValid("Z");
    expectValid("0");
    expectValid("_");
    expectValid("-");
    expectValid("abc-DEF_123.xyz");
    expectValid("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    expectValid("...");
    expectValid(".hidden");
    expectValid("-leading-dash"); // valid per the charset
    expectValid("info2");
    expectValid("mon_groups_x");
    expectValid("INFO");
}

TEST(ContainerId, LengthLimits) {
    expectValid(std::string(1, 'x'));
    expectValid(std::string(128, 'x'));
    expectInvalid(std::string(129, 'x'));
    expectInvalid(std::string(4096, 'a'));
    expectInvalid("");
}

TEST(ContainerId, RejectsDotNames) {
    expectInvalid(".");
    expectInvalid("..");
}

TEST(ContainerId, RejectsResctrlNames) {
    expectInvalid("info");
    expectInvalid("mon_groups");
    expectInvalid("mon_data");
}

TEST(ContainerId, RejectsCharactersOutsideTheCharset) {
    expectInvalid("a/b");
    expectInvalid("/");
    expectInvalid("../x");
    expectInvalid("a\nb");
    expectInvalid("abc\n");
    expectInvalid("a b");
    expectInvalid(" ");
    expectInvalid("a\tb");
    expectInvalid("a:b");
    expectInvalid("a*b");
    expectInvalid("a\\b");
    expectInvalid("caf\xc3\xa9");
    expectInvalid("\x7f");
}

TEST(ContainerId, RejectsNulInsideStringView) {
    std::string s = "abc\0def"s;
    ASSERT_EQ(s.size(), 7u);
    expectInvalid(std::string_view(s));
    expectInvalid(std::string_view("\0", 1));
    // "info" followed by NUL is not the reserved name, but NUL is not allowed anyway.
    expectInvalid(std::string_view("info\0", 5));
}

TEST(ContainerId, SelftestIdsAreValidIdsWithTheReservedPrefix) {
    EXPECT_EQ(kSelftestIdPrefix, "rdtmon-selftest-");
    EXPECT_TRUE(isSelftestId("rdtmon-selftest-12345-1"));
    EXPECT_TRUE(isSelftestId("rdtmon-selftest-x"));
    EXPECT_FALSE(isSelftestId("rdtmon-selftest")); // no dash: not the prefix
    EXPECT_FALSE(isSelftestId("rdtmon-selftes-1"));
    EXPECT_FALSE(isSelftestId("RDTMON-SELFTEST-1"));
    EXPECT_FALSE(isSelftestId("x-rdtmon-selftest-1"));
    EXPECT_FALSE(isSelftestId("c1"));
    EXPECT_FALSE(isSelftestId(""));
    // The prefix does not make an invalid id one.
    EXPECT_FALSE(isSelftestId("rdtmon-selftest-a/b"));
    EXPECT_FALSE(isSelftestId("rdtmon-selftest-\n"));
    EXPECT_FALSE(isSelftestId("rdtmon-selftest-"s + std::string(113, 'x'))); // 129 characters
    EXPECT_TRUE(isSelftestId("rdtmon-selftest-"s + std::string(112, 'x')));
}

TEST(ContainerId, MessageNamesTheProblem) {
    try {
        validateContainerId(std::string(129, 'x'));
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("129"), std::string::npos) << e.what();
    }
    try {
        validateContainerId("a\nb");
        FAIL();
    } catch (const Error& e) {
        std::string m = e.what();
        // The message must stay on one line even though the id has a newline.
        EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    }
}

} // namespace
} // namespace rdtmon
