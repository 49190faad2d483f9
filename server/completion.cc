#include "server/completion.h"

#include <algorithm>
#include <memory>

#include <fmt/format.h>

namespace qswap::server {
namespace {

int64_t count_code_points(std::string_view text) {
  int64_t n = 0;
  for (char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

std::string token_string(const Tokenizer* tokenizer, int32_t id) {
  if (!tokenizer) return fmt::format("token_id:{}", id);
  return tokenizer->decode(std::span<const int32_t>(&id, 1), /*skip_special_tokens=*/false);
}

}  // namespace

GenerateRequest choice_request(const CompletionRequest& request, size_t choice) {
  GenerateRequest g;
  g.prompt = request.prompts[choice / static_cast<size_t>(request.n)];
  g.sampling = request.sampling;
  g.sampling.seed = request.sampling.seed + choice;
  g.sampling.top_logprobs = request.logprobs.value_or(0);
  g.stop = request.stop;
  g.ignore_eos = request.ignore_eos;
  return g;
}

LogprobsBuilder::LogprobsBuilder(const Tokenizer* tokenizer, const GenerateResult& result, int top)
    : result_(result) {
  // Where each token's text begins in the choice's text: replay the decoding generate() did.
  const int64_t text_length = count_code_points(result.text);
  int64_t offset = 0;
  std::unique_ptr<StreamingDecoder> decoder;
  if (tokenizer) decoder = std::make_unique<StreamingDecoder>(*tokenizer, /*skip_special_tokens=*/true);
  for (size_t i = 0; i < result.tokens.size(); ++i) {
    const int32_t id = result.tokens[i];
    tokens_.push_back(token_string(tokenizer, id));
    offsets_.push_back(std::min(offset, text_length));
    if (decoder) offset += count_code_points(decoder->push(id));

    // The `top` most likely tokens and the sampled one; of two ids that decode alike, the more
    // likely is kept, except that the sampled token's own logprob always shows.
    nlohmann::json alternatives = nlohmann::json::object();
    if (i < result.top_logprobs.size()) {
      for (const TokenLogprob& t : result.top_logprobs[i]) {
        if (static_cast<int>(alternatives.size()) >= top) break;
        alternatives.emplace(token_string(tokenizer, t.token), t.logprob);
      }
    }
    alternatives[tokens_.back()] = result.logprobs[i];
    top_.push_back(std::move(alternatives));
  }
}

nlohmann::json LogprobsBuilder::slice(size_t begin, size_t end) const {
  end = std::min(end, tokens_.size());
  nlohmann::json tokens = nlohmann::json::array(), logprobs = nlohmann::json::array(),
                 offsets = nlohmann::json::array(), top = nlohmann::json::array();
  for (size_t i = begin; i < end; ++i) {
    tokens.push_back(tokens_[i]);
    logprobs.push_back(result_.logprobs[i]);
    offsets.push_back(offsets_[i]);
    top.push_back(top_[i]);
  }
  return {{"tokens", tokens}, {"token_logprobs", logprobs}, {"text_offset", offsets}, {"top_logprobs", top}};
}

nlohmann::json completion_envelope(const CompletionJob& job, uint64_t weight_version) {
  return {{"id", job.id},
          {"object", "text_completion"},
          {"created", job.created},
          {"model", job.model},
          {"weight_version", weight_version},
          {"choices", nlohmann::json::array()}};
}

nlohmann::json choice_json(size_t index, std::string_view text, nlohmann::json logprobs, nlohmann::json finish_reason,
                           uint64_t weight_version) {
  return {{"index", index},
          {"text", text},
          {"logprobs", std::move(logprobs)},
          {"finish_reason", std::move(finish_reason)},
          {"weight_version", weight_version}};
}

nlohmann::json usage_json(int64_t prompt_tokens, int64_t completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

int64_t prompt_tokens(const CompletionRequest& request) {
  int64_t n = 0;
  for (const auto& p : request.prompts) n += static_cast<int64_t>(p.size());
  return n;
}

}  // namespace qswap::server
