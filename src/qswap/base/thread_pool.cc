#include "qswap/base/thread_pool.h"

#include <algorithm>
#include <chrono>

namespace qswap {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Spins until ready() or ThreadPool::kSpinMicros have passed; returns ready().
template <class Ready>
bool spin_until(Ready ready) {
  if (ready()) return true;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(ThreadPool::kSpinMicros);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (ready()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= deadline) return ready();
  }
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  if (workers_.empty() || n <= grain) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> exclusive(run_mutex_);
  fn_ = &fn;
  n_ = n;
  grain_ = grain;
  next_.store(0, std::memory_order_relaxed);
  const uint64_t job = generation_.fetch_add(1) + 1;  // opens the job (seq_cst, as every step below)
  if (sleeping_workers_.load() > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_.notify_all();
  }
  run_chunks();
  // Every chunk is claimed: close the job, then wait for the workers inside it. A worker joins
  // (joined_ + 1) before it checks closed_, and this side stores closed_ before it reads joined_,
  // so either this side sees the worker or the worker sees the job closed and stays out.
  closed_.store(job);
  auto done = [this] { return joined_.load() == 0; };
  if (!spin_until(done)) {
    std::unique_lock<std::mutex> lock(mutex_);
    caller_sleeping_.store(true);
    done_.wait(lock, done);
    caller_sleeping_.store(false);
  }
  fn_ = nullptr;
}

// Guided self-scheduling: each claim takes 1 / (2 × threads) of what is left, in whole grains.
// Big chunks first keep the claims few (each starts a cold memory stream in a GEMV); small ones
// last leave the threads finishing within about a grain of each other. With equal chunks of
// n / (4 × threads), the last chunk alone could hold the other threads idle for ~1/8 of a job.
void ThreadPool::run_chunks() {
  const int64_t parts = 2 * size();
  int64_t begin = next_.load(std::memory_order_relaxed);
  for (;;) {
    int64_t end;
    do {
      if (begin >= n_) return;
      const int64_t grains = std::max<int64_t>(1, (n_ - begin) / (parts * grain_));
      end = std::min(n_, begin + grains * grain_);
    } while (!next_.compare_exchange_weak(begin, end, std::memory_order_relaxed));
    (*fn_)(begin, end);
    begin = next_.load(std::memory_order_relaxed);
  }
}

void ThreadPool::leave_job() {
  if (joined_.fetch_sub(1) == 1 && caller_sleeping_.load()) {
    std::lock_guard<std::mutex> lock(mutex_);
    done_.notify_one();
  }
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    auto woken = [&] { return generation_.load(std::memory_order_acquire) != seen || stop_.load(std::memory_order_acquire); };
    if (!spin_until(woken)) {
      std::unique_lock<std::mutex> lock(mutex_);
      sleeping_workers_.fetch_add(1);  // seq_cst: ordered before the predicate's load
      wake_.wait(lock, [&] { return generation_.load() != seen || stop_.load(); });
      sleeping_workers_.fetch_sub(1);
    }
    if (stop_.load()) return;
    seen = generation_.load();
    joined_.fetch_add(1);
    // Closed already (or a later job is being set up): the job's fields may be changing, stay out.
    if (closed_.load() < seen) run_chunks();
    leave_job();
  }
}

}  // namespace qswap
