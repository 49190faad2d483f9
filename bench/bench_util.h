// Shared by the benchmarks: the machine's own limits, measured in the same run.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "qswap/base/status.h"
#include "qswap/base/thread_pool.h"

namespace qswap::bench {

// memcpy throughput in GB/s (bytes copied per second) over `bytes`-sized buffers, best of `reps`,
// split across the pool's threads.
double memcpy_gb_per_s(ThreadPool& pool, size_t bytes, int reps = 5);

// Read-only streaming throughput in GB/s over `bytes` (best of `reps`), on `threads` threads: the
// floor of a memory-bound kernel such as decode's GEMV.
double read_gb_per_s(int threads, size_t bytes, int reps = 5);
// f32 FMA throughput in GFLOP/s of a pure AVX-512 FMA loop on `threads` threads (0 without
// AVX-512): the peak of the unit the f32 GEMM runs on.
double fma_peak_gflops(int threads);

// DIR/qwen3-PRESET-seedSEED, a synthetic Qwen3 checkpoint (`qswap synth`), written if missing.
Result<std::filesystem::path> synthetic_checkpoint(const std::filesystem::path& dir, const std::string& preset,
                                                   uint64_t seed);

// Resets the process's peak-RSS counter (VmHWM), so one run's peak can be read afterwards.
void reset_peak_rss();

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace qswap::bench
