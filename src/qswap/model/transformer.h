// The decoder-only transformer of Llama, Qwen2 and Qwen3: embeddings, RMSNorm, RoPE, grouped-query
// attention over a KV cache, optional q/k norms and qkv biases, SwiGLU MLP, tied or separate
// lm_head. Weights are read from the kernel tensors of any scheme through views bound once: every
// reload rewrites the bytes behind them, never the addresses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <span>
#include <vector>

#include "qswap/base/thread_pool.h"
#include "qswap/kernels/linear.h"
#include "qswap/load/kernel_store.h"
#include "qswap/model/rope.h"
#include "qswap/model/weight_map.h"

namespace qswap {

struct LayerWeights {
  const uint16_t* input_norm = nullptr;  // bf16 [hidden]
  LinearWeight qkv;                      // [q_dim + 2 kv_dim, hidden]
  const uint16_t* qkv_bias = nullptr;    // bf16 [q_dim + 2 kv_dim] (Qwen2, attention_bias)
  const uint16_t* q_norm = nullptr;      // bf16 [head_dim] (Qwen3)
  const uint16_t* k_norm = nullptr;
  LinearWeight o;                        // [hidden, q_dim]
  const uint16_t* o_bias = nullptr;      // bf16 [hidden]
  const uint16_t* post_norm = nullptr;   // bf16 [hidden]
  LinearWeight gate_up;                  // [2 intermediate, hidden]
  LinearWeight down;                     // [hidden, intermediate]
};

struct ModelWeights {
  const uint16_t* embed = nullptr;       // bf16 [vocab, hidden]
  std::vector<LayerWeights> layers;
  const uint16_t* final_norm = nullptr;  // bf16 [hidden]
  LinearWeight lm_head;                  // bf16; the embedding when tied
};

Result<ModelWeights> bind_model_weights(const WeightMap& map, const KernelStore& store, QuantKind kind);

// Activations and caches start on 64-byte boundaries: the AVX-512 kernels load whole 64-byte
// vectors from them, and one that straddles two cache lines costs two loads (attention's score
// loop ran at half speed on malloc's 16-byte alignment).
template <typename T>
struct CacheLineAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlignment{64};
  CacheLineAllocator() = default;
  template <typename U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}  // NOLINT: rebinding, as std::allocator
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlignment)); }
  void deallocate(T* p, size_t) { ::operator delete(p, kAlignment); }
  template <typename U>
  bool operator==(const CacheLineAllocator<U>&) const { return true; }
};
using AlignedFloats = std::vector<float, CacheLineAllocator<float>>;

// Keys and values of past positions, f32, for one sequence, head-major per layer (position p of
// kv head g at keys(layer) + g * head_stride() + p * head_dim), so that attention streams each
// head's keys contiguously. Belongs to one weight version: an update makes it stale (DESIGN.md,
// "Caches follow the weights").
//
// The storage is not zeroed: attention reads only positions < size(), each written first by
// Transformer::forward, and a large allocation's fresh pages are faulted in only where the
// sequence writes. Zeroing a 0.6B model's cache for max_tokens 4096 added 0.4-0.7 s to every
// request, for requests that may stop after a few tokens.
class KvCache {
 public:
  KvCache(const ModelConfig& config, int64_t max_positions);
  int64_t size() const { return size_; }
  int64_t capacity() const { return capacity_; }
  uint64_t weight_version() const { return weight_version_; }
  void reset(uint64_t weight_version) {
    size_ = 0;
    weight_version_ = weight_version;
  }
  int64_t head_stride() const { return capacity_ * head_dim_; }
  float* keys(int layer) { return k_[static_cast<size_t>(layer)].get(); }
  float* values(int layer) { return v_[static_cast<size_t>(layer)].get(); }
  void advance(int64_t n) { size_ += n; }

 private:
  struct AlignedDelete {
    void operator()(float* p) const { ::operator delete(p, std::align_val_t{64}); }
  };
  using Storage = std::unique_ptr<float[], AlignedDelete>;

  int64_t head_dim_, capacity_, size_ = 0;
  uint64_t weight_version_ = 0;
  std::vector<Storage> k_, v_;  // [layer][kv_heads * capacity * head_dim], 64-byte aligned
};

class Transformer {
 public:
  Transformer(const ModelConfig& config, ModelWeights weights);

  // Runs `tokens` at positions cache.size() .. + n, appends their keys/values to the cache, and
  // writes logits [n_out, vocab]: all positions when all_logits, else only the last one.
  Status forward(std::span<const int32_t> tokens, KvCache& cache, std::vector<float>& logits, bool all_logits,
                 ThreadPool* pool) const;

  const ModelConfig& config() const { return config_; }

 private:
  ModelConfig config_;
  ModelWeights w_;
  Rope rope_;
};

}  // namespace qswap
