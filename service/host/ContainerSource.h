#pragma once

#include "Config.h"

#include <chrono>
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
};

// Glob patterns of OCI state roots; each subdirectory of a root is a container id.
class StateDirSource : public ContainerSource {
public:
    explicit StateDirSource(std::vector<std::string> patterns);
    std::string describe() const override;
    std::set<std::string> list() const override;

private:
    std::vector<std::string> patterns_;
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
