#include "CountersReader.h"

#include "Clock.h"
#include "Log.h"

#include <cerrno>
#include <exception>
#include <sys/eventfd.h>
#include <unistd.h>

namespace rdtmon {

CountersReader::CountersReader(GroupManager& mgr, std::chrono::milliseconds minInterval)
    : mgr_(mgr), minIntervalUsec_(static_cast<uint64_t>(minInterval.count()) * 1000),
      done_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (!done_) {
        throwErrno(errno, "eventfd");
    }
}

CountersReader::~CountersReader() {
    if (worker_.joinable()) {
        worker_.join();
    }
}

void CountersReader::request(Reply reply) {
    nextFull_.push_back(std::move(reply));
    runDue();
}

void CountersReader::requestGroup(const std::string& id, Reply reply) {
    nextGroup_.push_back(std::move(reply));
    nextIds_.insert(id);
    runDue();
}

bool CountersReader::fullDue() const {
    return lastFullStartUsec_ == 0 || monotonicUsec() >= lastFullStartUsec_ + minIntervalUsec_;
}

int CountersReader::timeoutMs() const {
    if (running()) {
        return -1;
    }
    if (!nextGroup_.empty() || (!nextFull_.empty() && fullDue())) {
        return 0;
    }
    if (nextFull_.empty()) {
        return -1;
    }
    const uint64_t due = lastFullStartUsec_ + minIntervalUsec_;
    const uint64_t now = monotonicUsec();
    return due <= now ? 0 : static_cast<int>((due - now + 999) / 1000);
}

void CountersReader::runDue() {
    if (running()) {
        return;
    }
    if (!nextFull_.empty() && fullDue()) {
        start(true);
    } else if (!nextGroup_.empty()) {
        start(false);
    }
}

void CountersReader::answer(std::vector<Reply>& replies, const Outcome& o) {
    std::vector<Reply> now = std::move(replies);
    replies.clear();
    for (Reply& r : now) {
        try {
            r(o);
        } catch (const std::exception& e) {
            log::warning(std::string("counters reply: ") + e.what());
        }
    }
}

void CountersReader::finish() {
    uint64_t v = 0;
    while (::read(done_.get(), &v, sizeof v) < 0 && errno == EINTR) {
    }
    if (!worker_.joinable()) {
        return;
    }
    worker_.join();
    resctrl_.reset();
    ++passes_;
    Outcome o;
    if (error_) {
        o.error = error_;
        if (runningFull_) {
            pass_.reset(); // its kept files may belong to a tree that went away
            passFor_ = nullptr;
        }
    } else {
        // Mutations stay on the loop: a group the read could not find is dropped here when
        // its directory is gone.
        mgr_.settleUnread(unread_);
        o.counters = std::make_shared<const AllCounters>(std::move(result_));
        o.groupErrors = std::move(groupErrors_);
    }
    answer(current_, o);
    runDue();
}

void CountersReader::start(bool full) {
    current_ = std::move(nextGroup_);
    nextGroup_.clear();
    std::set<std::string> ids = std::move(nextIds_);
    nextIds_.clear();
    if (full) {
        for (Reply& r : nextFull_) {
            current_.push_back(std::move(r));
        }
        nextFull_.clear();
        lastFullStartUsec_ = monotonicUsec();
    }
    runningFull_ = full;
    resctrl_ = mgr_.sharedResctrl();
    if (!resctrl_) {
        Outcome o;
        o.error = Error(ErrorKind::NotSupported, "no resctrl with L3 monitoring");
        answer(current_, o);
        return;
    }
    if (full && resctrl_.get() != passFor_) {
        pass_ = std::make_unique<CountersPass>();
        passFor_ = resctrl_.get();
    }
    snapshot_.clear();
    if (full) {
        snapshot_ = mgr_.groups();
    } else {
        for (const std::string& id : ids) {
            if (std::optional<GroupRecord> rec = mgr_.find(id)) {
                snapshot_.push_back(*rec);
            }
        }
    }
    result_ = AllCounters{};
    unread_.clear();
    error_.reset();
    groupErrors_.clear();
    worker_ = std::thread([this, full] {
        try {
            if (full) {
                result_ = readAllCounters(*resctrl_, *pass_, snapshot_, unread_);
            } else {
                result_.monotonicUsec = monotonicUsec();
                for (const GroupRecord& rec : snapshot_) {
                    try {
                        result_.groups.push_back(
                            GroupCounters{rec.id, rec.labels, resctrl_->readCounters(refOf(rec))});
                    } catch (const Error& e) {
                        if (e.kind() == ErrorKind::NoSuchGroup) {
                            unread_.push_back(rec);
                        } else {
                            groupErrors_.emplace(rec.id, e);
                        }
                    }
                }
            }
        } catch (const Error& e) {
            error_ = e;
        } catch (const std::exception& e) {
            error_ = Error(ErrorKind::Failed, e.what());
        }
        const uint64_t one = 1;
        while (::write(done_.get(), &one, sizeof one) < 0 && errno == EINTR) {
        }
    });
}

} // namespace rdtmon
