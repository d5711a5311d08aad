#include "BasicAuth.h"

#include <crypt.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <utility>

namespace rdtmon::exporter {

namespace {

bool constantTimeEqual(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false; // the sizes are not secret: every bcrypt hash has 60 characters
    }
    unsigned char diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    }
    return diff == 0;
}

// The cache key: lengths first, so that no two (user, hash, password) triples give the same
// input.
std::string digestOf(std::string_view user, std::string_view hash, std::string_view password) {
    std::string input;
    for (std::string_view part : {user, hash, password}) {
        const uint64_t n = part.size();
        input.append(reinterpret_cast<const char*>(&n), sizeof n);
        input.append(part);
    }
    std::array<unsigned char, 32> out{};
    const int r = gnutls_hash_fast(GNUTLS_DIG_SHA256, input.data(), input.size(), out.data());
    std::fill(input.begin(), input.end(), '\0');
    if (r < 0) {
        throw std::runtime_error(std::string("SHA-256: ") + gnutls_strerror(r));
    }
    return std::string(reinterpret_cast<const char*>(out.data()), out.size());
}

} // namespace

bool BasicAuth::isBcryptHash(std::string_view hash) {
    // "$2b$10$" + 22 characters of salt + 31 of hash.
    if (hash.size() != 60 || hash.substr(0, 2) != "$2" ||
        (hash[2] != 'a' && hash[2] != 'b' && hash[2] != 'y') || hash[3] != '$' || hash[6] != '$') {
        return false;
    }
    const int cost = (hash[4] - '0') * 10 + (hash[5] - '0');
    if (hash[4] < '0' || hash[4] > '9' || hash[5] < '0' || hash[5] > '9' || cost < 4 || cost > 31) {
        return false;
    }
    return std::all_of(hash.begin() + 7, hash.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '/';
    });
}

BasicAuth::BasicAuth(std::map<std::string, std::string> users) {
    for (auto& [name, hash] : users) {
        if (name.find(':') != std::string::npos) {
            throw std::invalid_argument("basic_auth_users: the user name \"" + name +
                                        "\" has a colon, which basic auth cannot carry");
        }
        if (!isBcryptHash(hash)) {
            throw std::invalid_argument("basic_auth_users: the password of user \"" + name +
                                        "\" is not a bcrypt hash ($2y$, $2b$ or $2a$ and 53 "
                                        "characters; make one with htpasswd -nBC 10 " +
                                        name + ")");
        }
        // The costliest hash, so that an unknown user never answers faster than a known one.
        if (decoy_.empty() || hash.substr(4, 2) > decoy_.substr(4, 2)) {
            decoy_ = hash;
        }
        users_.emplace(name, std::move(hash));
    }
}

bool BasicAuth::bcryptMatches(std::string_view password, const std::string& hash) {
    ++bcryptRuns_;
    // crypt_data is 32 KiB: on the heap, not on a connection thread's stack.
    auto data = std::make_unique<crypt_data>();
    std::string pw(password); // crypt_rn wants a NUL-terminated phrase
    const char* out = crypt_rn(pw.c_str(), hash.c_str(), data.get(), sizeof *data);
    const bool ok = out != nullptr && constantTimeEqual(out, hash);
    // The phrase and its intermediate state do not outlive the check.
    explicit_bzero(data.get(), sizeof *data);
    explicit_bzero(pw.data(), pw.size());
    return ok;
}

BasicAuth::Result BasicAuth::check(std::string_view user, std::string_view password) {
    const auto it = users_.find(user);
    if (it == users_.end()) {
        if (!decoy_.empty()) {
            (void)bcryptMatches(password, decoy_);
        }
        return Result::UnknownUser;
    }
    const std::string key = digestOf(user, it->second, password);
    {
        std::lock_guard lock(mutex_);
        if (remembered_.count(key) != 0) {
            return Result::Ok;
        }
    }
    // Outside the lock: checks of several connections run side by side.
    if (!bcryptMatches(password, it->second)) {
        return Result::WrongPassword;
    }
    std::lock_guard lock(mutex_);
    if (remembered_.size() >= kMaxRemembered) {
        remembered_.clear();
    }
    remembered_.insert(key);
    return Result::Ok;
}

} // namespace rdtmon::exporter
