#include "server/completion_request.h"

#include <algorithm>
#include <array>
#include <limits>
#include <random>

#include <fmt/format.h>

namespace qswap::server {
namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 20> kKnownFields = {
    "model", "prompt", "n", "max_tokens", "temperature", "top_p", "top_k", "seed", "stop", "logprobs", "echo",
    "stream", "stream_options", "ignore_eos", "user", "suffix", "best_of", "presence_penalty", "frequency_penalty",
    "logit_bias"};

std::string_view kind_of(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a number";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    default: return "an unsupported value";
  }
}

ApiError wrong_type(std::string_view field, std::string_view expected, const json& v) {
  return invalid_request(std::string(field), fmt::format("'{}' must be {}, got {}", field, expected, kind_of(v)),
                         "invalid_type");
}

// The fields of the body object; absent and null fields keep the caller's default.
class Fields {
 public:
  explicit Fields(const json& body) : body_(body) {}

  const json* find(std::string_view key) const {
    auto it = body_.find(key);
    return it == body_.end() || it->is_null() ? nullptr : &*it;
  }

  std::optional<ApiError> get_bool(std::string_view key, bool* out) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) return wrong_type(key, "a boolean", *v);
    *out = v->get<bool>();
    return std::nullopt;
  }

  std::optional<ApiError> get_int(std::string_view key, int64_t lo, int64_t hi, int64_t* out) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_number_integer()) return wrong_type(key, "an integer", *v);
    const bool too_big = v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(hi);
    const int64_t x = too_big ? hi : v->get<int64_t>();
    if (too_big || x < lo || x > hi) {
      return invalid_request(std::string(key), fmt::format("'{}' must be in [{}, {}], got {}", key, lo, hi, v->dump()));
    }
    *out = x;
    return std::nullopt;
  }

  std::optional<ApiError> get_float(std::string_view key, double lo, double hi, bool lo_open, float* out) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_number()) return wrong_type(key, "a number", *v);
    const double x = v->get<double>();
    if (!(lo_open ? x > lo : x >= lo) || !(x <= hi)) {
      return invalid_request(std::string(key),
                             fmt::format("'{}' must be in {}{}, {}], got {}", key, lo_open ? "(" : "[", lo, hi, x));
    }
    *out = static_cast<float>(x);
    return std::nullopt;
  }

 private:
  const json& body_;
};

std::optional<ApiError> check_prompt_ids(const json& list, const std::string& name, const RequestLimits& limits,
                                         std::vector<int32_t>* ids) {
  if (list.empty()) return invalid_request("prompt", fmt::format("{} is empty", name), "empty_prompt");
  ids->reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    const json& v = list[i];
    if (!v.is_number_integer()) {
      return invalid_request("prompt", fmt::format("{}[{}] must be a token id (an integer), got {}", name, i, kind_of(v)),
                             "invalid_type");
    }
    const bool in_vocab = v.is_number_unsigned() ? v.get<uint64_t>() < static_cast<uint64_t>(limits.vocab_size)
                                                 : v.get<int64_t>() >= 0 && v.get<int64_t>() < limits.vocab_size;
    if (!in_vocab) {
      return invalid_request("prompt", fmt::format("{}[{}]: token id {} is outside the vocabulary [0, {})", name, i,
                                                   v.dump(), limits.vocab_size));
    }
    ids->push_back(static_cast<int32_t>(v.get<int64_t>()));
  }
  return std::nullopt;
}

std::optional<ApiError> tokenize_prompt(const std::string& text, const std::string& name, const Engine& engine,
                                        std::vector<int32_t>* ids) {
  if (text.empty()) return invalid_request("prompt", fmt::format("{} is empty", name), "empty_prompt");
  Result<std::vector<int32_t>> tokens = engine.tokenize(text);
  if (!tokens.ok()) {
    return invalid_request("prompt", fmt::format("{} cannot be tokenized ({}); send token ids instead", name,
                                                 tokens.status().message()));
  }
  if (tokens->empty()) return invalid_request("prompt", fmt::format("{} has no tokens", name), "empty_prompt");
  *ids = std::move(tokens).value();
  return std::nullopt;
}

// prompt: "text" | [ids] | ["text", ...] | [[ids], ...]
std::optional<ApiError> parse_prompts(const json* prompt, const Engine& engine, const RequestLimits& limits,
                                      std::vector<std::vector<int32_t>>* prompts) {
  if (!prompt) return invalid_request("prompt", "'prompt' is required", "missing_required_parameter");
  if (prompt->is_string()) {
    prompts->emplace_back();
    return tokenize_prompt(prompt->get<std::string>(), "prompt", engine, &prompts->back());
  }
  if (!prompt->is_array()) {
    return wrong_type("prompt", "a string, a list of token ids, a list of strings or a list of token-id lists", *prompt);
  }
  if (prompt->empty()) return invalid_request("prompt", "prompt is empty", "empty_prompt");
  const json& first = prompt->front();
  if (first.is_number_integer()) {
    prompts->emplace_back();
    return check_prompt_ids(*prompt, "prompt", limits, &prompts->back());
  }
  for (size_t i = 0; i < prompt->size(); ++i) {
    const json& item = (*prompt)[i];
    const std::string name = fmt::format("prompt[{}]", i);
    if (item.type() != first.type() || !(item.is_string() || item.is_array())) {
      return invalid_request("prompt",
                             fmt::format("{} is {}; a prompt list holds only strings or only token-id lists", name,
                                         kind_of(item)),
                             "invalid_type");
    }
    prompts->emplace_back();
    std::optional<ApiError> error = item.is_string()
                                        ? tokenize_prompt(item.get<std::string>(), name, engine, &prompts->back())
                                        : check_prompt_ids(item, name, limits, &prompts->back());
    if (error) return error;
  }
  return std::nullopt;
}

std::optional<ApiError> parse_stop(const json* stop, std::vector<std::string>* out) {
  if (!stop) return std::nullopt;
  if (stop->is_string()) {
    if (stop->get_ref<const std::string&>().empty()) return invalid_request("stop", "'stop' is an empty string");
    out->push_back(stop->get<std::string>());
    return std::nullopt;
  }
  if (!stop->is_array()) return wrong_type("stop", "a string or a list of strings", *stop);
  if (stop->size() > kMaxStops) {
    return invalid_request("stop", fmt::format("'stop' has {} strings; at most {} are allowed", stop->size(), kMaxStops));
  }
  for (size_t i = 0; i < stop->size(); ++i) {
    const json& s = (*stop)[i];
    if (!s.is_string()) return wrong_type(fmt::format("stop[{}]", i), "a string", s);
    if (s.get_ref<const std::string&>().empty()) {
      return invalid_request("stop", fmt::format("'stop[{}]' is an empty string", i));
    }
    out->push_back(s.get<std::string>());
  }
  return std::nullopt;
}

// Parameters of OpenAI's API that qswap does not implement: accepted only at their neutral value.
std::optional<ApiError> check_unsupported(const Fields& f, int64_t n) {
  if (const json* v = f.find("suffix")) {
    return invalid_request("suffix", fmt::format("'suffix' is not supported (got {})", kind_of(*v)), "unsupported");
  }
  for (const char* key : {"presence_penalty", "frequency_penalty"}) {
    const json* v = f.find(key);
    if (v && !(v->is_number() && v->get<double>() == 0.0)) {
      return invalid_request(key, fmt::format("'{}' is not supported; only 0 is accepted", key), "unsupported");
    }
  }
  if (const json* v = f.find("logit_bias"); v && !(v->is_object() && v->empty())) {
    return invalid_request("logit_bias", "'logit_bias' is not supported; only an empty object is accepted",
                           "unsupported");
  }
  if (const json* v = f.find("best_of"); v && !(v->is_number_integer() && v->get<int64_t>() == n)) {
    return invalid_request("best_of", "'best_of' is not supported; only a value equal to 'n' is accepted",
                           "unsupported");
  }
  if (const json* v = f.find("user"); v && !v->is_string()) return wrong_type("user", "a string", *v);
  return std::nullopt;
}

std::optional<ApiError> parse_fields(const json& body, const Engine& engine, const RequestLimits& limits,
                                     CompletionRequest* r) {
  for (const auto& [key, value] : body.items()) {
    if (std::find(kKnownFields.begin(), kKnownFields.end(), key) == kKnownFields.end()) {
      return invalid_request(key, fmt::format("unrecognized request argument supplied: '{}'", key), "unknown_parameter");
    }
  }
  const Fields f(body);
  if (const json* v = f.find("model")) {
    if (!v->is_string()) return wrong_type("model", "a string", *v);
    r->model = v->get<std::string>();
  }
  int64_t n = 1;
  if (auto e = f.get_int("n", 1, kMaxChoices, &n)) return e;
  r->n = static_cast<int>(n);
  if (auto e = check_unsupported(f, n)) return e;

  bool echo = false;
  if (auto e = f.get_bool("echo", &echo)) return e;
  if (echo) return invalid_request("echo", "'echo' is not supported; only false is accepted", "unsupported");
  if (auto e = f.get_bool("stream", &r->stream)) return e;
  if (const json* v = f.find("stream_options")) {
    if (!r->stream) return invalid_request("stream_options", "'stream_options' is only allowed with \"stream\": true");
    if (!v->is_object()) return wrong_type("stream_options", "an object", *v);
    for (const auto& [key, value] : v->items()) {
      if (key != "include_usage") {
        return invalid_request("stream_options", fmt::format("unrecognized field 'stream_options.{}'", key),
                               "unknown_parameter");
      }
      if (!value.is_boolean()) return wrong_type("stream_options.include_usage", "a boolean", value);
      r->include_usage = value.get<bool>();
    }
  }
  if (auto e = f.get_bool("ignore_eos", &r->ignore_eos)) return e;

  r->sampling.temperature = 1.0f;  // OpenAI's default
  if (auto e = f.get_float("temperature", 0.0, 2.0, false, &r->sampling.temperature)) return e;
  if (auto e = f.get_float("top_p", 0.0, 1.0, true, &r->sampling.top_p)) return e;
  int64_t top_k = 0;
  if (auto e = f.get_int("top_k", -1, std::numeric_limits<int32_t>::max(), &top_k)) return e;
  r->sampling.top_k = std::max<int64_t>(top_k, 0);  // -1 and 0: no limit
  if (const json* v = f.find("seed")) {
    if (!v->is_number_integer()) return wrong_type("seed", "an integer", *v);
    r->sampling.seed = v->is_number_unsigned() ? v->get<uint64_t>() : static_cast<uint64_t>(v->get<int64_t>());
  } else {
    r->sampling.seed = (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  }
  if (f.find("logprobs")) {
    int64_t k = 0;
    if (auto e = f.get_int("logprobs", 0, kMaxLogprobs, &k)) return e;
    r->logprobs = static_cast<int>(k);
  }
  if (auto e = parse_stop(f.find("stop"), &r->stop)) return e;

  if (auto e = parse_prompts(f.find("prompt"), engine, limits, &r->prompts)) return e;
  if (r->num_choices() > kMaxChoices) {
    return invalid_request("n", fmt::format("{} prompts x n = {} completions; at most {} are allowed per request",
                                            r->prompts.size(), r->num_choices(), kMaxChoices));
  }
  int64_t longest = 0;
  for (size_t i = 0; i < r->prompts.size(); ++i) {
    const int64_t len = static_cast<int64_t>(r->prompts[i].size());
    longest = std::max(longest, len);
    if (len >= limits.context) {
      return invalid_request("prompt",
                             fmt::format("{} has {} tokens, but the model's context is {} tokens",
                                         r->prompts.size() > 1 ? fmt::format("prompt[{}]", i) : "the prompt", len,
                                         limits.context),
                             "context_length_exceeded");
    }
  }
  if (!r->stop.empty() && !engine.tokenizer()) {
    return invalid_request("stop", "stop strings need the model's tokenizer.json, which this model lacks");
  }

  // max_tokens: absent 16 (OpenAI's default), null: the rest of the context.
  const int64_t room = limits.context - longest;
  const int64_t cap = limits.max_tokens_limit > 0 ? std::min(limits.max_tokens_limit, room) : room;
  const json* max_tokens = f.find("max_tokens");
  if (!max_tokens) {
    r->sampling.max_tokens = body.contains("max_tokens") ? cap : 16;
  } else {
    int64_t m = 0;
    if (auto e = f.get_int("max_tokens", 1, std::numeric_limits<int64_t>::max(), &m)) return e;
    if (limits.max_tokens_limit > 0 && m > limits.max_tokens_limit) {
      return invalid_request("max_tokens", fmt::format("'max_tokens' is {}, more than this server's limit of {}", m,
                                                       limits.max_tokens_limit));
    }
    r->sampling.max_tokens = m;
  }
  if (longest + r->sampling.max_tokens > limits.context) {
    return invalid_request("max_tokens",
                           fmt::format("this model's context is {} tokens, but the prompt has {} tokens and "
                                       "max_tokens is {} ({} in all)",
                                       limits.context, longest, r->sampling.max_tokens,
                                       longest + r->sampling.max_tokens),
                           "context_length_exceeded");
  }
  return std::nullopt;
}

}  // namespace

RequestLimits request_limits(const Engine& engine, int64_t max_tokens_limit) {
  return RequestLimits{engine.config().max_position_embeddings, engine.config().vocab_size, max_tokens_limit};
}

std::optional<ApiError> parse_completion_request(std::string_view body, const Engine& engine,
                                                 const RequestLimits& limits, CompletionRequest* out) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {
    return invalid_request("", fmt::format("the request body is not valid JSON: {}", e.what()), "invalid_json");
  }
  if (!j.is_object()) {
    return invalid_request("", fmt::format("the request body must be a JSON object, got {}", kind_of(j)),
                           "invalid_type");
  }
  *out = CompletionRequest{};
  return parse_fields(j, engine, limits, out);
}

}  // namespace qswap::server
