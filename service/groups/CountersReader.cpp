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
    {
        std::lock_guard lk(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (worker_.joinable()) {
        worker_.join();
    }
}

void CountersReader::workerMain() {
    std::unique_lock lk(mu_);
    for (;;) {
        cv_.wait(lk, [this] { return stop_ || job_; });
        if (!job_) {
            return;
        }
        const bool full = *job_;
        lk.unlock();
        work(full);
        lk.lock();
        job_.reset();
        const uint64_t one = 1;
        while (::write(done_.get(), &one, sizeof one) < 0 && errno == EINTR) {
        }
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
    if (!answering_.empty()) {
        return 0;
    }
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

bool CountersReader::answerNext() {
    if (answering_.empty()) {
        return false;
    }
    auto [o, reply] = std::move(answering_.front());
    answering_.pop_front();
    try {
        reply(*o);
    } catch (const std::exception& e) {
        log::warning(std::string("counters reply: ") + e.what());
    }
    return !answering_.empty();
}

void CountersReader::finish() {
    uint64_t v = 0;
    while (::read(done_.get(), &v, sizeof v) < 0 && errno == EINTR) {
    }
    {
        // The worker's writes to the read's outputs happen before this lock is taken.
        std::lock_guard lk(mu_);
        if (!busy_ || job_) {
            return;
        }
    }
    busy_ = false;
    resctrl_.reset();
    ++passes_;
    auto shared = std::make_shared<Outcome>();
    Outcome& o = *shared;
    if (error_) {
        o.error = error_;
        if (runningFull_) {
            pass_.reset(); // its kept files may belong to a tree that went away
            passFor_ = nullptr;
        }
    } else {
        // Mutations stay on the loop: a group the read could not find is dropped here when
        // its directory is gone.
        mgr_.settleUnread(unread_, shownUnread_);
        observeGenerations(result_, runningFull_);
        o.counters = std::make_shared<const AllCounters>(std::move(result_));
        o.groupErrors = std::move(groupErrors_);
    }
    for (Reply& r : current_) {
        answering_.emplace_back(shared, std::move(r));
    }
    current_.clear();
    answerNext();
    runDue();
}

void CountersReader::observeGenerations(AllCounters& read, bool full) {
    std::map<std::string, uint64_t> owned, shown; // id -> incarnation
    for (const GroupRecord& rec : snapshot_) {
        owned.emplace(rec.id, rec.createdUsec);
    }
    for (const RuntimeGroup& g : shown_) {
        shown.emplace(g.id, g.createdUsec);
    }
    CountGenerations& gens = mgr_.generations();
    for (GroupCounters& g : read.groups) {
        if (owned.count(g.id) != 0 && (g.id.empty() || g.id.front() != '/')) {
            mgr_.applySampled(g, read.monotonicUsec); // a rotating group's own counts
        }
        std::string key;
        uint64_t incarnation = 0;
        const auto origin = g.labels.find("origin");
        if (!g.id.empty() && g.id.front() == '/') {
            key = CountGenerations::closKey(g.id);
        } else if (origin != g.labels.end() && origin->second == "runtime") {
            key = CountGenerations::runtimeKey(g.id);
            incarnation = shown[g.id];
        } else {
            key = CountGenerations::ownedKey(g.id);
            incarnation = owned[g.id];
        }
        g.generations = gens.observe(key, incarnation, g.counters, read.monotonicUsec, g.decimals);
    }
    if (full) {
        gens.sweep(); // what a full pass did not find is gone
    }
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
        auto o = std::make_shared<Outcome>();
        o->error = Error(ErrorKind::NotSupported, "no resctrl with L3 monitoring");
        for (Reply& r : current_) {
            answering_.emplace_back(o, std::move(r));
        }
        current_.clear();
        answerNext();
        return;
    }
    if (full && resctrl_.get() != passFor_) {
        pass_ = std::make_unique<CountersPass>();
        passFor_ = resctrl_.get();
    }
    snapshot_.clear();
    shown_.clear();
    if (full) {
        snapshot_ = mgr_.groups();
        shown_ = mgr_.runtimeGroups();
    } else {
        for (const std::string& id : ids) {
            if (std::optional<GroupRecord> rec = mgr_.find(id)) {
                snapshot_.push_back(*rec);
            }
        }
    }
    result_ = AllCounters{};
    unread_.clear();
    shownUnread_.clear();
    error_.reset();
    groupErrors_.clear();
    busy_ = true;
    {
        std::lock_guard lk(mu_);
        job_ = full;
    }
    if (!worker_.joinable()) {
        worker_ = std::thread([this] { workerMain(); });
    }
    cv_.notify_one();
}

void CountersReader::work(bool full) {
    try {
        if (full) {
            result_ = readAllCounters(*resctrl_, *pass_, snapshot_, shown_, unread_, shownUnread_);
        } else {
            result_.monotonicUsec = monotonicUsec();
            for (const GroupRecord& rec : snapshot_) {
                try {
                    result_.groups.push_back(GroupCounters{
                        rec.id, rec.labels, resctrl_->readCounters(refOf(rec)), {}, {}, {}, {}});
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
}

} // namespace rdtmon
