#include "qswap/model/transformer.h"

#include <algorithm>
#include <cmath>

#include "qswap/kernels/ops.h"
#include "qswap/tensor/convert.h"

namespace qswap {
namespace {

const uint16_t* bf16_view(const KernelStore& store, int param) {
  return store.views(param)[0].as<const uint16_t>();
}

}  // namespace

Result<ModelWeights> bind_model_weights(const WeightMap& map, const KernelStore& store, QuantKind kind) {
  ModelWeights w;
  w.layers.resize(static_cast<size_t>(map.config().num_hidden_layers));
  for (int p = 0; p < static_cast<int>(map.params().size()); ++p) {
    const ParamSpec& spec = map.params()[static_cast<size_t>(p)];
    if (!store.param(p).allocated()) return failed_precondition("parameter '{}' holds no weights yet", spec.name);
    LayerWeights* layer = spec.layer >= 0 ? &w.layers[static_cast<size_t>(spec.layer)] : nullptr;
    auto linear = [&](LinearWeight& out) -> Status {
      QSWAP_ASSIGN_OR_RETURN(out, make_linear_weight(kind, store.views(p)));
      return {};
    };
    switch (spec.kind) {
      case ParamKind::kEmbedTokens: w.embed = bf16_view(store, p); break;
      case ParamKind::kFinalNorm: w.final_norm = bf16_view(store, p); break;
      case ParamKind::kLmHead: {
        QSWAP_ASSIGN_OR_RETURN(w.lm_head, make_linear_weight(QuantKind::kNone, store.views(p)));
        break;
      }
      case ParamKind::kInputNorm: layer->input_norm = bf16_view(store, p); break;
      case ParamKind::kQkvProj: QSWAP_RETURN_IF_ERROR(linear(layer->qkv)); break;
      case ParamKind::kQkvBias: layer->qkv_bias = bf16_view(store, p); break;
      case ParamKind::kQNorm: layer->q_norm = bf16_view(store, p); break;
      case ParamKind::kKNorm: layer->k_norm = bf16_view(store, p); break;
      case ParamKind::kOProj: QSWAP_RETURN_IF_ERROR(linear(layer->o)); break;
      case ParamKind::kOBias: layer->o_bias = bf16_view(store, p); break;
      case ParamKind::kPostAttnNorm: layer->post_norm = bf16_view(store, p); break;
      case ParamKind::kGateUpProj: QSWAP_RETURN_IF_ERROR(linear(layer->gate_up)); break;
      case ParamKind::kDownProj: QSWAP_RETURN_IF_ERROR(linear(layer->down)); break;
    }
  }
  if (map.config().tie_word_embeddings) {
    const ModelConfig& c = map.config();
    w.lm_head = LinearWeight{QuantKind::kNone, c.vocab_size, c.hidden_size,
                             reinterpret_cast<const std::byte*>(w.embed), nullptr};
  }
  return w;
}

KvCache::KvCache(const ModelConfig& config, int64_t max_positions)
    : kv_dim_(config.kv_dim()), capacity_(max_positions) {
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    k_.emplace_back(static_cast<size_t>(capacity_ * kv_dim_));
    v_.emplace_back(static_cast<size_t>(capacity_ * kv_dim_));
  }
}

Transformer::Transformer(const ModelConfig& config, ModelWeights weights)
    : config_(config), w_(std::move(weights)), rope_(config) {}

void Transformer::attention(int layer, const float* q, int64_t n, int64_t start, KvCache& cache, float* out,
                            ThreadPool* pool) const {
  const int64_t heads = config_.num_attention_heads, hd = config_.head_dim;
  const int64_t group = heads / config_.num_key_value_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  auto run = [&](int64_t h_begin, int64_t h_end) {
    std::vector<float> scores(static_cast<size_t>(start + n));
    for (int64_t h = h_begin; h < h_end; ++h) {
      const int64_t kv_off = (h / group) * hd;
      for (int64_t t = 0; t < n; ++t) {
        const float* qv = q + (t * heads + h) * hd;
        const int64_t len = start + t + 1;  // causal: keys 0 .. start + t
        for (int64_t j = 0; j < len; ++j) {
          const float* kv = cache.keys(layer, j) + kv_off;
          float dot = 0.0f;
          for (int64_t d = 0; d < hd; ++d) dot += qv[d] * kv[d];
          scores[static_cast<size_t>(j)] = dot * scale;
        }
        softmax(scores.data(), len);
        float* o = out + (t * heads + h) * hd;
        std::fill(o, o + hd, 0.0f);
        for (int64_t j = 0; j < len; ++j) {
          const float p = scores[static_cast<size_t>(j)];
          const float* vv = cache.values(layer, j) + kv_off;
          for (int64_t d = 0; d < hd; ++d) o[d] += p * vv[d];
        }
      }
    }
  };
  if (pool != nullptr) {
    pool->parallel_for(heads, 1, run);
  } else {
    run(0, heads);
  }
}

Status Transformer::forward(std::span<const int32_t> tokens, KvCache& cache, std::vector<float>& logits,
                            bool all_logits, ThreadPool* pool) const {
  const ModelConfig& c = config_;
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t start = cache.size();
  if (n == 0) return invalid_argument("forward needs at least one token");
  if (start + n > cache.capacity()) {
    return out_of_range("{} positions exceed the context of {} positions", start + n, cache.capacity());
  }
  const int64_t h = c.hidden_size, q_dim = c.q_dim(), kv_dim = c.kv_dim(), qkv_dim = q_dim + 2 * kv_dim;
  const int64_t inter = c.intermediate_size;
  const float eps = static_cast<float>(c.rms_norm_eps);

  std::vector<float> x(static_cast<size_t>(n * h)), normed(x.size()), qkv(static_cast<size_t>(n * qkv_dim));
  std::vector<float> q(static_cast<size_t>(n * q_dim)), attn(q.size()), proj(x.size());
  std::vector<float> gate_up(static_cast<size_t>(n * 2 * inter)), act(static_cast<size_t>(n * inter));

  for (int64_t t = 0; t < n; ++t) {
    const int32_t id = tokens[static_cast<size_t>(t)];
    if (id < 0 || id >= c.vocab_size) return out_of_range("token id {} is outside the vocabulary of {}", id, c.vocab_size);
    bf16_to_f32(w_.embed + static_cast<int64_t>(id) * h, x.data() + t * h, static_cast<size_t>(h));
  }

  for (int layer = 0; layer < static_cast<int>(w_.layers.size()); ++layer) {
    const LayerWeights& lw = w_.layers[static_cast<size_t>(layer)];
    rms_norm(x.data(), n, h, lw.input_norm, eps, normed.data());
    linear(lw.qkv, normed.data(), n, qkv.data(), lw.qkv_bias, pool);
    for (int64_t t = 0; t < n; ++t) {
      const float* row = qkv.data() + t * qkv_dim;
      std::copy(row, row + q_dim, q.data() + t * q_dim);
      std::copy(row + q_dim, row + q_dim + kv_dim, cache.keys(layer, start + t));
      std::copy(row + q_dim + kv_dim, row + qkv_dim, cache.values(layer, start + t));
    }
    if (lw.q_norm != nullptr) {
      rms_norm(q.data(), n * c.num_attention_heads, c.head_dim, lw.q_norm, eps, q.data());
      rms_norm(cache.keys(layer, start), n * c.num_key_value_heads, c.head_dim, lw.k_norm, eps,
               cache.keys(layer, start));
    }
    for (int64_t t = 0; t < n; ++t) {
      rope_.apply(q.data() + t * q_dim, c.num_attention_heads, start + t);
      rope_.apply(cache.keys(layer, start + t), c.num_key_value_heads, start + t);
    }
    attention(layer, q.data(), n, start, cache, attn.data(), pool);
    linear(lw.o, attn.data(), n, proj.data(), lw.o_bias, pool);
    add_inplace(x.data(), proj.data(), n * h);

    rms_norm(x.data(), n, h, lw.post_norm, eps, normed.data());
    linear(lw.gate_up, normed.data(), n, gate_up.data(), nullptr, pool);
    for (int64_t t = 0; t < n; ++t) {
      const float* row = gate_up.data() + t * 2 * inter;
      silu_mul(row, row + inter, act.data() + t * inter, inter);
    }
    linear(lw.down, act.data(), n, proj.data(), nullptr, pool);
    add_inplace(x.data(), proj.data(), n * h);
  }
  cache.advance(n);

  const int64_t first = all_logits ? 0 : n - 1, rows = n - first;
  rms_norm(x.data() + first * h, rows, h, w_.final_norm, eps, normed.data());
  logits.resize(static_cast<size_t>(rows * c.vocab_size));
  linear(w_.lm_head, normed.data(), rows, logits.data(), nullptr, pool);
  return {};
}

}  // namespace qswap
