// CollectionRunner: the container sources are listed on a worker thread, the result is
// applied only by finish() on the caller's thread, requests that arrive during a run are
// served by the next run, and every reply is called exactly once. Driven with a real
// GroupManager over a temp-dir registry and a temp dir laid out like resctrl, and a source
// the test holds until it lets it answer.

#include "CollectionRunner.h"
#include "ContainerSource.h"
#include "Errors.h"
#include "GarbageCollector.h"
#include "GroupManager.h"
#include "GroupRegistry.h"
#include "Resctrl.h"
#include "TempDir.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <poll.h>
#include <set>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <vector>

namespace rdtmon::test {
namespace {

using namespace std::chrono_literals;

constexpr auto kPatience = 10s;

// A container source that blocks in list() until the test releases it.
class HeldSource : public ContainerSource {
public:
    struct Gate {
        std::mutex m;
        std::condition_variable cv;
        int arrived = 0;  // list() calls so far
        int released = 0; // list() calls allowed to answer
        std::vector<std::thread::id> threads;
        std::set<std::string> live;
        bool fail = false;
    };

    explicit HeldSource(std::shared_ptr<Gate> gate) : gate_(std::move(gate)) {}
    std::string describe() const override { return "held source"; }
    std::set<std::string> list() const override {
        std::unique_lock lock(gate_->m);
        gate_->threads.push_back(std::this_thread::get_id());
        const int me = ++gate_->arrived;
        gate_->cv.notify_all();
        gate_->cv.wait(lock, [&] { return gate_->released >= me; });
        if (gate_->fail) {
            throw Error(ErrorKind::Failed, "runtime root unreadable");
        }
        return gate_->live;
    }

private:
    std::shared_ptr<Gate> gate_;
};

struct Reply {
    int calls = 0;
    unsigned removed = 0;
    std::optional<std::string> error;
};

class CollectionRunnerTest : public ::testing::Test {
protected:
    CollectionRunnerTest() {
        // What Resctrl needs of a tree: info/L3_MON (monitoring supported) and mon_groups/.
        for (const char* d :
             {"resctrl", "resctrl/info", "resctrl/info/L3_MON", "resctrl/mon_groups"}) {
            EXPECT_EQ(::mkdir(dir_.file(d).c_str(), 0755), 0) << d;
        }
        registry_.load();
        GroupManager::Events events;
        events.removed = [this](const GroupRecord& r, RemoveReason why) {
            removedEvents_.push_back(r.id + ":" + reasonName(why));
        };
        mgr_ = std::make_unique<GroupManager>(
            [this](std::string&) { return std::make_unique<Resctrl>(dir_.file("resctrl")); },
            registry_, events, [] { return kNow; });
        mgr_->start();
        std::vector<std::unique_ptr<ContainerSource>> sources;
        sources.push_back(std::make_unique<HeldSource>(gate_));
        gc_ = std::make_unique<GarbageCollector>(std::move(sources), 0s);
        runner_ = std::make_unique<CollectionRunner>(*mgr_, *gc_);
    }

    ~CollectionRunnerTest() override {
        // A worker still held would never let the runner's destructor join it.
        releaseAll();
    }

    // An owned group, older than any grace: stale unless the source lists it.
    void addGroup(const std::string& id) {
        ASSERT_EQ(::mkdir(groupDir(id).c_str(), 0755), 0);
        registry_.put(GroupRecord{id, "", 1, kNow - 3600'000'000ULL, false});
    }
    std::string groupDir(const std::string& id) const {
        return dir_.file("resctrl/mon_groups/" + id);
    }

    CollectionRunner::Reply replyInto(Reply& r) {
        return [&r](unsigned removed, const std::string* error) {
            ++r.calls;
            r.removed = removed;
            r.error = error != nullptr ? std::optional<std::string>(*error) : std::nullopt;
        };
    }

    // Waits until list() has been entered n times in all.
    void waitArrived(int n) {
        std::unique_lock lock(gate_->m);
        ASSERT_TRUE(gate_->cv.wait_for(lock, kPatience, [&] { return gate_->arrived >= n; }))
            << "the source was not asked " << n << " time(s)";
    }
    void release(int n) {
        std::lock_guard lock(gate_->m);
        gate_->released = n;
        gate_->cv.notify_all();
    }
    void releaseAll() { release(1 << 30); }

    bool readable(std::chrono::milliseconds timeout) const {
        pollfd p{runner_->fd(), POLLIN, 0};
        return ::poll(&p, 1, static_cast<int>(timeout.count())) == 1 && (p.revents & POLLIN);
    }

    static constexpr uint64_t kNow = 1'700'000'000'000'000ULL;
    TempDir dir_{"rdtmon-collect"};
    GroupRegistry registry_{dir_.file("state")};
    std::vector<std::string> removedEvents_;
    std::unique_ptr<GroupManager> mgr_;
    std::shared_ptr<HeldSource::Gate> gate_ = std::make_shared<HeldSource::Gate>();
    std::unique_ptr<GarbageCollector> gc_;
    std::unique_ptr<CollectionRunner> runner_;
};

TEST_F(CollectionRunnerTest, ARequestListsTheSourcesOnAWorkerThread) {
    Reply a;
    runner_->request(replyInto(a));
    EXPECT_TRUE(runner_->running());
    waitArrived(1);
    {
        std::lock_guard lock(gate_->m);
        ASSERT_EQ(gate_->threads.size(), 1u);
        EXPECT_NE(gate_->threads[0], std::this_thread::get_id());
    }
    // The caller's thread is free while the source is slow.
    EXPECT_FALSE(readable(50ms));
    EXPECT_EQ(a.calls, 0);
    release(1);
    ASSERT_TRUE(readable(kPatience));
    runner_->finish();
    EXPECT_EQ(a.calls, 1);
    EXPECT_EQ(a.removed, 0u);
    EXPECT_FALSE(a.error);
    EXPECT_FALSE(runner_->running());
}

TEST_F(CollectionRunnerTest, TheResultIsAppliedOnlyByFinish) {
    addGroup("gone");
    addGroup("alive");
    gate_->live = {"alive"};
    Reply a;
    runner_->request(replyInto(a));
    release(1);
    ASSERT_TRUE(readable(kPatience));
    // Decided, not applied: the group, its record and the reply all wait for finish().
    EXPECT_TRUE(isDir(groupDir("gone")));
    EXPECT_TRUE(registry_.find("gone"));
    EXPECT_TRUE(removedEvents_.empty());
    EXPECT_EQ(a.calls, 0);

    runner_->finish();
    EXPECT_EQ(a.calls, 1);
    EXPECT_EQ(a.removed, 1u);
    EXPECT_FALSE(a.error);
    EXPECT_FALSE(isDir(groupDir("gone")));
    EXPECT_FALSE(registry_.find("gone"));
    EXPECT_EQ(removedEvents_, std::vector<std::string>{"gone:stale"});
    EXPECT_TRUE(isDir(groupDir("alive")));
    EXPECT_TRUE(registry_.find("alive"));
}

TEST_F(CollectionRunnerTest, RequestsDuringARunAreServedByTheNextRun) {
    Reply first;
    Reply second;
    Reply third;
    runner_->request(replyInto(first));
    waitArrived(1);
    // A group made after the first run took its snapshot: only a later run may judge it.
    addGroup("late");
    runner_->request(replyInto(second));
    runner_->request(nullptr); // e.g. the timer: nobody waits for it
    runner_->request(replyInto(third));

    release(1);
    ASSERT_TRUE(readable(kPatience));
    runner_->finish();
    EXPECT_EQ(first.calls, 1);
    EXPECT_EQ(first.removed, 0u);
    EXPECT_EQ(second.calls, 0);
    EXPECT_EQ(third.calls, 0);
    EXPECT_TRUE(isDir(groupDir("late")));
    EXPECT_TRUE(runner_->running()) << "the queued requests start the next run at once";

    waitArrived(2);
    release(2);
    ASSERT_TRUE(readable(kPatience));
    runner_->finish();
    EXPECT_EQ(first.calls, 1);
    EXPECT_EQ(second.calls, 1);
    EXPECT_EQ(third.calls, 1);
    EXPECT_EQ(second.removed, 1u);
    EXPECT_EQ(third.removed, 1u);
    EXPECT_FALSE(isDir(groupDir("late")));
    EXPECT_FALSE(runner_->running());
    {
        std::lock_guard lock(gate_->m);
        EXPECT_EQ(gate_->arrived, 2) << "one run served all three queued requests";
    }

    // Nothing is left to answer: a stray finish() calls nobody again.
    runner_->finish();
    EXPECT_EQ(first.calls + second.calls + third.calls, 3);
}

TEST_F(CollectionRunnerTest, AFailedSourceRemovesNothingAndStillAnswers) {
    addGroup("gone");
    gate_->fail = true;
    Reply a;
    runner_->request(replyInto(a));
    release(1);
    ASSERT_TRUE(readable(kPatience));
    runner_->finish();
    EXPECT_EQ(a.calls, 1);
    EXPECT_EQ(a.removed, 0u);
    EXPECT_FALSE(a.error) << "a source failure is logged, the collection itself succeeded";
    EXPECT_TRUE(isDir(groupDir("gone")));
    EXPECT_TRUE(registry_.find("gone"));
}

} // namespace
} // namespace rdtmon::test
