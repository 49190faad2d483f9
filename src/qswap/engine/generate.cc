// Engine::generate / perplexity / logits: the forward pass under the engine's weight lock.
#include <algorithm>
#include <chrono>
#include <cmath>

#include "qswap/engine/engine.h"

namespace qswap {
namespace {

constexpr int kMaxTopLogprobs = 20;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Length of the longest suffix of `text` that is a proper prefix of a stop string: text that may
// still turn into a stop string is held back from the stream.
size_t pending_stop_prefix(std::string_view text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const std::string& stop : stops) {
    for (size_t len = std::min(stop.size() - 1, text.size()); len > hold; --len) {
      if (text.substr(text.size() - len) == std::string_view(stop).substr(0, len)) {
        hold = len;
        break;
      }
    }
  }
  return hold;
}

}  // namespace

Result<std::vector<int32_t>> Engine::tokenize(std::string_view text) const {
  if (!tokenizer_) return failed_precondition("the model directory has no tokenizer.json");
  // As Hugging Face tokenizers do by default: the post-processor decides whether a BOS is added.
  return tokenizer_->encode(text, /*add_special_tokens=*/true);
}

Result<GenerateResult> Engine::generate(const GenerateRequest& request, const TokenCallback& on_token) {
  std::shared_lock<std::shared_mutex> lock = lock_for_reading();
  QSWAP_RETURN_IF_ERROR(check_servable().with_context("cannot generate"));
  const ModelConfig& c = config();
  const int64_t prompt_len = static_cast<int64_t>(request.prompt.size());
  if (prompt_len == 0) return invalid_argument("the prompt is empty");
  if (prompt_len >= c.max_position_embeddings) {
    return out_of_range("the prompt has {} tokens; the model's context is {}", prompt_len, c.max_position_embeddings);
  }
  if (request.sampling.max_tokens <= 0) return invalid_argument("max_tokens must be positive");
  const SamplingParams& sp = request.sampling;
  if (!std::isfinite(sp.temperature) || sp.temperature < 0) {
    return invalid_argument("temperature {} must be a finite number >= 0", sp.temperature);
  }
  if (!(sp.top_p > 0 && sp.top_p <= 1)) return invalid_argument("top_p {} must be in (0, 1]", sp.top_p);
  if (sp.top_k < 0) return invalid_argument("top_k {} must be >= 0", sp.top_k);
  if (request.sampling.top_logprobs < 0 || request.sampling.top_logprobs > kMaxTopLogprobs) {
    return invalid_argument("top_logprobs {} must be in [0, {}]", request.sampling.top_logprobs, kMaxTopLogprobs);
  }
  if (!request.stop.empty() && !tokenizer_) return failed_precondition("stop strings need a tokenizer");
  for (const std::string& s : request.stop) {
    if (s.empty()) return invalid_argument("a stop string is empty");
  }

  // The prefill's time includes setting up the request's cache: a client waits for both.
  auto t0 = std::chrono::steady_clock::now();
  const int64_t capacity = std::min(c.max_position_embeddings, prompt_len + request.sampling.max_tokens);
  KvCache cache(c, capacity);
  cache.reset(weight_version());
  std::vector<int64_t> eos = c.eos_token_ids;
  if (tokenizer_ && tokenizer_->eos_id()) eos.push_back(*tokenizer_->eos_id());

  GenerateResult result;
  result.weight_version = weight_version();
  result.prompt_tokens = prompt_len;
  Sampler sampler(request.sampling);
  std::unique_ptr<StreamingDecoder> decoder;
  if (tokenizer_) decoder = std::make_unique<StreamingDecoder>(*tokenizer_, /*skip_special_tokens=*/true);
  std::string text;       // everything decoded so far
  size_t emitted = 0;     // bytes of `text` handed to on_token
  std::vector<float> logits;

  QSWAP_RETURN_IF_ERROR(model_->forward(request.prompt, cache, logits, false, &pool_));
  result.prefill_seconds = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  result.finish_reason = "length";
  while (true) {
    float logprob = 0;
    const int32_t token = sampler.sample(logits, &logprob);
    const bool is_eos = !request.ignore_eos && std::find(eos.begin(), eos.end(), token) != eos.end();
    if (is_eos) {
      result.finish_reason = "stop";
      break;
    }
    result.tokens.push_back(token);
    result.logprobs.push_back(logprob);
    if (request.sampling.top_logprobs > 0) {
      result.top_logprobs.push_back(top_logprobs(logits, request.sampling.top_logprobs));
    }
    if (decoder) text += decoder->push(token);
    bool stop_hit = false;
    if (!request.stop.empty()) {
      size_t cut = std::string::npos;
      for (const std::string& s : request.stop) {
        size_t at = text.find(s, emitted > s.size() ? emitted - s.size() : 0);
        cut = std::min(cut, at);
      }
      if (cut != std::string::npos) {
        text.resize(cut);
        stop_hit = true;
      }
    }
    const size_t ready = stop_hit ? text.size() : text.size() - pending_stop_prefix(text, request.stop);
    std::string_view piece = std::string_view(text).substr(std::min(emitted, ready), ready > emitted ? ready - emitted : 0);
    emitted = std::max(emitted, ready);
    if (on_token && !on_token(token, piece)) {
      result.finish_reason = "stop";
      break;
    }
    if (stop_hit) {
      result.finish_reason = "stop";
      break;
    }
    if (static_cast<int64_t>(result.tokens.size()) >= request.sampling.max_tokens || cache.size() >= capacity) break;
    QSWAP_RETURN_IF_ERROR(model_->forward(std::span<const int32_t>(&token, 1), cache, logits, false, &pool_));
  }
  if (decoder && result.finish_reason != "stop") text += decoder->flush();
  result.text = std::move(text);
  result.decode_seconds = seconds_since(t0);
  return result;
}

Result<PerplexityResult> Engine::perplexity(std::span<const int32_t> tokens, int64_t context, int64_t stride,
                                            const std::function<void(int64_t, int64_t)>& progress) {
  std::shared_lock<std::shared_mutex> lock = lock_for_reading();
  QSWAP_RETURN_IF_ERROR(check_servable().with_context("cannot score"));
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n < 2) return invalid_argument("perplexity needs at least 2 tokens, got {}", n);
  if (context < 2 || context > config().max_position_embeddings) {
    return invalid_argument("context {} must be in [2, {}]", context, config().max_position_embeddings);
  }
  if (stride < 1 || stride > context) return invalid_argument("stride {} must be in [1, context]", stride);
  PerplexityResult r;
  r.weight_version = weight_version();
  auto t0 = std::chrono::steady_clock::now();
  KvCache cache(config(), context);
  std::vector<float> logits;
  const int64_t vocab = config().vocab_size;
  int64_t scored_until = 0;  // tokens [0, scored_until) are scored (token 0 never is)
  for (int64_t begin = 0; scored_until < n; begin += stride) {
    const int64_t end = std::min(begin + context, n);
    cache.reset(r.weight_version);
    QSWAP_RETURN_IF_ERROR(model_->forward(tokens.subspan(static_cast<size_t>(begin), static_cast<size_t>(end - begin)),
                                          cache, logits, true, &pool_));
    // Position p of the window predicts token begin + p + 1; score the ones not scored yet.
    for (int64_t target = std::max(scored_until, begin + 1); target < end; ++target) {
      const int64_t p = target - begin - 1;
      std::span<const float> row(logits.data() + p * vocab, static_cast<size_t>(vocab));
      r.nll_sum -= token_logprob(row, tokens[static_cast<size_t>(target)]);
      ++r.tokens_scored;
    }
    scored_until = end;
    if (progress) progress(scored_until, n);
  }
  r.perplexity = std::exp(r.nll_sum / static_cast<double>(r.tokens_scored));
  r.seconds = seconds_since(t0);
  return r;
}

Result<std::vector<float>> Engine::logits(std::span<const int32_t> tokens, bool all_positions) {
  std::shared_lock<std::shared_mutex> lock = lock_for_reading();
  QSWAP_RETURN_IF_ERROR(check_servable().with_context("cannot run the model"));
  if (static_cast<int64_t>(tokens.size()) > config().max_position_embeddings) {
    return out_of_range("{} tokens exceed the context of {}", tokens.size(), config().max_position_embeddings);
  }
  KvCache cache(config(), static_cast<int64_t>(tokens.size()));
  std::vector<float> out;
  QSWAP_RETURN_IF_ERROR(model_->forward(tokens, cache, out, all_positions, &pool_));
  return out;
}

}  // namespace qswap
