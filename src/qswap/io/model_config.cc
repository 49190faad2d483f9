#include "qswap/io/model_config.h"

#include <nlohmann/json.hpp>

#include "qswap/base/mapped_file.h"

namespace qswap {
namespace {

using nlohmann::json;

struct ArchEntry {
  std::string_view name;
  Arch arch;
};
constexpr ArchEntry kArchitectures[] = {
    {"LlamaForCausalLM", Arch::kLlama},
    {"Qwen2ForCausalLM", Arch::kQwen2},
    {"Qwen3ForCausalLM", Arch::kQwen3},
};

// Reads config keys with errors that name the file and the key.
class ConfigReader {
 public:
  ConfigReader(const json& j, std::string_view origin) : j_(j), origin_(origin) {}

  Result<int64_t> required_int(const char* key) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return invalid_argument("{}: missing required key '{}'", origin_, key);
    return positive_int(key, *it);
  }
  Result<int64_t> optional_int(const char* key, int64_t fallback) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return fallback;
    return positive_int(key, *it);
  }
  Result<double> optional_number(const json& obj, const char* key, double fallback) const {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return fallback;
    if (!it->is_number()) return invalid_argument("{}: key '{}' must be a number, got {}", origin_, key, it->dump());
    return it->get<double>();
  }
  Result<bool> optional_bool(const char* key, bool fallback) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) return invalid_argument("{}: key '{}' must be a boolean, got {}", origin_, key, it->dump());
    return it->get<bool>();
  }
  const std::string& origin() const { return origin_; }

 private:
  Result<int64_t> positive_int(const char* key, const json& v) const {
    if (!v.is_number_integer() || v.get<int64_t>() <= 0) {
      return invalid_argument("{}: key '{}' must be a positive integer, got {}", origin_, key, v.dump());
    }
    return v.get<int64_t>();
  }

  const json& j_;
  std::string origin_;
};

Result<Arch> parse_architecture(const json& j, std::string_view origin) {
  auto it = j.find("architectures");
  if (it == j.end() || !it->is_array() || it->empty() || !(*it)[0].is_string()) {
    return invalid_argument("{}: missing required key 'architectures' (a list like [\"Qwen3ForCausalLM\"])", origin);
  }
  std::string name = (*it)[0].get<std::string>();
  for (const ArchEntry& e : kArchitectures) {
    if (e.name == name) return e.arch;
  }
  return unimplemented("{}: architecture '{}' is not supported (supported: LlamaForCausalLM, Qwen2ForCausalLM, "
                       "Qwen3ForCausalLM)", origin, name);
}

// rope_scaling (4.x) or rope_parameters (5.x): {"rope_type"|"type": "llama3", "factor": ..., ...}
Status parse_rope(const json& j, const ConfigReader& r, ModelConfig& c) {
  const json* rope = nullptr;
  if (auto it = j.find("rope_parameters"); it != j.end() && it->is_object()) rope = &*it;
  if (auto it = j.find("rope_scaling"); rope == nullptr && it != j.end() && it->is_object()) rope = &*it;

  QSWAP_ASSIGN_OR_RETURN(c.rope_theta, r.optional_number(j, "rope_theta", 10000.0));
  if (rope == nullptr) return {};
  QSWAP_ASSIGN_OR_RETURN(c.rope_theta, r.optional_number(*rope, "rope_theta", c.rope_theta));

  std::string type = "default";
  for (const char* key : {"rope_type", "type"}) {
    if (auto it = rope->find(key); it != rope->end() && it->is_string()) type = it->get<std::string>();
  }
  if (type == "default") return {};
  QSWAP_ASSIGN_OR_RETURN(c.rope_scaling.factor, r.optional_number(*rope, "factor", 1.0));
  if (type == "linear") {
    c.rope_scaling.type = RopeScaling::Type::kLinear;
    return {};
  }
  if (type == "llama3") {
    c.rope_scaling.type = RopeScaling::Type::kLlama3;
    QSWAP_ASSIGN_OR_RETURN(c.rope_scaling.low_freq_factor, r.optional_number(*rope, "low_freq_factor", 1.0));
    QSWAP_ASSIGN_OR_RETURN(c.rope_scaling.high_freq_factor, r.optional_number(*rope, "high_freq_factor", 4.0));
    QSWAP_ASSIGN_OR_RETURN(double orig, r.optional_number(*rope, "original_max_position_embeddings", 0));
    if (orig <= 0) return invalid_argument("{}: llama3 rope scaling needs 'original_max_position_embeddings'", r.origin());
    c.rope_scaling.original_max_position_embeddings = static_cast<int64_t>(orig);
    return {};
  }
  return unimplemented("{}: rope type '{}' is not supported (default, linear, llama3)", r.origin(), type);
}

Status parse_token_ids(const json& j, const ConfigReader& r, ModelConfig& c) {
  if (auto it = j.find("eos_token_id"); it != j.end() && !it->is_null()) {
    if (it->is_number_integer()) {
      c.eos_token_ids.push_back(it->get<int64_t>());
    } else if (it->is_array()) {
      for (const json& id : *it) {
        if (!id.is_number_integer()) return invalid_argument("{}: 'eos_token_id' entries must be integers", r.origin());
        c.eos_token_ids.push_back(id.get<int64_t>());
      }
    } else {
      return invalid_argument("{}: 'eos_token_id' must be an integer or a list", r.origin());
    }
  }
  if (auto it = j.find("bos_token_id"); it != j.end() && it->is_number_integer()) c.bos_token_id = it->get<int64_t>();
  return {};
}

std::string torch_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kBF16: return "bfloat16";
    case DType::kF16: return "float16";
    default: return "float32";
  }
}

}  // namespace

std::string_view arch_name(Arch arch) {
  for (const ArchEntry& e : kArchitectures) {
    if (e.arch == arch) return e.name;
  }
  return "unknown";
}

Result<ModelConfig> parse_model_config(std::string_view json_text, std::string_view origin) {
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return invalid_argument("{}: not a JSON object", origin);
  ConfigReader r(j, origin);
  ModelConfig c;
  QSWAP_ASSIGN_OR_RETURN(c.arch, parse_architecture(j, origin));
  QSWAP_ASSIGN_OR_RETURN(c.hidden_size, r.required_int("hidden_size"));
  QSWAP_ASSIGN_OR_RETURN(c.num_hidden_layers, r.required_int("num_hidden_layers"));
  QSWAP_ASSIGN_OR_RETURN(c.num_attention_heads, r.required_int("num_attention_heads"));
  QSWAP_ASSIGN_OR_RETURN(c.intermediate_size, r.required_int("intermediate_size"));
  QSWAP_ASSIGN_OR_RETURN(c.vocab_size, r.required_int("vocab_size"));
  QSWAP_ASSIGN_OR_RETURN(c.num_key_value_heads, r.optional_int("num_key_value_heads", c.num_attention_heads));
  if (c.hidden_size % c.num_attention_heads != 0 && !j.contains("head_dim")) {
    return invalid_argument("{}: hidden_size {} is not divisible by num_attention_heads {} and no 'head_dim' is given",
                            origin, c.hidden_size, c.num_attention_heads);
  }
  QSWAP_ASSIGN_OR_RETURN(c.head_dim, r.optional_int("head_dim", c.hidden_size / c.num_attention_heads));
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    return invalid_argument("{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", origin,
                            c.num_attention_heads, c.num_key_value_heads);
  }
  QSWAP_ASSIGN_OR_RETURN(c.max_position_embeddings, r.optional_int("max_position_embeddings", 2048));
  QSWAP_ASSIGN_OR_RETURN(c.rms_norm_eps, r.optional_number(j, "rms_norm_eps", 1e-6));
  QSWAP_ASSIGN_OR_RETURN(c.tie_word_embeddings, r.optional_bool("tie_word_embeddings", false));
  QSWAP_ASSIGN_OR_RETURN(c.attention_bias, r.optional_bool("attention_bias", false));
  QSWAP_ASSIGN_OR_RETURN(bool mlp_bias, r.optional_bool("mlp_bias", false));
  if (mlp_bias) return unimplemented("{}: 'mlp_bias': true is not supported", origin);
  QSWAP_RETURN_IF_ERROR(parse_rope(j, r, c));
  QSWAP_RETURN_IF_ERROR(parse_token_ids(j, r, c));
  for (const char* key : {"dtype", "torch_dtype"}) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) continue;
    auto dtype = dtype_from_name(it->get<std::string>());
    if (!dtype) return invalid_argument("{}: unknown '{}' value {}", origin, key, it->dump());
    c.torch_dtype = *dtype;
    break;
  }
  return c;
}

Result<ModelConfig> load_model_config(const std::filesystem::path& path) {
  std::filesystem::path file = std::filesystem::is_directory(path) ? path / "config.json" : path;
  QSWAP_ASSIGN_OR_RETURN(std::string text, read_text_file(file));
  return parse_model_config(text, file.string());
}

std::string model_config_to_json(const ModelConfig& c) {
  json j;
  j["architectures"] = {std::string(arch_name(c.arch))};
  j["model_type"] = c.arch == Arch::kLlama ? "llama" : c.arch == Arch::kQwen2 ? "qwen2" : "qwen3";
  j["hidden_size"] = c.hidden_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["head_dim"] = c.head_dim;
  j["intermediate_size"] = c.intermediate_size;
  j["vocab_size"] = c.vocab_size;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  if (c.arch != Arch::kQwen2) j["attention_bias"] = c.attention_bias;
  j["hidden_act"] = "silu";
  j["torch_dtype"] = torch_dtype_name(c.torch_dtype);
  if (c.rope_scaling.type == RopeScaling::Type::kLlama3) {
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", c.rope_scaling.factor},
                         {"low_freq_factor", c.rope_scaling.low_freq_factor},
                         {"high_freq_factor", c.rope_scaling.high_freq_factor},
                         {"original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings}};
  } else if (c.rope_scaling.type == RopeScaling::Type::kLinear) {
    j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", c.rope_scaling.factor}};
  }
  if (c.bos_token_id >= 0) j["bos_token_id"] = c.bos_token_id;
  if (c.eos_token_ids.size() == 1) j["eos_token_id"] = c.eos_token_ids[0];
  if (c.eos_token_ids.size() > 1) j["eos_token_id"] = c.eos_token_ids;
  return j.dump(2) + "\n";
}

}  // namespace qswap
