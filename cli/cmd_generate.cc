// qswap generate | ppl | bench: running the model.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "progress.h"
#include "qswap/base/mapped_file.h"
#include "qswap/engine/engine.h"

namespace qswap::cli {
namespace {

struct GenerateArgs : ModelArgs {
  std::string prompt;
  SamplingParams sampling;
  std::vector<std::string> stop;
  bool ignore_eos = false;
};

int run_generate(const GenerateArgs& a) {
  auto engine = open_engine(a, {}, !a.json);
  if (!engine.ok()) return report(engine.status());
  auto ids = (*engine)->tokenize(a.prompt);
  if (!ids.ok()) return report(ids.status());
  GenerateRequest request{*ids, a.sampling, a.stop, a.ignore_eos};
  if (!a.json) fmt::print("{}", a.prompt);
  auto result = (*engine)->generate(request, [&](int32_t, std::string_view piece) {
    if (!a.json) {
      fmt::print("{}", piece);
      std::fflush(stdout);
    }
    return true;
  });
  if (!result.ok()) return report(result.status());
  const GenerateResult& r = *result;
  const double prefill_tps = static_cast<double>(r.prompt_tokens) / std::max(r.prefill_seconds, 1e-9);
  const double decode_tps = static_cast<double>(r.tokens.size()) / std::max(r.decode_seconds, 1e-9);
  if (a.json) {
    nlohmann::json j = {{"text", r.text},           {"token_ids", r.tokens},
                        {"logprobs", r.logprobs},   {"finish_reason", r.finish_reason},
                        {"prompt_ids", *ids},       {"weight_version", r.weight_version},
                        {"quant", a.quant},         {"prefill_tokens_per_s", prefill_tps},
                        {"decode_tokens_per_s", decode_tps}};
    fmt::print("{}\n", j.dump(2));
  } else {
    fmt::print("\n");
    std::fflush(stdout);  // the text's end before the stats, also when both go to one pipe
    fmt::print(stderr, "[{} prompt tokens: {:.1f} tok/s prefill | {} tokens: {:.1f} tok/s decode | finish: {}]\n",
               r.prompt_tokens, prefill_tps, r.tokens.size(), decode_tps, r.finish_reason);
  }
  return 0;
}

struct PplArgs : ModelArgs {
  std::string file;
  int64_t context = 0;  // 0: the model's maximum
  int64_t stride = 0;   // 0: context (non-overlapping windows)
};

int run_ppl(const PplArgs& a) {
  auto engine = open_engine(a, {}, !a.json);
  if (!engine.ok()) return report(engine.status());
  auto text = read_text_file(a.file);
  if (!text.ok()) return report(text.status());
  auto ids = (*engine)->tokenize(*text);
  if (!ids.ok()) return report(ids.status());
  const int64_t context = a.context > 0 ? a.context : (*engine)->config().max_position_embeddings;
  const int64_t stride = a.stride > 0 ? a.stride : context;
  ProgressBar bar("ppl ", !a.json);
  auto r = (*engine)->perplexity(*ids, context, stride, [&bar](int64_t done, int64_t total) {
    bar.update(static_cast<int>(done), static_cast<int>(total), 0);
  });
  bar.finish();
  if (!r.ok()) return report(r.status());
  if (a.json) {
    nlohmann::json j = {{"perplexity", r->perplexity}, {"nll_sum", r->nll_sum},  {"tokens_scored", r->tokens_scored},
                        {"tokens", ids->size()},        {"context", context},     {"stride", stride},
                        {"quant", a.quant},             {"seconds", r->seconds},  {"weight_version", r->weight_version}};
    fmt::print("{}\n", j.dump(2));
  } else {
    fmt::print("perplexity {:.4f} over {} scored tokens ({} tokens, context {}, stride {}, quant {}) in {:.2f} s\n",
               r->perplexity, r->tokens_scored, ids->size(), context, stride, a.quant, r->seconds);
  }
  return 0;
}

struct BenchArgs : ModelArgs {
  std::vector<int64_t> prompt_lengths{16, 64, 256};
  int64_t decode_tokens = 32;
  int reps = 3;
};

int run_bench(const BenchArgs& a) {
  auto engine = open_engine(a, {}, !a.json);
  if (!engine.ok()) return report(engine.status());
  Engine& e = **engine;
  std::mt19937 rng(1);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(e.config().vocab_size - 1));
  nlohmann::json rows = nlohmann::json::array();
  if (!a.json) fmt::print("| prompt | prefill tok/s | decode tok/s | threads | quant |\n|---|---|---|---|---|\n");
  for (int64_t len : a.prompt_lengths) {
    if (len + a.decode_tokens > e.config().max_position_embeddings) continue;
    GenerateRequest request;
    request.prompt.resize(static_cast<size_t>(len));
    for (int32_t& t : request.prompt) t = token(rng);
    request.sampling.max_tokens = a.decode_tokens;
    request.ignore_eos = true;
    double best_prefill = 0, best_decode = 0;
    for (int r = 0; r < a.reps; ++r) {
      auto result = e.generate(request);
      if (!result.ok()) return report(result.status());
      best_prefill = std::max(best_prefill, static_cast<double>(len) / result->prefill_seconds);
      best_decode = std::max(best_decode, static_cast<double>(result->tokens.size()) / result->decode_seconds);
    }
    rows.push_back({{"prompt_tokens", len}, {"prefill_tokens_per_s", best_prefill},
                    {"decode_tokens", a.decode_tokens}, {"decode_tokens_per_s", best_decode}});
    if (!a.json) fmt::print("| {} | {:.1f} | {:.1f} | {} | {} |\n", len, best_prefill, best_decode, e.pool().size(), a.quant);
  }
  if (a.json) {
    nlohmann::json j = {{"model", a.dir}, {"quant", a.quant}, {"threads", e.pool().size()}, {"rows", rows}};
    fmt::print("{}\n", j.dump(2));
  }
  return 0;
}

}  // namespace

void register_generate(CLI::App& app, int& exit_code) {
  auto gen = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate text, streaming tokens");
  add_model_options(cmd, *gen);
  cmd->add_option("--prompt,-p", gen->prompt, "Prompt text")->required();
  cmd->add_option("--max-tokens,-n", gen->sampling.max_tokens, "Tokens to generate")->capture_default_str();
  cmd->add_option("--temperature", gen->sampling.temperature, "0: greedy")->capture_default_str();
  cmd->add_option("--top-k", gen->sampling.top_k, "0: off")->capture_default_str();
  cmd->add_option("--top-p", gen->sampling.top_p)->capture_default_str();
  cmd->add_option("--seed", gen->sampling.seed)->capture_default_str();
  cmd->add_option("--stop", gen->stop, "Stop string (repeatable)");
  cmd->add_flag("--ignore-eos", gen->ignore_eos, "Keep generating past EOS");
  cmd->callback([gen, &exit_code] { exit_code = run_generate(*gen); });

  auto ppl = std::make_shared<PplArgs>();
  cmd = app.add_subcommand("ppl", "Perplexity of a text file (sliding windows)");
  add_model_options(cmd, *ppl);
  cmd->add_option("file", ppl->file, "Text file")->required();
  cmd->add_option("--context,-c", ppl->context, "Window length in tokens (0: the model's maximum)");
  cmd->add_option("--stride,-s", ppl->stride, "Window step (0: the context, non-overlapping)");
  cmd->callback([ppl, &exit_code] { exit_code = run_ppl(*ppl); });

  auto bench = std::make_shared<BenchArgs>();
  cmd = app.add_subcommand("bench", "Prefill and decode tokens/s at several prompt lengths");
  add_model_options(cmd, *bench);
  cmd->add_option("--prompt-lengths", bench->prompt_lengths)->delimiter(',')->capture_default_str();
  cmd->add_option("--decode-tokens", bench->decode_tokens)->capture_default_str();
  cmd->add_option("--reps", bench->reps)->capture_default_str();
  cmd->callback([bench, &exit_code] { exit_code = run_bench(*bench); });
}

}  // namespace qswap::cli
