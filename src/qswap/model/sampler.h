// Token sampling: greedy, temperature, top-k, top-p, seeded. Logprobs are those of the model's own
// distribution (log-softmax of the raw logits), which is what an RL trainer compares against.
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
  // Chooses a token; *logprob gets log p(token) under the unmodified distribution.
  int32_t sample(std::span<const float> logits, float* logprob);

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;
};

// log-softmax of logits at `token`, computed stably in double.
float token_logprob(std::span<const float> logits, int32_t token);

// The k most likely tokens under log-softmax(logits), most likely first (ties: lowest id first).
std::vector<TokenLogprob> top_logprobs(std::span<const float> logits, int k);

}  // namespace qswap
