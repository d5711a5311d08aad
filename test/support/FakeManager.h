#pragma once

// A stand-in for an older rdtmond on a private bus, for the hook's fallbacks: it owns
// org.rdtmon1 and serves /org/rdtmon1 with only the methods a test registers (sd-bus
// answers any other with UnknownMethod), and records each call it gets.

#include <memory>
#include <mutex>
#include <sdbus-c++/sdbus-c++.h>
#include <string>
#include <vector>

namespace rdtmon::test {

class FakeManager {
public:
    explicit FakeManager(const std::string& busAddress);
    ~FakeManager();
    FakeManager(const FakeManager&) = delete;
    FakeManager& operator=(const FakeManager&) = delete;

    // Register methods on this object (interface org.rdtmon1.Manager), then serve(). The
    // offer* ones register a method of an older rdtmond that records "Method id" (CreateGroup:
    // "CreateGroup id pid") and answers with a made-up group path.
    sdbus::IObject& object() { return *obj_; }
    void offerCreateGroup();
    void offerCreateContainerGroup();
    void offerRemoveGroup();
    void serve();
    // What a method's handler calls; calls() returns them in order.
    void record(std::string call);
    std::vector<std::string> calls();

private:
    std::unique_ptr<sdbus::IConnection> conn_;
    std::unique_ptr<sdbus::IObject> obj_;
    std::mutex mu_;
    std::vector<std::string> calls_;
};

} // namespace rdtmon::test
