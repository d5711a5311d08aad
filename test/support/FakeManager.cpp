#include "FakeManager.h"

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
