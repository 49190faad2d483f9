#include "qswap/model/transformer.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "qswap/kernels/attention.h"
#include "qswap/kernels/ops.h"
#include "qswap/tensor/convert.h"

namespace qswap {
namespace {

const uint16_t* bf16_view(const KernelStore& store, int param) {
  return store.views(param)[0].as<const uint16_t>();
}

// Below this many elements, a per-token op runs inline: a dispatch would cost more than it saves.
constexpr int64_t kParallelMinElements = 16 * 1024;

// fn(begin, end) over n tokens of `width` elements each, split over the pool when worth it.
void for_tokens(ThreadPool* pool, int64_t n, int64_t width, const std::function<void(int64_t, int64_t)>& fn) {
  if (pool == nullptr || pool->size() == 1 || n < 2 || n * width < kParallelMinElements) {
    fn(0, n);
  } else {
    pool->parallel_for(n, 1, fn);
  }
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
    : head_dim_(config.head_dim), capacity_(max_positions) {
  const size_t bytes = static_cast<size_t>(capacity_ * config.kv_dim()) * sizeof(float);
  auto allocate = [&] { return Storage(static_cast<float*>(::operator new(bytes, std::align_val_t{64}))); };
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    k_.push_back(allocate());
    v_.push_back(allocate());
  }
}

Transformer::Transformer(const ModelConfig& config, ModelWeights weights)
    : config_(config), w_(std::move(weights)), rope_(config) {}

// The forward pass runs every op over the pool: the linear layers and attention split their own
// work; the per-token ops (norms, RoPE, SiLU, residual adds) are fused into one pass over the
// tokens between two linear layers, split over tokens when there are enough of them to pay for
// a dispatch (a prefill), and run inline for a decode step.
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
  const int64_t inter = c.intermediate_size, hd = c.head_dim, heads = c.num_attention_heads;
  const int64_t kv_heads = c.num_key_value_heads;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int layers = static_cast<int>(w_.layers.size());

  AlignedFloats x(static_cast<size_t>(n * h)), normed(x.size()), qkv(static_cast<size_t>(n * qkv_dim));
  AlignedFloats attn(static_cast<size_t>(n * q_dim)), proj(x.size());
  AlignedFloats gate_up(static_cast<size_t>(n * 2 * inter)), act(static_cast<size_t>(n * inter));

  for (int64_t t = 0; t < n; ++t) {
    const int32_t id = tokens[static_cast<size_t>(t)];
    if (id < 0 || id >= c.vocab_size) return out_of_range("token id {} is outside the vocabulary of {}", id, c.vocab_size);
    bf16_to_f32(w_.embed + static_cast<int64_t>(id) * h, x.data() + t * h, static_cast<size_t>(h));
  }
  const AttentionShape shape{heads, kv_heads, hd};
  if (layers > 0) {
    for_tokens(pool, n, h, [&](int64_t b, int64_t e) {
      rms_norm(x.data() + b * h, e - b, h, w_.layers[0].input_norm, eps, normed.data() + b * h);
    });
  }

  for (int layer = 0; layer < layers; ++layer) {
    const LayerWeights& lw = w_.layers[static_cast<size_t>(layer)];
    linear(lw.qkv, normed.data(), n, qkv.data(), lw.qkv_bias, pool);
    float* keys = cache.keys(layer);
    float* values = cache.values(layer);
    for_tokens(pool, n, qkv_dim, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        float* row = qkv.data() + t * qkv_dim;  // q heads, then k heads, then v heads
        if (lw.q_norm != nullptr) {
          rms_norm(row, heads, hd, lw.q_norm, eps, row);
          rms_norm(row + q_dim, kv_heads, hd, lw.k_norm, eps, row + q_dim);
        }
        rope_.apply(row, heads + kv_heads, start + t);  // q and k heads are adjacent: one pass
        for (int64_t g = 0; g < kv_heads; ++g) {
          const int64_t at = g * cache.head_stride() + (start + t) * hd;
          std::copy_n(row + q_dim + g * hd, hd, keys + at);
          std::copy_n(row + q_dim + kv_dim + g * hd, hd, values + at);
        }
      }
    });
    attention(shape, qkv.data(), qkv_dim, n, start, KvView{keys, values, cache.head_stride()}, scale, attn.data(),
              pool);
    linear(lw.o, attn.data(), n, proj.data(), lw.o_bias, pool);
    for_tokens(pool, n, h, [&](int64_t b, int64_t e) {
      add_inplace(x.data() + b * h, proj.data() + b * h, (e - b) * h);
      rms_norm(x.data() + b * h, e - b, h, lw.post_norm, eps, normed.data() + b * h);
    });

    linear(lw.gate_up, normed.data(), n, gate_up.data(), nullptr, pool);
    for_tokens(pool, n, inter, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const float* row = gate_up.data() + t * 2 * inter;
        silu_mul(row, row + inter, act.data() + t * inter, inter);
      }
    });
    linear(lw.down, act.data(), n, proj.data(), nullptr, pool);
    const uint16_t* next_norm = layer + 1 < layers ? w_.layers[static_cast<size_t>(layer) + 1].input_norm : nullptr;
    for_tokens(pool, n, h, [&](int64_t b, int64_t e) {
      add_inplace(x.data() + b * h, proj.data() + b * h, (e - b) * h);
      if (next_norm != nullptr) rms_norm(x.data() + b * h, e - b, h, next_norm, eps, normed.data() + b * h);
    });
  }
  cache.advance(n);

  const int64_t first = all_logits ? 0 : n - 1, rows = n - first;
  for_tokens(pool, rows, h, [&](int64_t b, int64_t e) {
    rms_norm(x.data() + (first + b) * h, e - b, h, w_.final_norm, eps, normed.data() + b * h);
  });
  logits.resize(static_cast<size_t>(rows * c.vocab_size));
  linear(w_.lm_head, normed.data(), rows, logits.data(), nullptr, pool);
  return {};
}

}  // namespace qswap
