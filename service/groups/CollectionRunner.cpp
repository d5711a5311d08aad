#include "CollectionRunner.h"

#include "Errors.h"
#include "Log.h"

#include <cerrno>
#include <cstdint>
#include <exception>
#include <sys/eventfd.h>
#include <unistd.h>

namespace rdtmon {

CollectionRunner::CollectionRunner(GroupManager& mgr, GarbageCollector& gc)
    : mgr_(mgr), gc_(gc), done_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (!done_) {
        throwErrno(errno, "eventfd");
    }
}

CollectionRunner::~CollectionRunner() {
    if (worker_.joinable()) {
        worker_.join();
    }
}

void CollectionRunner::request(Reply reply) {
    next_.push_back(std::move(reply));
    if (!running()) {
        startNext();
    }
}

void CollectionRunner::finish() {
    uint64_t v = 0;
    while (::read(done_.get(), &v, sizeof v) < 0 && errno == EINTR) {
    }
    if (!worker_.joinable()) {
        return;
    }
    worker_.join();
    std::vector<Reply> replies = std::move(current_);
    current_.clear();
    unsigned removed = 0;
    std::optional<std::string> error;
    if (workerError_) {
        error = *workerError_;
        log::error("garbage collection failed: " + *error);
    } else {
        try {
            removed = mgr_.applyCollection(snapshot_, decision_);
            if (removed > 0 || !decision_.stale.empty()) {
                log::info("garbage collection removed " + std::to_string(removed) + " group(s); " +
                          std::to_string(decision_.liveContainers) + " container(s) listed");
            }
        } catch (const std::exception& e) {
            error = e.what();
            log::error(std::string("garbage collection failed: ") + e.what());
        }
    }
    for (Reply& r : replies) {
        if (r) {
            r(removed, error ? &*error : nullptr);
        }
    }
    if (!next_.empty()) {
        startNext();
    }
}

void CollectionRunner::startNext() {
    current_ = std::move(next_);
    next_.clear();
    workerError_.reset();
    // Touch resctrl first: this is also how a service whose resctrl went away notices
    // that it is back.
    mgr_.resctrl();
    snapshot_ = mgr_.collectionSnapshot();
    const uint64_t now = mgr_.now();
    worker_ = std::thread([this, now] {
        try {
            decision_ = gc_.decide(snapshot_, now);
        } catch (const std::exception& e) {
            workerError_ = e.what();
        } catch (...) {
            workerError_ = "unexpected error";
        }
        uint64_t one = 1;
        (void)!::write(done_.get(), &one, sizeof one);
    });
}

} // namespace rdtmon
