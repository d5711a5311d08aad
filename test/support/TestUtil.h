#pragma once

// Small file-system and error helpers shared by the unit and integration tests.

#include "Errors.h"

#include <gtest/gtest.h>

#include <chrono>
#include <dirent.h>
#include <exception>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <sys/types.h>
#include <thread>
#include <type_traits>

namespace rdtmon::test {

// A string made by appending each part, numbers through std::to_string. Use it instead of
// "literal" + std::to_string(n) where GCC 12 at -O3 reports a false -Wrestrict (GCC bug
// 105651) for the inlined operator+.
template <class... Parts> std::string concat(const Parts&... parts) {
    std::string out;
    auto add = [&out](const auto& p) {
        if constexpr (std::is_arithmetic_v<std::decay_t<decltype(p)>>) {
            out += std::to_string(p);
        } else {
            out += p;
        }
    };
    (add(parts), ...);
    return out;
}

// Heavy tests scale by this: rounds divided, deadlines multiplied, assertions unchanged.
// 1 for a plain build, more under the sanitizers (test/support/CMakeLists.txt sets it).
constexpr int kSlowdown = RDTMON_TEST_SLOWDOWN;
constexpr int scaledRounds(int rounds) {
    return rounds / kSlowdown > 0 ? rounds / kSlowdown : 1;
}
template <class Duration> constexpr Duration scaledDeadline(Duration d) {
    return d * kSlowdown;
}

// Polls pred every 20 ms until it holds or timeout has passed; whether it held. Tests wait
// for a condition with it rather than sleeping for a time that load can stretch.
template <class Pred> bool waitUntil(Pred pred, std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
        if (pred()) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return pred();
}

// The whole content of a file; empty if it cannot be opened.
inline std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Replaces a file's content; records a fatal failure (of this helper) if the write fails.
inline void writeFile(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    ASSERT_TRUE(out.good()) << path;
}

// Whether anything (a dangling symlink included) is at p.
inline bool exists(const std::string& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0;
}

// Whether p is a directory (a symlink to one is not).
inline bool isDir(const std::string& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The names in a directory, without "." and ".."; empty if it cannot be opened.
inline std::set<std::string> entries(const std::string& dir) {
    std::set<std::string> out;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (dirent* e = ::readdir(d)) {
            std::string n = e->d_name;
            if (n != "." && n != "..") {
                out.insert(n);
            }
        }
        ::closedir(d);
    }
    return out;
}

// The pids in a resctrl tasks file, one a line, blank lines skipped.
inline std::set<pid_t> tasksIn(const std::string& file) {
    std::set<pid_t> out;
    std::istringstream in(readFile(file));
    for (std::string line; std::getline(in, line);) {
        if (!line.empty()) {
            out.insert(static_cast<pid_t>(std::stol(line)));
        }
    }
    return out;
}

// The pids in a group directory's tasks file.
inline std::set<pid_t> tasksOf(const std::string& groupDir) {
    return tasksIn(groupDir + "/tasks");
}

// Runs f and returns the message of the Error it throws with the expected kind; records a
// failure if it throws nothing, another exception type, or another kind.
template <class F> inline std::string expectError(ErrorKind kind, F&& f) {
    try {
        f();
    } catch (const Error& e) {
        EXPECT_EQ(static_cast<int>(e.kind()), static_cast<int>(kind)) << e.what();
        return e.what();
    } catch (const std::exception& e) {
        ADD_FAILURE() << "wrong exception type: " << e.what();
        return {};
    }
    ADD_FAILURE() << "no exception thrown";
    return {};
}

} // namespace rdtmon::test
