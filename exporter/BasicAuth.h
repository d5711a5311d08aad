#pragma once

// HTTP basic authentication against bcrypt hashes, as Prometheus' exporter-toolkit checks
// its basic_auth_users. A bcrypt check costs tens of milliseconds at cost 10 by design, and
// Prometheus sends the same credentials with every scrape: a successful check is
// remembered, keyed on a SHA-256 of user, stored hash and password (never the password
// itself), so that a scrape stays cheap. Failures are never remembered. Bus-free and
// thread-safe: every listener's threads share one instance.

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

namespace rdtmon::exporter {

class BasicAuth {
public:
    enum class Result { Ok, UnknownUser, WrongPassword };
    // At most this many successful checks are remembered (only configured users can have
    // one, so it is never reached but by many password variants of one user).
    static constexpr std::size_t kMaxRemembered = 256;

    // users: name -> bcrypt hash ($2a$, $2b$ or $2y$). Throws std::invalid_argument naming
    // the user whose entry is not one, or whose name has a colon (basic auth cannot carry
    // it).
    explicit BasicAuth(std::map<std::string, std::string> users);

    // The same work whether the user exists or not: an unknown user is checked against a
    // configured hash and refused, so the time does not tell which part was wrong. The
    // stored hash and the result are compared in constant time.
    Result check(std::string_view user, std::string_view password);

    // bcrypt computations so far (tests check that the cache spares them).
    uint64_t bcryptRuns() const { return bcryptRuns_; }

    // Whether hash has the form of a bcrypt hash: "$2[aby]$NN$" and 53 characters of
    // bcrypt's base64.
    static bool isBcryptHash(std::string_view hash);

private:
    bool bcryptMatches(std::string_view password, const std::string& hash);

    std::map<std::string, std::string, std::less<>> users_;
    std::string decoy_; // the hash an unknown user is checked against
    std::mutex mutex_;
    std::set<std::string> remembered_; // SHA-256 digests of successful checks
    std::atomic<uint64_t> bcryptRuns_{0};
};

} // namespace rdtmon::exporter
