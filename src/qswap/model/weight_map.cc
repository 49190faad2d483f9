#include "qswap/model/weight_map.h"

#include <fmt/format.h>

namespace qswap {
namespace {

// When a checkpoint tensor exists, as a function of the config.
enum class When : uint8_t { kAlways, kQkvBias, kOBias, kQkNorm };

struct LayerRule {
  std::string_view suffix;  // after "model.layers.{i}."
  ParamKind param;
  int shard;
  When when;
};

// Llama, Qwen2 and Qwen3 share one naming scheme; they differ in which optional tensors exist
// (ModelConfig::has_qkv_bias / has_o_bias / has_qk_norm hold those per-architecture facts).
constexpr LayerRule kLayerRules[] = {
    {"input_layernorm.weight", ParamKind::kInputNorm, 0, When::kAlways},
    {"self_attn.q_proj.weight", ParamKind::kQkvProj, 0, When::kAlways},
    {"self_attn.k_proj.weight", ParamKind::kQkvProj, 1, When::kAlways},
    {"self_attn.v_proj.weight", ParamKind::kQkvProj, 2, When::kAlways},
    {"self_attn.q_proj.bias", ParamKind::kQkvBias, 0, When::kQkvBias},
    {"self_attn.k_proj.bias", ParamKind::kQkvBias, 1, When::kQkvBias},
    {"self_attn.v_proj.bias", ParamKind::kQkvBias, 2, When::kQkvBias},
    {"self_attn.q_norm.weight", ParamKind::kQNorm, 0, When::kQkNorm},
    {"self_attn.k_norm.weight", ParamKind::kKNorm, 0, When::kQkNorm},
    {"self_attn.o_proj.weight", ParamKind::kOProj, 0, When::kAlways},
    {"self_attn.o_proj.bias", ParamKind::kOBias, 0, When::kOBias},
    {"post_attention_layernorm.weight", ParamKind::kPostAttnNorm, 0, When::kAlways},
    {"mlp.gate_proj.weight", ParamKind::kGateUpProj, 0, When::kAlways},
    {"mlp.up_proj.weight", ParamKind::kGateUpProj, 1, When::kAlways},
    {"mlp.down_proj.weight", ParamKind::kDownProj, 0, When::kAlways},
};

// Buffers some exporters save that carry no learned weights.
constexpr std::string_view kIgnoredSuffixes[] = {"rotary_emb.inv_freq"};

bool applies(When when, const ModelConfig& c) {
  switch (when) {
    case When::kAlways: return true;
    case When::kQkvBias: return c.has_qkv_bias();
    case When::kOBias: return c.has_o_bias();
    case When::kQkNorm: return c.has_qk_norm();
  }
  return false;
}

// Rows of each shard of a fused parameter, in shard order.
std::vector<int64_t> shard_rows(ParamKind kind, const ModelConfig& c) {
  switch (kind) {
    case ParamKind::kQkvProj:
    case ParamKind::kQkvBias: return {c.q_dim(), c.kv_dim(), c.kv_dim()};
    case ParamKind::kGateUpProj: return {c.intermediate_size, c.intermediate_size};
    default: return {};
  }
}

Shape param_shape(ParamKind kind, const ModelConfig& c) {
  const int64_t h = c.hidden_size;
  switch (kind) {
    case ParamKind::kEmbedTokens:
    case ParamKind::kLmHead: return {c.vocab_size, h};
    case ParamKind::kFinalNorm:
    case ParamKind::kInputNorm:
    case ParamKind::kPostAttnNorm:
    case ParamKind::kOBias: return {h};
    case ParamKind::kQkvProj: return {c.q_dim() + 2 * c.kv_dim(), h};
    case ParamKind::kQkvBias: return {c.q_dim() + 2 * c.kv_dim()};
    case ParamKind::kQNorm:
    case ParamKind::kKNorm: return {c.head_dim};
    case ParamKind::kOProj: return {h, c.q_dim()};
    case ParamKind::kGateUpProj: return {2 * c.intermediate_size, h};
    case ParamKind::kDownProj: return {h, c.intermediate_size};
  }
  return {};
}

bool is_linear(ParamKind kind) {
  return kind == ParamKind::kQkvProj || kind == ParamKind::kOProj || kind == ParamKind::kGateUpProj ||
         kind == ParamKind::kDownProj;
}

}  // namespace

std::string_view param_kind_name(ParamKind kind) {
  switch (kind) {
    case ParamKind::kEmbedTokens: return "embed_tokens";
    case ParamKind::kFinalNorm: return "norm";
    case ParamKind::kLmHead: return "lm_head";
    case ParamKind::kInputNorm: return "input_layernorm";
    case ParamKind::kQkvProj: return "qkv_proj";
    case ParamKind::kQkvBias: return "qkv_bias";
    case ParamKind::kQNorm: return "q_norm";
    case ParamKind::kKNorm: return "k_norm";
    case ParamKind::kOProj: return "o_proj";
    case ParamKind::kOBias: return "o_bias";
    case ParamKind::kPostAttnNorm: return "post_attention_layernorm";
    case ParamKind::kGateUpProj: return "gate_up_proj";
    case ParamKind::kDownProj: return "down_proj";
  }
  return "unknown";
}

int WeightMap::add_param(ParamKind kind, int layer, Shape shape, std::vector<int64_t> shard_rows) {
  std::string name = layer >= 0 ? fmt::format("layers.{}.{}", layer, param_kind_name(kind))
                                 : std::string(param_kind_name(kind));
  if (shard_rows.empty()) shard_rows.push_back(shape[0]);
  params_.push_back(ParamSpec{kind, layer, std::move(name), std::move(shape), is_linear(kind), std::move(shard_rows)});
  return static_cast<int>(params_.size()) - 1;
}

void WeightMap::add_tensor(std::string name, int param, int shard, int64_t row_offset, Shape shape,
                           bool required) {
  by_name_.emplace(name, static_cast<int>(tensors_.size()));
  tensors_.push_back(CheckpointTensor{std::move(name), param, shard, row_offset, std::move(shape), required});
}

Result<WeightMap> WeightMap::build(const ModelConfig& c) {
  if (c.num_hidden_layers <= 0 || c.hidden_size <= 0 || c.vocab_size <= 0) {
    return invalid_argument("model config has no layers, hidden size or vocabulary");
  }
  WeightMap m;
  m.config_ = c;
  const int num_layers = static_cast<int>(c.num_hidden_layers);

  int embed = m.add_param(ParamKind::kEmbedTokens, -1, param_shape(ParamKind::kEmbedTokens, c), {});
  m.add_tensor("model.embed_tokens.weight", embed, 0, 0, param_shape(ParamKind::kEmbedTokens, c), true);

  for (int layer = 0; layer < num_layers; ++layer) {
    const std::string prefix = fmt::format("model.layers.{}.", layer);
    int current_param = -1;
    ParamKind current_kind{};
    for (const LayerRule& rule : kLayerRules) {
      if (!applies(rule.when, c)) continue;
      if (current_param < 0 || current_kind != rule.param) {
        current_param = m.add_param(rule.param, layer, param_shape(rule.param, c), shard_rows(rule.param, c));
        current_kind = rule.param;
      }
      Shape full = param_shape(rule.param, c);
      std::vector<int64_t> rows = shard_rows(rule.param, c);
      int64_t offset = 0;
      for (int s = 0; s < rule.shard; ++s) offset += rows[static_cast<size_t>(s)];
      Shape shape = full;
      if (!rows.empty()) shape[0] = rows[static_cast<size_t>(rule.shard)];
      m.add_tensor(prefix + std::string(rule.suffix), current_param, rule.shard, offset, std::move(shape), true);
    }
  }

  int norm = m.add_param(ParamKind::kFinalNorm, -1, param_shape(ParamKind::kFinalNorm, c), {});
  m.add_tensor("model.norm.weight", norm, 0, 0, param_shape(ParamKind::kFinalNorm, c), true);
  if (c.tie_word_embeddings) {
    m.ignored_names_.emplace_back("lm_head.weight");  // some exporters save the tied copy
  } else {
    int head = m.add_param(ParamKind::kLmHead, -1, param_shape(ParamKind::kLmHead, c), {});
    m.add_tensor("lm_head.weight", head, 0, 0, param_shape(ParamKind::kLmHead, c), true);
  }
  for (std::string_view s : kIgnoredSuffixes) m.ignored_suffixes_.emplace_back(s);

  // Units: one per decoder layer, then one per model-level parameter.
  m.num_units_ = num_layers;
  m.param_unit_.resize(m.params_.size());
  for (size_t p = 0; p < m.params_.size(); ++p) {
    m.param_unit_[p] = m.params_[p].layer >= 0 ? m.params_[p].layer : m.num_units_++;
  }
  m.unit_params_.resize(static_cast<size_t>(m.num_units_));
  for (size_t p = 0; p < m.params_.size(); ++p) {
    m.unit_params_[static_cast<size_t>(m.param_unit_[p])].push_back(static_cast<int>(p));
  }
  return m;
}

std::string WeightMap::unit_name(int unit) const {
  if (unit < config_.num_hidden_layers) return fmt::format("layer {}", unit);
  return params_[static_cast<size_t>(unit_params(unit).front())].name;
}

const CheckpointTensor* WeightMap::find(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : &tensors_[static_cast<size_t>(it->second)];
}

NameKind WeightMap::classify(std::string_view name) const {
  if (find(name) != nullptr) return NameKind::kWeight;
  for (const std::string& n : ignored_names_) {
    if (name == n) return NameKind::kIgnored;
  }
  for (const std::string& s : ignored_suffixes_) {
    if (name.ends_with(s)) return NameKind::kIgnored;
  }
  return NameKind::kUnknown;
}

int64_t WeightMap::num_checkpoint_elements() const {
  int64_t n = 0;
  for (const ParamSpec& p : params_) n += num_elements(p.shape);
  return n;
}

}  // namespace qswap
