#pragma once

// A suite's tally of what it tried ("[faults] mkdir errors: 2"), printed once after all of
// its tests, with a total: docs/reliability.md quotes these figures. Define one at namespace
// scope, so that it is registered before the tests run.

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <string>
#include <utility>

namespace rdtmon::test {

class Tally {
public:
    // Rows read "[prefix] what: n unit"; the last "[prefix] totalLabel: sum unit".
    Tally(std::string prefix, std::string totalLabel, std::string unit = "")
        : prefix_(std::move(prefix)), totalLabel_(std::move(totalLabel)), unit_(std::move(unit)) {
        // GoogleTest owns registered environments and deletes them at exit.
        ::testing::AddGlobalTestEnvironment(new Printer(*this));
    }
    Tally(const Tally&) = delete;
    Tally& operator=(const Tally&) = delete;

    int& operator[](const std::string& what) { return counts_[what]; }

private:
    class Printer : public ::testing::Environment {
    public:
        explicit Printer(const Tally& t) : t_(t) {}
        void TearDown() override { t_.print(); }

    private:
        const Tally& t_;
    };

    void print() const {
        const std::string suffix = unit_.empty() ? "" : " " + unit_;
        int total = 0;
        for (const auto& [what, n] : counts_) {
            std::printf("[%s] %s: %d%s\n", prefix_.c_str(), what.c_str(), n, suffix.c_str());
            total += n;
        }
        if (total > 0) {
            std::printf("[%s] %s: %d%s\n", prefix_.c_str(), totalLabel_.c_str(), total,
                        suffix.c_str());
        }
    }

    std::string prefix_;
    std::string totalLabel_;
    std::string unit_;
    std::map<std::string, int> counts_;
};

} // namespace rdtmon::test
