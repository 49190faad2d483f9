// bench_kernels: linear() per kernel-tensor layout at Qwen3-0.6B shapes, beside the machine's
// own limits measured in the same run (DESIGN.md, "Performance model").
//
//   build/bench/bench_kernels [--benchmark_filter=fp8-block] [--benchmark_min_time=0.3s]
//
// Names: linear/<scheme>/<layer>_<n>x<k>/m:<rows>/<cold|hot>/threads:<t>.
//   m <= 4 (GEMV) is memory-bound: `cold` rotates over enough copies of the weight to overflow
//   the last-level cache (as a decode step streams a whole model from DRAM); its ratio `of_bw` is
//   weight GB/s over a read-only stream of the same total size with the same threads. `hot`
//   repeats one copy (L2/L3-resident), against a read stream of the weight's size.
//   m = 64, 512 (GEMM) is compute-bound: `of_peak` is GFLOP/s over a pure-FMA loop's GFLOP/s on
//   the same threads.
// Counters: GB/s (weight bytes: codes + scales), GFLOP/s (2·m·n·k), mem_GB/s and peak_GFLOP/s
// (the limits), of_bw, of_peak.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "qswap/base/cpu.h"
#include "qswap/kernels/linear.h"
#include "qswap/quant/scheme.h"
#include "qswap/tensor/convert.h"

namespace qswap::bench {
namespace {

struct LayerShape {
  const char* name;
  int64_t n, k;
};
constexpr LayerShape kShapes[] = {{"qkv", 4096, 1024}, {"o", 1024, 2048}, {"gate_up", 6144, 1024}, {"down", 1024, 3072}};
const char* const kSchemes[] = {"none", "fp8", "fp8-channel", "fp8-block", "mxfp8", "int8-channel"};
constexpr size_t kColdBytes = size_t{768} << 20;  // > 2x the 260 MB L3 this machine reports

// ---------------------------------------------------------------------------------------------
// The machine's limits.

double cold_read_gbs(int threads) { return read_gb_per_s(threads, kColdBytes, 2); }
double hot_read_gbs(int threads, size_t bytes) { return read_gb_per_s(threads, bytes, 20); }
double fma_peak(int threads) { return fma_peak_gflops(threads); }

// ---------------------------------------------------------------------------------------------
// Weights: a layer quantized by the real scheme, plus copies for the cold runs.

struct Layer {
  std::vector<std::vector<Buffer>> copies;  // copies[c][tensor]
  std::vector<LinearWeight> weights;        // one per copy
  size_t bytes = 0;                         // one copy's kernel-tensor bytes
};

std::unique_ptr<Layer> make_layer(const char* scheme_name, const LayerShape& shape, bool cold) {
  auto scheme = make_quant_scheme(scheme_name);
  if (!scheme.ok()) return nullptr;
  std::mt19937_64 rng(42);
  std::normal_distribution<float> normal;
  std::vector<uint16_t> bf16(static_cast<size_t>(shape.n * shape.k));
  for (uint16_t& v : bf16) v = f32_to_bf16(normal(rng) * 0.02f);
  auto layer = std::make_unique<Layer>();
  std::vector<KernelTensorSpec> specs = (*scheme)->kernel_tensors(std::vector<int64_t>{shape.n}, shape.k);
  std::vector<Buffer> first;
  std::vector<TensorView> views;
  for (const KernelTensorSpec& s : specs) {
    first.emplace_back(static_cast<size_t>(num_elements(s.shape)) * dtype_size(s.dtype));
    views.push_back(TensorView{s.dtype, s.shape, first.back().data()});
    layer->bytes += first.back().size();
  }
  ThreadPool pool(0);
  QuantContext ctx{false, &pool};
  if (!(*scheme)->quantize(SourceRows{DType::kBF16, reinterpret_cast<const std::byte*>(bf16.data()), 0, shape.n, shape.k},
                           views, ctx).ok()) {
    return nullptr;
  }
  const size_t count = cold ? std::max<size_t>(1, (kColdBytes + layer->bytes - 1) / layer->bytes) : 1;
  layer->copies.push_back(std::move(first));
  for (size_t c = 1; c < count; ++c) {
    std::vector<Buffer> copy;
    for (const Buffer& b : layer->copies[0]) {
      copy.emplace_back(b.size());
      std::memcpy(copy.back().data(), b.data(), b.size());
    }
    layer->copies.push_back(std::move(copy));
  }
  for (std::vector<Buffer>& copy : layer->copies) {
    for (size_t t = 0; t < views.size(); ++t) views[t].data = copy[t].data();
    layer->weights.push_back(make_linear_weight((*scheme)->kind(), views).value());
  }
  return layer;
}

// One layer alive at a time: the cold copies take ~kColdBytes.
Layer* layer_for(const char* scheme, const LayerShape& shape, bool cold) {
  static std::string key;
  static std::unique_ptr<Layer> layer;
  std::string want = fmt::format("{}/{}/{}", scheme, shape.name, cold);
  if (key != want) {
    layer.reset();
    layer = make_layer(scheme, shape, cold);
    key = want;
  }
  return layer.get();
}

void bm_linear(benchmark::State& state, const char* scheme, LayerShape shape, int64_t m, bool cold, int threads) {
  Layer* layer = layer_for(scheme, shape, cold);
  if (layer == nullptr) {
    state.SkipWithError("quantization failed");
    return;
  }
  std::mt19937_64 rng(7);
  std::normal_distribution<float> normal;
  std::vector<float> x(static_cast<size_t>(m * shape.k)), y(static_cast<size_t>(m * shape.n));
  for (float& v : x) v = normal(rng);
  std::vector<uint16_t> bias(static_cast<size_t>(shape.n), f32_to_bf16(0.5f));
  std::unique_ptr<ThreadPool> pool = threads > 1 ? std::make_unique<ThreadPool>(threads) : nullptr;
  const double mem = m <= kGemvMaxRows ? (cold ? cold_read_gbs(threads) : hot_read_gbs(threads, layer->bytes)) : 0.0;
  const double peak = m > kGemvMaxRows ? fma_peak(threads) : 0.0;
  size_t copy = 0;
  double total = 0.0;
  for (auto _ : state) {
    const LinearWeight& w = layer->weights[copy];
    copy = copy + 1 == layer->weights.size() ? 0 : copy + 1;
    auto t0 = std::chrono::steady_clock::now();
    linear(w, x.data(), m, y.data(), bias.data(), pool.get());
    const double s = seconds_since(t0);
    state.SetIterationTime(s);
    total += s;
    benchmark::DoNotOptimize(y.data());
  }
  const double iters = static_cast<double>(state.iterations());
  const double gbs = static_cast<double>(layer->bytes) * iters / total / 1e9;
  const double gflops = 2.0 * static_cast<double>(m * shape.n * shape.k) * iters / total / 1e9;
  state.counters["GB/s"] = gbs;
  state.counters["GFLOP/s"] = gflops;
  if (mem > 0) {
    state.counters["mem_GB/s"] = mem;
    state.counters["of_bw"] = gbs / mem;
  }
  if (peak > 0) {
    state.counters["peak_GFLOP/s"] = peak;
    state.counters["of_peak"] = gflops / peak;
  }
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

void register_all() {
  for (const char* scheme : kSchemes) {
    for (const LayerShape& shape : kShapes) {
      // Cold GEMV first, then everything on one hot copy (layer_for keeps one layer alive).
      for (bool cold : {true, false}) {
        for (int64_t m : {1, 64, 512}) {
          if (cold && m > kGemvMaxRows) continue;
          for (int threads : {1, 2}) {
            std::string name = fmt::format("linear/{}/{}_{}x{}/m:{}/{}/threads:{}", scheme, shape.name, shape.n,
                                           shape.k, m, cold ? "cold" : "hot", threads);
            benchmark::RegisterBenchmark(name.c_str(), bm_linear, scheme, shape, m, cold, threads)
                ->UseManualTime()
                ->Unit(benchmark::kMicrosecond)
                ->MinTime(0.2);
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace qswap::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("qswap_isa", qswap::describe_cpu());
  benchmark::AddCustomContext("loadavg_at_start", qswap::bench::load_average());
  qswap::bench::register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::fprintf(stderr, "loadavg at end: %s\n", qswap::bench::load_average().c_str());
  return 0;
}
