// A fixed pool of worker threads for data-parallel loops. The calling thread takes part, so a
// pool of size 1 runs everything inline with no synchronisation at all.
//
// Built for the forward pass, which calls parallel_for a few hundred times per token on work of
// tens of microseconds: a job is published through an atomic counter, chunks (shrinking as the
// job nears its end) are claimed by compare-and-swap, and idle workers spin for a short while
// (kSpinMicros) before they sleep on a condition variable, so back-to-back jobs never pay a
// futex wake-up (nor, in a VM, waking a halted vCPU). A pool that has been idle longer than that
// costs nothing. A job waits only for the chunks it hands out, not for every worker to check in:
// a worker the OS has descheduled (a busy machine) is simply not counted on.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace qswap {

class ThreadPool {
 public:
  // threads <= 0: one per hardware thread.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) over [0, n) in chunks of whole multiples of `grain` (the last one may be
  // short), largest first, on all threads; returns when every chunk is done. Callers on several
  // threads take turns (a weight update and a generation may share the pool); fn must not call
  // parallel_for on the same pool.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  // How long an idle worker (or a caller waiting for the last chunk) spins before it sleeps.
  static constexpr int64_t kSpinMicros = 200;

 private:
  void worker_loop();
  void run_chunks();
  void leave_job();

  std::vector<std::thread> workers_;
  std::mutex run_mutex_;  // one job at a time

  // The job in flight: written by the caller before it bumps generation_ (release), read by the
  // workers after they see the new generation (acquire).
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  int64_t grain_ = 1;

  // Job g is open from generation_ = g until closed_ = g. A worker joins it (joined_ + 1) only
  // while it is open; the caller closes it once every chunk is claimed and then waits for the
  // workers that joined.
  alignas(64) std::atomic<uint64_t> generation_{0};
  std::atomic<uint64_t> closed_{0};
  std::atomic<bool> stop_{false};
  alignas(64) std::atomic<int64_t> next_{0};  // first unclaimed index
  alignas(64) std::atomic<int> joined_{0};    // workers inside the open job
  // Sleeping, after the spin: workers wait on wake_ for a new generation, the caller on done_ for
  // joined_ == 0. The counters let the other side skip the notify when nobody sleeps.
  alignas(64) std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::atomic<int> sleeping_workers_{0};
  std::atomic<bool> caller_sleeping_{false};
};

}  // namespace qswap
