// WorkerPool: the fixed pool the bulk counter read runs its preads on.
#include "TestUtil.h"
#include "WorkerPool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

using namespace rdtmon;

TEST(WorkerPool, EveryJobRunsExactlyOnceInEveryBatch) {
    WorkerPool pool(3);
    EXPECT_EQ(pool.threads(), 3u);
    for (std::size_t n : {0u, 1u, 2u, 3u, 4u, 7u, 100u, 1000u, 5u, 0u, 6006u}) {
        std::vector<std::atomic<int>> runs(n);
        pool.forEach(n, [&](std::size_t i) { runs[i].fetch_add(1); });
        // forEach has returned: every call has, too.
        for (std::size_t i = 0; i < n; ++i) {
            ASSERT_EQ(runs[i].load(), 1) << "n " << n << " job " << i;
        }
    }
}

TEST(WorkerPool, ItsThreadsAndTheCallerRunJobsAtTheSameTime) {
    WorkerPool pool(3);
    const std::thread::id caller = std::this_thread::get_id();
    std::mutex mu;
    std::condition_variable cv;
    std::set<std::thread::id> ids;
    bool callerRan = false;
    // Each job waits (5 s at most) until four threads are inside a job at once, which only a
    // pool running the batch on its 3 threads and the caller can bring about.
    pool.forEach(4, [&](std::size_t) {
        std::unique_lock lk(mu);
        ids.insert(std::this_thread::get_id());
        callerRan = callerRan || std::this_thread::get_id() == caller;
        cv.notify_all();
        cv.wait_for(lk, rdtmon::test::scaledDeadline(std::chrono::seconds(5)),
                    [&] { return ids.size() == 4; });
    });
    EXPECT_EQ(ids.size(), 4u);
    EXPECT_TRUE(callerRan);
}

TEST(WorkerPool, WithoutThreadsTheCallerRunsEveryJobInOrder) {
    WorkerPool pool(0);
    std::vector<std::size_t> order;
    pool.forEach(5, [&](std::size_t i) { order.push_back(i); });
    EXPECT_EQ(order, (std::vector<std::size_t>{0, 1, 2, 3, 4}));
}

TEST(WorkerPool, IsDestroyedWithItsThreadsIdleOrNeverUsed) {
    for (int i = 0; i < 20; ++i) {
        WorkerPool unused(4);
        WorkerPool used(4);
        std::atomic<int> sum{0};
        used.forEach(50, [&](std::size_t j) { sum += static_cast<int>(j); });
        EXPECT_EQ(sum.load(), 49 * 50 / 2);
    }
}
