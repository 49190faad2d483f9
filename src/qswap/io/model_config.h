// Hugging Face config.json -> ModelConfig for the decoder-only architectures qswap runs.
// Accepts both the transformers 4.x spelling (rope_theta, rope_scaling, torch_dtype) and the
// 5.x one (rope_parameters, dtype).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "qswap/base/status.h"
#include "qswap/tensor/dtype.h"

namespace qswap {

enum class Arch { kLlama, kQwen2, kQwen3 };

std::string_view arch_name(Arch arch);  // "LlamaForCausalLM", ...

struct RopeScaling {
  enum class Type { kNone, kLinear, kLlama3 };
  Type type = Type::kNone;
  double factor = 1.0;
  double low_freq_factor = 1.0;   // llama3
  double high_freq_factor = 4.0;  // llama3
  int64_t original_max_position_embeddings = 0;  // llama3
};

struct ModelConfig {
  Arch arch = Arch::kQwen3;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  int64_t intermediate_size = 0;
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  bool attention_bias = false;   // q/k/v (and o, except Qwen2) projections carry a bias
  DType torch_dtype = DType::kBF16;
  std::vector<int64_t> eos_token_ids;
  int64_t bos_token_id = -1;

  int64_t q_dim() const { return num_attention_heads * head_dim; }
  int64_t kv_dim() const { return num_key_value_heads * head_dim; }
  bool has_qk_norm() const { return arch == Arch::kQwen3; }
  bool has_qkv_bias() const { return attention_bias || arch == Arch::kQwen2; }
  bool has_o_bias() const { return attention_bias && arch != Arch::kQwen2; }
};

// `origin` names the source in error messages (usually the file path).
Result<ModelConfig> parse_model_config(std::string_view json_text, std::string_view origin);
// `path` is a model directory (reads DIR/config.json) or a config file.
Result<ModelConfig> load_model_config(const std::filesystem::path& path);
// The config.json transformers would write for `config` (used by `synth` and `export`).
std::string model_config_to_json(const ModelConfig& config);

}  // namespace qswap
