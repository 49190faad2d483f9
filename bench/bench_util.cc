#include "bench_util.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <vector>

#include <cstdio>

#include "qswap/base/cpu.h"
#include "qswap/engine/synth.h"
#include "qswap/tensor/tensor.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace qswap::bench {
namespace {

// Keeps a result observable, so the measured loops are not optimized away.
void keep(const void* p) { asm volatile("" : : "r"(p) : "memory"); }

#if defined(__x86_64__)
// GCC 12's AVX-512 intrinsics trip -Wuninitialized (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f"))) uint64_t read_avx512(const std::byte* p, size_t bytes) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 256 <= bytes; i += 256) {
    a0 = _mm512_xor_si512(a0, _mm512_load_si512(p + i));
    a1 = _mm512_xor_si512(a1, _mm512_load_si512(p + i + 64));
    a2 = _mm512_xor_si512(a2, _mm512_load_si512(p + i + 128));
    a3 = _mm512_xor_si512(a3, _mm512_load_si512(p + i + 192));
  }
  return static_cast<uint64_t>(_mm512_reduce_add_epi64(_mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3))));
}

// 24 independent FMA chains (more than latency × ports), 2 flops × 16 lanes each. noinline and a
// per-call seed keep the compiler from merging calls.
__attribute__((target("avx512f,fma"), noinline)) float fma_avx512(int64_t iters, float seed) {
  __m512 acc[24];
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(seed + static_cast<float>(i) * 1e-3f);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 24; ++i) s = _mm512_add_ps(s, acc[i]);
  return _mm512_reduce_add_ps(s);
}
#pragma GCC diagnostic pop
constexpr double kFmaFlopsPerIter = 24.0 * 16 * 2;
#endif

uint64_t read_portable(const std::byte* p, size_t bytes) {
  uint64_t a = 0, b = 0;
  for (size_t i = 0; i + 16 <= bytes; i += 16) {
    uint64_t x, y;
    std::memcpy(&x, p + i, 8);
    std::memcpy(&y, p + i + 8, 8);
    a ^= x;
    b ^= y;
  }
  return a ^ b;
}

uint64_t read_bytes(const std::byte* p, size_t bytes) {
#if defined(__x86_64__)
  if (cpu_features().avx512) return read_avx512(p, bytes);
#endif
  return read_portable(p, bytes);
}

}  // namespace

// Read-only stream over `bytes` (best of reps), split across `threads` in 1 MiB chunks.
double read_gb_per_s(int threads, size_t bytes, int reps) {
  Buffer buf(bytes);
  std::memset(buf.data(), 1, bytes);
  ThreadPool pool(threads);
  constexpr int64_t kChunk = 1 << 20;
  const int64_t chunks = static_cast<int64_t>((bytes + kChunk - 1) / kChunk);
  double best = 1e30;
  std::vector<uint64_t> sink(static_cast<size_t>(chunks));
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(chunks, 1, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) {
        const size_t begin = static_cast<size_t>(c * kChunk);
        sink[static_cast<size_t>(c)] = read_bytes(buf.data() + begin, std::min<size_t>(kChunk, bytes - begin));
      }
    });
    best = std::min(best, seconds_since(t0));
  }
  keep(sink.data());
  return static_cast<double>(bytes) / best / 1e9;
}

double fma_peak_gflops(int threads) {
#if defined(__x86_64__)
  if (!cpu_features().avx512) return 0.0;
  ThreadPool pool(threads);
  constexpr int64_t kIters = 500'000;
  const int64_t jobs = 8 * threads;
  double best = 1e30;
  std::vector<float> sink(static_cast<size_t>(jobs));
  for (int r = 0; r < 3; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(jobs, 1, [&](int64_t b, int64_t e) {
      for (int64_t j = b; j < e; ++j) sink[static_cast<size_t>(j)] = fma_avx512(kIters, static_cast<float>(j));
    });
    best = std::min(best, seconds_since(t0));
  }
  keep(sink.data());
  return kFmaFlopsPerIter * static_cast<double>(kIters * jobs) / best / 1e9;
#else
  (void)threads;
  return 0.0;
#endif
}

// The limits are measured again right before each benchmark that uses them: on a shared machine
// the load changes, and a ratio means something only against the same moment's limit.
double memcpy_gb_per_s(ThreadPool& pool, size_t bytes, int reps) {
  Buffer src(bytes), dst(bytes);
  std::memset(src.data(), 1, bytes);  // fault every page in before timing
  std::memset(dst.data(), 2, bytes);
  constexpr int64_t kChunk = 4 << 20;
  const int64_t chunks = static_cast<int64_t>((bytes + kChunk - 1) / kChunk);
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(chunks, 1, [&](int64_t b, int64_t e) {
      const size_t begin = static_cast<size_t>(b * kChunk);
      const size_t end = std::min(bytes, static_cast<size_t>(e * kChunk));
      std::memcpy(dst.data() + begin, src.data() + begin, end - begin);
    });
    best = std::min(best, seconds_since(t0));
  }
  return static_cast<double>(bytes) / best / 1e9;
}

Result<std::filesystem::path> synthetic_checkpoint(const std::filesystem::path& dir, const std::string& preset,
                                                   uint64_t seed) {
  std::filesystem::path path = dir / ("qwen3-" + preset + "-seed" + std::to_string(seed));
  if (std::filesystem::exists(path / "config.json")) return path;
  std::fprintf(stderr, "writing %s ...\n", path.c_str());
  QSWAP_ASSIGN_OR_RETURN(ModelConfig config, synth_preset(Arch::kQwen3, preset));
  QSWAP_RETURN_IF_ERROR(write_synthetic_checkpoint(config, path, SynthOptions{seed}));
  return path;
}

void reset_peak_rss() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
}

}  // namespace qswap::bench
