// Token sampling: greedy, temperature, top-k, top-p, seeded. Logprobs are those of the model's own
// distribution (log-softmax of the raw logits), which is what an RL trainer compares against.
//
// Per token the work is O(vocab) vector passes (kernels/ops.h) and never a sort of the vocabulary:
// plain temperature sampling draws from exp((l - max) / T) by a block-wise scan, top-k selects with
// a heap of k, and top-p sorts only the tokens above a probability threshold whose mass reaches
// top_p. The buffers are members, so a sampler reused across tokens allocates nothing.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace qswap {

struct SamplingParams {
  int64_t max_tokens = 16;
  float temperature = 0.0f;  // 0: greedy
  int64_t top_k = 0;         // 0: no limit
  float top_p = 1.0f;
  uint64_t seed = 0;
  int top_logprobs = 0;      // alternatives reported per generated token (OpenAI's `logprobs`)
};

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}
  // Chooses a token; *logprob gets log p(token) under the unmodified distribution. The same seed
  // and logits give the same tokens. Greedy (temperature 0, or one so small that 1/T overflows)
  // takes the lowest id of the max. Where the tempered distribution is undefined (a NaN logit
  // among those sampled, a +inf, all -inf) it falls back to the greedy choice over the non-NaN
  // values.
  int32_t sample(std::span<const float> logits, float* logprob);

  // The tokens sample() keeps at temperature > 0 after top-k and top-p, most likely first (ties:
  // lowest id first); one of probability 0 (a -inf logit inside the top k) is never drawn. The
  // greedy choice alone where sample() is greedy. Sorts the whole vocabulary when nothing
  // truncates it: for tests and diagnostics, not the decode loop.
  std::vector<int32_t> support(std::span<const float> logits);

 private:
  // Fills kept_ (ids, most likely first) and kept_weights_ with the support under top-k / top-p;
  // returns false when the weights are undefined or nothing is kept (then sample() is greedy).
  bool truncate(std::span<const float> logits, float max, float inv_t);
  // Draws from all of weights_ (block sums in block_sums_, total `total`).
  int32_t draw_full(double total);
  // Draws from kept_ with kept_weights_.
  int32_t draw_kept();

  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<float> weights_;        // [vocab] exp((l - max) / T)
  std::vector<double> block_sums_;    // [vocab / kExpBlock] sums of weights_
  std::vector<int32_t> kept_;         // top-k / top-p candidates, then the support
  std::vector<double> kept_weights_;  // their weights
};

// log-softmax of logits at `token` (logit - log_sum_exp, kernels/ops.h; within 2e-6 of the
// double-precision value).
float token_logprob(std::span<const float> logits, int32_t token);

// The k most likely tokens under log-softmax(logits), most likely first (ties: lowest id first).
std::vector<TokenLogprob> top_logprobs(std::span<const float> logits, int k);

}  // namespace qswap
