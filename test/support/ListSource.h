#pragma once

// A container runtime for the unit tests: a fixed list of container ids, or one that fails
// as an unreadable runtime root does.

#include "ContainerSource.h"
#include "Errors.h"

#include <set>
#include <string>
#include <utility>

namespace rdtmon::test {

class ListSource : public ContainerSource {
public:
    explicit ListSource(std::set<std::string> ids, bool fails = false)
        : ids_(std::move(ids)), fails_(fails) {}
    std::string describe() const override { return "fake source"; }
    std::set<std::string> list() const override {
        if (fails_) {
            throw Error(ErrorKind::Failed, "runtime root unreadable");
        }
        return ids_;
    }

private:
    std::set<std::string> ids_;
    bool fails_;
};

} // namespace rdtmon::test
