// bench_reload: load and reload throughput of synthetic Qwen3-shaped checkpoints, per scheme and
// thread count, beside the memcpy bandwidth measured in the same run.
//
//   build/bench/bench_reload [--presets 0.6b,1.7b] [--schemes fp8,none] [--threads 1,2] [--reps 3]
//                            [--mode in-place|transactional] [--dir /tmp/qswap-bench]
//
// Sources are memory-mapped once and touched before timing, so a reload measures the engine (read
// bf16, quantize, write kernel tensors), not the disk: the situation of weights arriving from a
// trainer in memory.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <filesystem>

#include "bench_util.h"
#include "qswap/engine/engine.h"
#include "qswap/io/safetensors.h"

namespace qswap::bench {
namespace {

Result<std::unique_ptr<TensorSource>> synthetic_source(const std::filesystem::path& dir, const std::string& preset,
                                                       uint64_t seed) {
  QSWAP_ASSIGN_OR_RETURN(std::filesystem::path path, synthetic_checkpoint(dir, preset, seed));
  QSWAP_ASSIGN_OR_RETURN(std::unique_ptr<TensorSource> source, open_safetensors_dir(path));
  // Touch every page once so the timed runs read memory, not the disk.
  volatile uint8_t sink = 0;
  for (const TensorInfo& t : source->tensors()) {
    QSWAP_ASSIGN_OR_RETURN(std::span<const std::byte> bytes, source->borrow(t));
    for (size_t i = 0; i < bytes.size(); i += 4096) sink = sink + static_cast<uint8_t>(bytes[i]);
  }
  return source;
}

// CPU time of the whole process (every thread), in seconds. On a shared machine it is a steadier
// comparison between versions than wall time: time spent waiting for a core is not in it.
double process_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Row {
  std::string preset, scheme;
  int threads;
  double memcpy_gbs, load_s, reload_s, ingest_gbs, reload_cpu_s;
  size_t bytes_in, kernel_bytes, peak_staging, peak_rss;
};

int run(int argc, char** argv) {
  CLI::App app{"qswap reload benchmark"};
  std::vector<std::string> presets{"0.6b"}, schemes{"none", "fp8", "fp8-channel", "fp8-block", "mxfp8", "int8-channel"};
  std::vector<int> threads{1, 2};
  int reps = 3;
  std::string dir = "/tmp/qswap-bench";
  std::string mode_name = "in-place";
  app.add_option("--presets", presets)->delimiter(',');
  app.add_option("--schemes", schemes)->delimiter(',');
  app.add_option("--threads", threads)->delimiter(',');
  app.add_option("--reps", reps);
  app.add_option("--dir", dir);
  app.add_option("--mode", mode_name, "update mode of the timed reloads")->check(CLI::IsMember({"in-place", "transactional"}));
  CLI11_PARSE(app, argc, argv);
  const UpdateMode mode = mode_name == "transactional" ? UpdateMode::kTransactional : UpdateMode::kInPlace;

  std::vector<Row> rows;
  for (const std::string& preset : presets) {
    auto a = synthetic_source(dir, preset, 1);
    auto b = synthetic_source(dir, preset, 2);
    if (!a.ok() || !b.ok()) {
      fmt::print(stderr, "error: {}\n", (a.ok() ? b.status() : a.status()).to_string());
      return 1;
    }
    Result<ModelConfig> config = load_model_config(*synthetic_checkpoint(dir, preset, 1));  // written above
    for (int t : threads) {
      ThreadPool pool(t);
      const double bw = memcpy_gb_per_s(pool, 512u << 20);
      for (const std::string& scheme : schemes) {
        EngineOptions options;
        options.quant = scheme;
        options.threads = t;
        auto engine = Engine::create(*config, options);
        if (!engine.ok()) {
          fmt::print(stderr, "error: {}\n", engine.status().to_string());
          return 1;
        }
        reset_peak_rss();
        Result<UpdateStats> load = (*engine)->update_weights(**a, UpdateMode::kInPlace);
        if (!load.ok()) {
          fmt::print(stderr, "error: {}\n", load.status().to_string());
          return 1;
        }
        double best = 1e30, best_cpu = 1e30;
        UpdateStats best_stats;
        for (int r = 0; r < reps; ++r) {
          reset_peak_rss();
          const double cpu0 = process_cpu_s();
          Result<UpdateStats> s = (*engine)->update_weights(r % 2 == 0 ? **b : **a, mode);
          best_cpu = std::min(best_cpu, process_cpu_s() - cpu0);
          if (!s.ok()) {
            fmt::print(stderr, "error: {}\n", s.status().to_string());
            return 1;
          }
          if (s->seconds < best) {
            best = s->seconds;
            best_stats = *s;
          }
        }
        rows.push_back(Row{preset, scheme, t, bw, load->seconds, best,
                           static_cast<double>(best_stats.bytes_in) / best / 1e9, best_cpu,
                           static_cast<size_t>(best_stats.bytes_in), (*engine)->weights().allocated_bytes(),
                           best_stats.peak_staging_bytes, best_stats.peak_rss_bytes});
        const Row& row = rows.back();
        fmt::print(stderr, "  {} {} t={} reload {:.3f} s (cpu {:.3f} s)\n", preset, scheme, t, row.reload_s,
                   row.reload_cpu_s);
      }
    }
  }

  fmt::print("\n| model | scheme | threads | memcpy GB/s | load s | reload s | ingest GB/s | ingest / memcpy | "
             "floor s | reload / floor | reload cpu s | peak staging MB | peak RSS MB |\n");
  fmt::print("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const Row& r : rows) {
    // A reload must read the bf16 source once and write the kernel tensors once; memcpy moves each
    // byte read once and written once, so that traffic takes (in + out) / (2 * memcpy) seconds.
    const double floor_s = static_cast<double>(r.bytes_in + r.kernel_bytes) / (2.0 * r.memcpy_gbs * 1e9);
    fmt::print("| {} | {} | {} | {:.2f} | {:.3f} | {:.3f} | {:.2f} | {:.2f} | {:.3f} | {:.2f} | {:.3f} | {:.1f} | {:.0f} |\n",
               r.preset, r.scheme, r.threads, r.memcpy_gbs, r.load_s, r.reload_s, r.ingest_gbs,
               r.ingest_gbs / r.memcpy_gbs, floor_s, r.reload_s / floor_s, r.reload_cpu_s,
               static_cast<double>(r.peak_staging) / 1e6,
               static_cast<double>(r.peak_rss) / 1e6);
  }
  return 0;
}

}  // namespace
}  // namespace qswap::bench

int main(int argc, char** argv) { return qswap::bench::run(argc, argv); }
