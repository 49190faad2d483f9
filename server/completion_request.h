// POST /v1/completions: the request body parsed and checked against the model before anything
// runs. Every error names the field at fault, as OpenAI's API does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qswap/engine/engine.h"
#include "server/api_error.h"

namespace qswap::server {

struct CompletionRequest {
  std::string model;                          // as sent (any name is accepted)
  std::vector<std::vector<int32_t>> prompts;  // token ids, one list per prompt
  int n = 1;                                  // completions per prompt
  SamplingParams sampling;                    // per-choice seed: sampling.seed + choice index
  std::vector<std::string> stop;
  std::optional<int> logprobs;                // alternatives per token (0..kMaxLogprobs)
  bool stream = false;
  bool include_usage = false;                 // stream_options.include_usage
  bool ignore_eos = false;                    // extension: keep going past EOS

  size_t num_choices() const { return prompts.size() * static_cast<size_t>(n); }
};

struct RequestLimits {
  int64_t context = 0;           // the model's max_position_embeddings
  int64_t vocab_size = 0;        // valid prompt ids are [0, vocab_size)
  int64_t max_tokens_limit = 0;  // --max-tokens-limit; 0: only the context limits
};

inline constexpr int kMaxLogprobs = 5;
inline constexpr int kMaxStops = 4;
inline constexpr int kMaxChoices = 128;  // prompts x n

RequestLimits request_limits(const Engine& engine, int64_t max_tokens_limit);

// Parses `body`; text prompts are tokenized with `engine`. Returns the error to send, or fills *out.
std::optional<ApiError> parse_completion_request(std::string_view body, const Engine& engine,
                                                 const RequestLimits& limits, CompletionRequest* out);

}  // namespace qswap::server
