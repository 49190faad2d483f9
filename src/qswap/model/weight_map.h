// What weights an architecture has, and where each checkpoint tensor goes.
//
// The running model holds *parameters* (fused where kernels want them fused: q/k/v -> qkv_proj,
// gate/up -> gate_up_proj). A checkpoint holds *tensors* under Hugging Face names. The tables in
// weight_map.cc declare, per architecture, which tensors exist (required, optional, tied, ignored)
// and which rows of which parameter each one fills. Loading, reloading, `inspect` and export all
// read this one description.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "qswap/base/status.h"
#include "qswap/io/model_config.h"
#include "qswap/tensor/tensor.h"

namespace qswap {

enum class ParamKind : uint8_t {
  kEmbedTokens,   // [vocab, hidden]
  kFinalNorm,     // [hidden]
  kLmHead,        // [vocab, hidden]; absent when embeddings are tied
  kInputNorm,     // [hidden]
  kQkvProj,       // [q_dim + 2*kv_dim, hidden]   rows: q | k | v
  kQkvBias,       // [q_dim + 2*kv_dim]
  kQNorm,         // [head_dim]
  kKNorm,         // [head_dim]
  kOProj,         // [hidden, q_dim]
  kOBias,         // [hidden]
  kPostAttnNorm,  // [hidden]
  kGateUpProj,    // [2*intermediate, hidden]     rows: gate | up
  kDownProj,      // [hidden, intermediate]
};
std::string_view param_kind_name(ParamKind kind);  // "qkv_proj"

// One parameter of the running model.
struct ParamSpec {
  ParamKind kind;
  int layer;          // decoder layer, or -1 for a model-level parameter
  std::string name;   // "layers.3.qkv_proj", "embed_tokens"
  Shape shape;        // full-precision shape of the (fused) parameter
  bool is_linear;     // a projection matrix that quantization schemes apply to
  std::vector<int64_t> shard_rows;  // rows of each checkpoint tensor that fills it, in order
};

// One tensor a checkpoint may hold, and the rows of a parameter it fills.
struct CheckpointTensor {
  std::string name;   // "model.layers.3.self_attn.k_proj.weight"
  int param;          // index into WeightMap::params()
  int shard;          // 0 = q or gate, 1 = k or up, 2 = v
  int64_t row_offset; // first row of the parameter this tensor fills
  Shape shape;        // expected checkpoint shape
  bool required;
};

enum class NameKind { kWeight, kIgnored, kUnknown };

class WeightMap {
 public:
  static Result<WeightMap> build(const ModelConfig& config);

  const ModelConfig& config() const { return config_; }
  const std::vector<ParamSpec>& params() const { return params_; }
  const std::vector<CheckpointTensor>& tensors() const { return tensors_; }
  // Unit of completion for the loader: the decoder layer index, or one unit per model-level
  // parameter (numbered after the layers).
  int num_units() const { return num_units_; }
  int unit_of(int param) const { return param_unit_[static_cast<size_t>(param)]; }
  const std::vector<int>& unit_params(int unit) const { return unit_params_[static_cast<size_t>(unit)]; }
  std::string unit_name(int unit) const;  // "layer 3", "embed_tokens"

  const CheckpointTensor* find(std::string_view name) const;
  NameKind classify(std::string_view name) const;

  // Sum of parameter elements as the checkpoint stores them (tied embeddings counted once).
  int64_t num_checkpoint_elements() const;

 private:
  WeightMap() = default;
  int add_param(ParamKind kind, int layer, Shape shape, std::vector<int64_t> shard_rows);
  void add_tensor(std::string name, int param, int shard, int64_t row_offset, Shape shape, bool required);

  ModelConfig config_;
  std::vector<ParamSpec> params_;
  std::vector<CheckpointTensor> tensors_;
  std::unordered_map<std::string, int> by_name_;
  std::vector<std::string> ignored_suffixes_;
  std::vector<std::string> ignored_names_;
  int num_units_ = 0;
  std::vector<int> param_unit_;
  std::vector<std::vector<int>> unit_params_;
};

}  // namespace qswap
