#include "FakeManager.h"

#include <map>

namespace rdtmon::test {

FakeManager::FakeManager(const std::string& busAddress)
    : conn_(sdbus::createSessionBusConnectionWithAddress(busAddress)) {
    conn_->requestName("org.rdtmon1");
    obj_ = sdbus::createObject(*conn_, "/org/rdtmon1");
}

FakeManager::~FakeManager() {
    obj_.reset();
    conn_->leaveEventLoop();
}

namespace {
constexpr const char* kManager = "org.rdtmon1.Manager";
}

void FakeManager::offerCreateGroup() {
    obj_->registerMethod("CreateGroup")
        .onInterface(kManager)
        .implementedAs([this](const std::string& id, uint32_t pid) {
            record("CreateGroup " + id + " " + std::to_string(pid));
            return sdbus::ObjectPath("/org/rdtmon1/group/x");
        });
}

void FakeManager::offerCreateContainerGroup() {
    obj_->registerMethod("CreateContainerGroup")
        .onInterface(kManager)
        .implementedAs([this](const std::string& id, const sdbus::UnixFd&,
                              const std::map<std::string, std::string>&) {
            record("CreateContainerGroup " + id);
            return sdbus::ObjectPath("/org/rdtmon1/group/x");
        });
}

void FakeManager::offerRemoveGroup() {
    obj_->registerMethod("RemoveGroup")
        .onInterface(kManager)
        .implementedAs([this](const std::string& id) { record("RemoveGroup " + id); });
}

void FakeManager::serve() {
    obj_->finishRegistration();
    conn_->enterEventLoopAsync();
}

void FakeManager::record(std::string call) {
    std::lock_guard lk(mu_);
    calls_.push_back(std::move(call));
}

std::vector<std::string> FakeManager::calls() {
    std::lock_guard lk(mu_);
    return calls_;
}

} // namespace rdtmon::test
