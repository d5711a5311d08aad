// BasicAuth: basic_auth_users' bcrypt hashes checked with libxcrypt, the same work for an
// unknown user as for a known one, and a successful check remembered (a failure never) so
// that Prometheus' scrapes, which send the same credentials every time, stay cheap.

#include "BasicAuth.h"
#include "WebTestFiles.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace rdtmon::exporter;
using rdtmon::test::bcryptHash;
using Result = BasicAuth::Result;
using Users = std::map<std::string, std::string>;

namespace {

TEST(BasicAuth, AcceptsTheRightPasswordAndRefusesOthers) {
    BasicAuth auth(Users{{"alice", bcryptHash("s3cret")}});
    EXPECT_EQ(auth.check("alice", "s3cret"), Result::Ok);
    EXPECT_EQ(auth.check("alice", "s3cre"), Result::WrongPassword);
    EXPECT_EQ(auth.check("alice", "s3cret "), Result::WrongPassword);
    EXPECT_EQ(auth.check("alice", ""), Result::WrongPassword);
    EXPECT_EQ(auth.check("Alice", "s3cret"), Result::UnknownUser);
    EXPECT_EQ(auth.check("", "s3cret"), Result::UnknownUser);
}

TEST(BasicAuth, TakesHashesOfEveryBcryptVariant) {
    const std::string b = bcryptHash("pw-b", 4, "$2b$");
    const std::string y = bcryptHash("pw-y", 4, "$2y$");
    ASSERT_EQ(y.substr(0, 7), "$2y$04$");
    ASSERT_EQ(b.substr(0, 7), "$2b$04$");
    EXPECT_TRUE(BasicAuth::isBcryptHash(b));
    EXPECT_TRUE(BasicAuth::isBcryptHash(y));
    BasicAuth auth(Users{{"b", b}, {"y", y}});
    EXPECT_EQ(auth.check("b", "pw-b"), Result::Ok);
    EXPECT_EQ(auth.check("y", "pw-y"), Result::Ok);
    EXPECT_EQ(auth.check("y", "pw-b"), Result::WrongPassword);
    // htpasswd writes $2y$, Python's and others' $2b$: the same algorithm, the same result.
    std::string relabelled = b;
    relabelled[2] = 'y';
    BasicAuth again(Users{{"b", relabelled}});
    EXPECT_EQ(again.check("b", "pw-b"), Result::Ok);
}

TEST(BasicAuth, AnUnknownUserCostsABcryptCheckToo) {
    BasicAuth auth(Users{{"alice", bcryptHash("s3cret")}});
    EXPECT_EQ(auth.check("mallory", "s3cret"), Result::UnknownUser);
    EXPECT_EQ(auth.bcryptRuns(), 1u);
    EXPECT_EQ(auth.check("alice", "wrong"), Result::WrongPassword);
    EXPECT_EQ(auth.bcryptRuns(), 2u);
}

TEST(BasicAuth, ASuccessIsRememberedAFailureNever) {
    BasicAuth auth(Users{{"alice", bcryptHash("s3cret")}, {"bob", bcryptHash("hunter2")}});
    EXPECT_EQ(auth.check("alice", "s3cret"), Result::Ok);
    EXPECT_EQ(auth.bcryptRuns(), 1u);
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(auth.check("alice", "s3cret"), Result::Ok);
    }
    EXPECT_EQ(auth.bcryptRuns(), 1u) << "the repeated scrapes were not remembered";
    // What is remembered is that user with that password only.
    EXPECT_EQ(auth.check("alice", "s3cret2"), Result::WrongPassword);
    EXPECT_EQ(auth.check("alice", "s3cret2"), Result::WrongPassword);
    EXPECT_EQ(auth.check("bob", "s3cret"), Result::WrongPassword);
    EXPECT_EQ(auth.bcryptRuns(), 4u);
    EXPECT_EQ(auth.check("bob", "hunter2"), Result::Ok);
    EXPECT_EQ(auth.check("bob", "hunter2"), Result::Ok);
    EXPECT_EQ(auth.bcryptRuns(), 5u);
}

TEST(BasicAuth, ManyConnectionsAtOnce) {
    BasicAuth auth(Users{{"alice", bcryptHash("s3cret")}});
    std::atomic<int> ok{0};
    std::atomic<int> refused{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 10; ++i) {
                (auth.check("alice", "s3cret") == Result::Ok ? ok : refused)++;
                if (t % 2 == 0 && auth.check("alice", "nope") == Result::WrongPassword) {
                    ++refused;
                }
            }
        });
    }
    for (std::thread& th : threads) {
        th.join();
    }
    EXPECT_EQ(ok.load(), 80);
    EXPECT_EQ(refused.load(), 40);
    // Each wrong one is computed; the right one at most once per thread that raced for it.
    EXPECT_LE(auth.bcryptRuns(), 40u + 8u);
}

TEST(BasicAuth, RefusesWhatIsNotABcryptHashOrAUsableName) {
    EXPECT_THROW(BasicAuth(Users{{"alice", "s3cret"}}), std::invalid_argument);
    EXPECT_THROW(BasicAuth(Users{{"alice", "$6$salt$" + std::string(86, 'a')}}),
                 std::invalid_argument);
    EXPECT_THROW(BasicAuth(Users{{"a:b", bcryptHash("x")}}), std::invalid_argument);
    std::string badCost = bcryptHash("x");
    badCost.replace(4, 2, "03");
    EXPECT_FALSE(BasicAuth::isBcryptHash(badCost));
    std::string badChar = bcryptHash("x");
    badChar[40] = '!';
    EXPECT_FALSE(BasicAuth::isBcryptHash(badChar));
    EXPECT_FALSE(BasicAuth::isBcryptHash(bcryptHash("x").substr(0, 59)));
}

TEST(BasicAuth, WithoutUsersNobodyGetsIn) {
    BasicAuth auth(Users{});
    EXPECT_EQ(auth.check("alice", "x"), Result::UnknownUser);
}

} // namespace
