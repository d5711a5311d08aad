#pragma once

#include "Config.h"
#include "RuntimeState.h"

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace rdtmon {

// A source of the ids of the containers the runtime knows about (running or not yet deleted).
class ContainerSource {
public:
    virtual ~ContainerSource() = default;
    virtual std::string describe() const = 0;
    // Throws Error(Failed) when the list cannot be trusted (unreadable root, command failed,
    // timed out or printed something that is not an id). A root that does not exist is empty.
    virtual std::set<std::string> list() const = 0;
    // What the runtime recorded about each of ids that this source lists and can describe
    // (init pid and start time, cgroup, annotations), for adoption; an id it lists but cannot
    // describe gets the reason in whyNot. A source that gives only ids, or whose adoption is
    // switched off, describes none.
    virtual std::vector<RuntimeContainer>
    inspect(const std::set<std::string>& ids, std::map<std::string, std::string>& whyNot) const {
        (void)ids;
        (void)whyNot;
        return {};
    }
};

// Glob patterns of OCI state roots; each subdirectory of a root is a container id, whose
// state file (runc's state.json, crun's status) describes it when adopt is on.
class StateDirSource : public ContainerSource {
public:
    explicit StateDirSource(std::vector<std::string> patterns, bool adopt = true);
    std::string describe() const override;
    std::set<std::string> list() const override;
    std::vector<RuntimeContainer>
    inspect(const std::set<std::string>& ids,
            std::map<std::string, std::string>& whyNot) const override;

private:
    struct Root {
        std::string path;
        bool skipNonDir = false; // a glob's match that is a file is skipped, not an error
    };
    std::vector<Root> roots() const; // the patterns expanded
    std::vector<std::string> patterns_;
    bool adopt_ = true;
};

// An argv run without a shell, with a timeout, printing one id per line.
class CommandSource : public ContainerSource {
public:
    CommandSource(std::vector<std::string> argv, std::chrono::milliseconds timeout);
    std::string describe() const override;
    std::set<std::string> list() const override;

private:
    std::vector<std::string> argv_;
    std::chrono::milliseconds timeout_;
};

std::vector<std::unique_ptr<ContainerSource>> makeSources(const std::vector<SourceConfig>& cfg);

} // namespace rdtmon
