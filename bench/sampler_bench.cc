// bench_sampler: one Sampler::sample (token + its logprob) over a Qwen3-sized vocabulary
// (151,936 logits), per sampling mode, beside a baseline measured in the same run: building every
// (logit, id) pair and sorting them all, the step a sort-based sampler takes per token (what
// qswap's sampler did before). Counter: vs_sort = baseline time / this time.
//
//   build/bench/bench_sampler [--benchmark_min_time=0.3s]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <utility>
#include <vector>

#include "qswap/model/sampler.h"

namespace qswap::bench {
namespace {

constexpr int64_t kVocab = 151936;

// Logits shaped like a language model's: most tokens far below a few likely ones.
const std::vector<float>& logits() {
  static const std::vector<float> l = [] {
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 2.5f);
    std::vector<float> v(kVocab);
    for (float& x : v) x = normal(rng);
    for (int i = 0; i < 20; ++i) v[static_cast<size_t>(rng() % kVocab)] += 12.0f;
    return v;
  }();
  return l;
}

// Seconds per call of the sort-based baseline, best of a few.
double sort_baseline_seconds() {
  static const double seconds = [] {
    const std::vector<float>& l = logits();
    std::vector<std::pair<float, int32_t>> pairs;
    double best = 1e30;
    for (int r = 0; r < 20; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      pairs.clear();
      for (size_t i = 0; i < l.size(); ++i) pairs.emplace_back(l[i], static_cast<int32_t>(i));
      std::sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
      benchmark::DoNotOptimize(pairs.data());
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  }();
  return seconds;
}

void sample(benchmark::State& state, SamplingParams params) {
  const std::vector<float>& l = logits();
  params.seed = 1;
  Sampler sampler(params);
  float logprob = 0.0f;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    benchmark::DoNotOptimize(sampler.sample(l, &logprob));
    benchmark::DoNotOptimize(logprob);
  }
  const double per_call = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
                          static_cast<double>(std::max<benchmark::IterationCount>(1, state.iterations()));
  state.counters["vs_sort"] = sort_baseline_seconds() / per_call;
}

SamplingParams params(float temperature, int top_k, float top_p) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  return p;
}

BENCHMARK_CAPTURE(sample, greedy, params(0.0f, 0, 1.0f));
BENCHMARK_CAPTURE(sample, t1, params(1.0f, 0, 1.0f));
BENCHMARK_CAPTURE(sample, t1_top_k40, params(1.0f, 40, 1.0f));
BENCHMARK_CAPTURE(sample, t1_top_p09, params(1.0f, 0, 0.9f));
BENCHMARK_CAPTURE(sample, t07_top_k50_top_p095, params(0.7f, 50, 0.95f));

}  // namespace
}  // namespace qswap::bench

BENCHMARK_MAIN();
