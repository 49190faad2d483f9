#include "bench_util.h"

#include <algorithm>
#include <cstring>
#include <fstream>

#include "qswap/tensor/tensor.h"

namespace qswap::bench {

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

void reset_peak_rss() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
}

}  // namespace qswap::bench
