// bench_forward: prefill and decode tokens/s of a synthetic Qwen3-shaped model per scheme and
// thread count, beside the floors measured in the same run (right before and after each scheme's
// runs, the higher value):
//   decode  — every weight byte a token reads (linear kernel tensors + the bf16 lm_head) over the
//             measured read bandwidth: the memory-bound limit of one token;
//   prefill — the prompt's FLOPs (2 per weight per token, attention, one lm_head row) over the
//             measured f32 FMA peak (the unit the GEMM runs on).
//
//   build/bench/bench_forward [--preset 0.6b] [--schemes none,fp8] [--threads 1,2] [--prompt 128]
//                             [--decode 32] [--reps 3] [--dir /tmp/qswap-bench]
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "bench_util.h"
#include "qswap/engine/engine.h"

namespace qswap::bench {
namespace {

// Bytes one decode step reads: the linear layers' kernel tensors and the lm_head.
double decode_bytes(const Engine& e) {
  double bytes = 0;
  const auto& params = e.weight_map().params();
  for (size_t p = 0; p < params.size(); ++p) {
    if (!params[p].is_linear && params[p].kind != ParamKind::kLmHead) continue;
    for (const TensorView& v : e.weights().views(static_cast<int>(p))) bytes += static_cast<double>(v.nbytes());
  }
  const ModelConfig& c = e.config();
  if (c.tie_word_embeddings) bytes += static_cast<double>(c.vocab_size * c.hidden_size * 2);
  return bytes;
}

// FLOPs of a prefill of `p` tokens: 2 per linear weight per token, q·k and p·v over the causal
// half, and the lm_head for the last position only.
double prefill_flops(const Engine& e, int64_t p) {
  const ModelConfig& c = e.config();
  double linear = 0;
  for (const ParamSpec& spec : e.weight_map().params()) {
    if (spec.is_linear) linear += static_cast<double>(num_elements(spec.shape));
  }
  const double attention = 2.0 * 2.0 * static_cast<double>(c.num_hidden_layers) * static_cast<double>(c.q_dim()) *
                           static_cast<double>(p) * static_cast<double>(p + 1) / 2.0;
  return 2.0 * linear * static_cast<double>(p) + attention + 2.0 * static_cast<double>(c.vocab_size * c.hidden_size);
}

// Best prefill time (which includes the request's cache set-up) over `reps` runs.
double time_prefill(Engine& engine, const GenerateRequest& request, int reps) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    auto result = engine.generate(request, [](int32_t, std::string_view) { return false; });  // stop at the first token
    if (result.ok()) best = std::min(best, result->prefill_seconds);
  }
  return best;
}

int run(int argc, char** argv) {
  CLI::App app{"qswap forward benchmark"};
  std::string preset = "0.6b", dir = "/tmp/qswap-bench";
  std::vector<std::string> schemes{"none", "fp8", "fp8-channel", "fp8-block", "mxfp8", "int8-channel"};
  std::vector<int> threads{1, 2};
  int64_t prompt = 128, decode = 32;
  int reps = 3;
  app.add_option("--preset", preset);
  app.add_option("--schemes", schemes)->delimiter(',');
  app.add_option("--threads", threads)->delimiter(',');
  app.add_option("--prompt", prompt);
  app.add_option("--decode", decode);
  app.add_option("--reps", reps);
  app.add_option("--dir", dir);
  CLI11_PARSE(app, argc, argv);

  Result<std::filesystem::path> written = synthetic_checkpoint(dir, preset, 1);
  if (!written.ok()) {
    fmt::print(stderr, "error: {}\n", written.status().to_string());
    return 1;
  }
  const std::filesystem::path model = *written;
  std::string setup_note;
  fmt::print("| model | scheme | threads | prefill tok/s | prefill floor tok/s | prefill / floor | decode tok/s | "
             "decode floor tok/s | decode / floor | read GB/s | FMA GFLOP/s |\n");
  fmt::print("|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (int t : threads) {
    for (const std::string& scheme : schemes) {
      EngineOptions options;
      options.quant = scheme;
      options.threads = t;
      auto engine = Engine::load(model, options);
      if (!engine.ok()) {
        fmt::print(stderr, "error: {}\n", engine.status().to_string());
        return 1;
      }
      GenerateRequest request;
      std::mt19937 rng(1);
      std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>((*engine)->config().vocab_size - 1));
      for (int64_t i = 0; i < prompt; ++i) request.prompt.push_back(token(rng));
      request.sampling.max_tokens = decode;
      request.ignore_eos = true;
      double prefill_s = 1e30, decode_s = 1e30;
      int64_t decoded = 0;
      // The limits right before and right after this scheme's runs, the higher of each: on a
      // shared machine they move, and a ratio means something only against the same moments'.
      double bw = read_gb_per_s(t, size_t{1} << 30);
      double peak = fma_peak_gflops(t);
      for (int r = 0; r < reps; ++r) {
        auto result = (*engine)->generate(request);
        if (!result.ok()) {
          fmt::print(stderr, "error: {}\n", result.status().to_string());
          return 1;
        }
        prefill_s = std::min(prefill_s, result->prefill_seconds);
        // The first token comes from the prefill's logits; the decode steps are the rest.
        decoded = static_cast<int64_t>(result->tokens.size()) - 1;
        decode_s = std::min(decode_s, result->decode_seconds);
      }
      bw = std::max(bw, read_gb_per_s(t, size_t{1} << 30));
      peak = std::max(peak, fma_peak_gflops(t));
      const double prefill_tps = static_cast<double>(prompt) / prefill_s;
      const double prefill_floor = peak > 0 ? static_cast<double>(prompt) / (prefill_flops(**engine, prompt) / (peak * 1e9)) : 0;
      const double decode_tps = static_cast<double>(decoded) / decode_s;
      const double decode_floor = bw * 1e9 / decode_bytes(**engine);
      fmt::print("| {} | {} | {} | {:.1f} | {:.1f} | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {:.1f} | {:.0f} |\n", preset,
                 scheme, t, prefill_tps, prefill_floor, prefill_floor > 0 ? prefill_tps / prefill_floor : 0.0,
                 decode_tps, decode_floor, decode_tps / decode_floor, bw, peak);
      std::fflush(stdout);
      if (&scheme == &schemes.front() && t == threads.front()) {
        // A request's fixed cost: the same prompt, room for 1 or 4096 new tokens, the first generated.
        GenerateRequest reserve = request;
        reserve.sampling.max_tokens = 1;
        const double small = time_prefill(**engine, reserve, reps);
        reserve.sampling.max_tokens = 4096;
        const double large = time_prefill(**engine, reserve, reps);
        setup_note = fmt::format(
            "prefill of {} tokens with max_tokens 1: {:.1f} ms; with max_tokens 4096: {:.1f} ms ({}, {} thread{})",
            prompt, small * 1e3, large * 1e3, scheme, t, t == 1 ? "" : "s");
      }
    }
  }
  if (!setup_note.empty()) fmt::print("\n{}\n", setup_note);
  return 0;
}

}  // namespace
}  // namespace qswap::bench

int main(int argc, char** argv) { return qswap::bench::run(argc, argv); }
