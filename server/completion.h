// The pieces of a /v1/completions answer shared by the JSON and the streaming (SSE) responses:
// the engine request of each choice, and the JSON of a choice, its logprobs and the usage.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "qswap/engine/engine.h"
#include "server/completion_request.h"

namespace qswap::server {

// A validated request and how its answer is labelled.
struct CompletionJob {
  CompletionRequest request;
  std::string id;        // "cmpl-..."
  int64_t created = 0;   // unix seconds
  std::string model;     // the served model name
};

// Choice `choice` (prompt choice / n, sample choice % n) as an engine request; its seed is the
// request's seed + choice, so a seeded request is reproducible and its choices differ.
GenerateRequest choice_request(const CompletionRequest& request, size_t choice);

// The logprobs object of OpenAI's completions for the tokens of one result:
// tokens (each token decoded alone), token_logprobs, text_offset (code points into the choice's
// text where the token's text begins) and top_logprobs ({token: logprob} of up to `top`
// alternatives, plus the sampled token).
class LogprobsBuilder {
 public:
  LogprobsBuilder(const Tokenizer* tokenizer, const GenerateResult& result, int top);
  nlohmann::json slice(size_t begin, size_t end) const;
  nlohmann::json all() const { return slice(0, tokens_.size()); }
  size_t size() const { return tokens_.size(); }

 private:
  const GenerateResult& result_;
  std::vector<std::string> tokens_;
  std::vector<int64_t> offsets_;
  std::vector<nlohmann::json> top_;
};

// {"id", "object": "text_completion", "created", "model", "weight_version", "choices": []}
nlohmann::json completion_envelope(const CompletionJob& job, uint64_t weight_version);
nlohmann::json choice_json(size_t index, std::string_view text, nlohmann::json logprobs,
                           nlohmann::json finish_reason, uint64_t weight_version);
nlohmann::json usage_json(int64_t prompt_tokens, int64_t completion_tokens);

// Prompt tokens of a request, each prompt counted once (not once per choice), as OpenAI counts.
int64_t prompt_tokens(const CompletionRequest& request);

}  // namespace qswap::server
