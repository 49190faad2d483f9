// ThreadPool::parallel_for: every index runs exactly once, for any size, grain and pool size;
// back-to-back jobs (the spinning path), jobs after the workers went to sleep (the condition
// variable path), callers on several threads taking turns, and destruction in either state.
#include "qswap/base/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <utility>
#include <chrono>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace qswap {
namespace {

// Runs parallel_for(n, grain) and checks each index was visited once, within [0, n).
void expect_each_once(ThreadPool& pool, int64_t n, int64_t grain) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
  std::atomic<int64_t> bad{0};
  pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
    if (b < 0 || e > n || b >= e) ++bad;
    for (int64_t i = b; i < e && i < n; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
  });
  EXPECT_EQ(bad.load(), 0) << "n " << n << ", grain " << grain;
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "index " << i << " of " << n;
}

TEST(ThreadPoolTest, EveryIndexExactlyOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {1, 2, 7, 64, 1000, 4097}) {
      for (int64_t grain : {1, 3, 64, 5000}) expect_each_once(pool, n, grain);
    }
  }
}

// Chunks start on a grain and span whole grains (the last may be short), and shrink towards the
// end: the GEMV and the fp8-block quantizer rely on the first, the balance at a job's end on the
// second.
TEST(ThreadPoolTest, ChunksAreWholeGrainsAndShrink) {
  ThreadPool pool(2);
  for (int64_t grain : {1, 16, 64, 128}) {
    for (int64_t n : {grain * 37 + 5, grain * 1000, int64_t{151936}}) {
      std::mutex mutex;
      std::vector<std::pair<int64_t, int64_t>> chunks;
      pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
        std::lock_guard<std::mutex> lock(mutex);
        chunks.emplace_back(b, e);
      });
      std::sort(chunks.begin(), chunks.end());
      ASSERT_FALSE(chunks.empty());
      EXPECT_EQ(chunks.front().first, 0);
      EXPECT_EQ(chunks.back().second, n);
      for (size_t i = 0; i < chunks.size(); ++i) {
        const auto [b, e] = chunks[i];
        SCOPED_TRACE("n " + std::to_string(n) + ", grain " + std::to_string(grain) + ", chunk [" + std::to_string(b) +
                     ", " + std::to_string(e) + ")");
        EXPECT_EQ(b % grain, 0);
        if (e != n) {
          EXPECT_EQ((e - b) % grain, 0);
        }
        if (i + 1 < chunks.size()) {
          EXPECT_EQ(chunks[i + 1].first, e);
        }
      }
      if (n >= 64 * grain) {
        // The first chunk is a quarter of the job (2 threads); the last are single grains.
        EXPECT_GE(chunks.front().second, n / 4 - grain);
        EXPECT_LE(chunks[chunks.size() - 2].second - chunks[chunks.size() - 2].first, grain);
      }
    }
  }
}

TEST(ThreadPoolTest, EmptyRangeCallsNothing) {
  ThreadPool pool(2);
  bool called = false;
  pool.parallel_for(0, 1, [&](int64_t, int64_t) { called = true; });
  pool.parallel_for(-3, 1, [&](int64_t, int64_t) { called = true; });
  EXPECT_FALSE(called);
}

TEST(ThreadPoolTest, BackToBackJobsAndJobsAfterSleep) {
  ThreadPool pool(3);
  std::atomic<int64_t> sum{0};
  for (int job = 0; job < 20000; ++job) {
    pool.parallel_for(16, 1, [&](int64_t b, int64_t e) { sum.fetch_add(e - b); });
  }
  EXPECT_EQ(sum.load(), 20000 * 16);
  // Idle longer than the spin: the workers sleep, and the next jobs must wake them.
  for (int job = 0; job < 5; ++job) {
    std::this_thread::sleep_for(std::chrono::microseconds(3 * ThreadPool::kSpinMicros));
    expect_each_once(pool, 100, 1);
  }
}

TEST(ThreadPoolTest, WorkersTakePartAndCallerWaitsForThem) {
  ThreadPool pool(2);
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<bool> worker_ran{false};
  std::vector<int> out(8, 0);
  pool.parallel_for(8, 1, [&](int64_t b, int64_t e) {
    if (std::this_thread::get_id() == caller) {
      // Hold the caller until the worker has a chunk (bounded: a busy machine may be slow to run it).
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (!worker_ran.load() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    } else {
      worker_ran.store(true);
      // Outlast the caller's spin: it must sleep until this chunk is done, then see its writes.
      std::this_thread::sleep_for(std::chrono::microseconds(2 * ThreadPool::kSpinMicros));
    }
    for (int64_t i = b; i < e; ++i) out[static_cast<size_t>(i)] = static_cast<int>(i) + 1;
  });
  EXPECT_TRUE(worker_ran.load()) << "the worker never ran a chunk";
  for (int i = 0; i < 8; ++i) EXPECT_EQ(out[static_cast<size_t>(i)], i + 1);
}

TEST(ThreadPoolTest, CallersOnSeveralThreadsTakeTurns) {
  ThreadPool pool(2);
  std::atomic<int64_t> sum{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 3; ++c) {
    callers.emplace_back([&] {
      for (int job = 0; job < 500; ++job) pool.parallel_for(32, 1, [&](int64_t b, int64_t e) { sum.fetch_add(e - b); });
    });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(sum.load(), 3 * 500 * 32);
}

TEST(ThreadPoolTest, DestroyWhileSpinningOrSleeping) {
  for (int wait_us : {0, 3 * static_cast<int>(ThreadPool::kSpinMicros)}) {
    ThreadPool pool(4);
    expect_each_once(pool, 50, 1);
    std::this_thread::sleep_for(std::chrono::microseconds(wait_us));
  }  // the destructor joins workers that are spinning (0) or asleep
  SUCCEED();
}

}  // namespace
}  // namespace qswap
