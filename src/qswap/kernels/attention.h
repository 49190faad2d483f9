// Causal grouped-query attention over a KV cache, f32, as transformers' eager attention computes
// it in f32: for query head h of the token at position p,
//   s[j] = (q · k_j) × scale for keys j = 0 .. p,   w = softmax(s),   out = Σ_j w[j] v_j
// with k_j, v_j of kv head h / (heads / kv_heads).
//
// Numerics: the reference sums q · k in f32 in head_dim order and w v in key order, with the
// scalar softmax. The fast path (AVX-512) differs by f32 reassociation of the dot products, FMA
// contraction and the vector exp (within 2 ulp of expf); the tests bound the difference against a
// double-precision computation. Results never depend on the thread count: each output row is
// computed by one thread, in an order fixed by the shapes.
#pragma once

#include <cstdint>

#include "qswap/base/thread_pool.h"

namespace qswap {

struct AttentionShape {
  int64_t heads = 0;     // query heads, a multiple of kv_heads
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
};

// Keys and values of one layer, head-major: position p of kv head g starts at
// keys + g * head_stride + p * head_dim (values alike).
struct KvView {
  const float* keys = nullptr;
  const float* values = nullptr;
  int64_t head_stride = 0;  // floats from one kv head to the next
};

// Queries of n tokens at positions start .. start + n - 1: query head h of token t at
// q + t * q_stride + h * head_dim. The cache holds positions 0 .. start + n - 1.
// out: [n, heads, head_dim] (must not overlap q or the cache). Splits over `pool` (nullptr:
// the caller's thread only).
void attention(const AttentionShape& shape, const float* q, int64_t q_stride, int64_t n, int64_t start,
               const KvView& kv, float scale, float* out, ThreadPool* pool);

namespace reference {
void attention(const AttentionShape& shape, const float* q, int64_t q_stride, int64_t n, int64_t start,
               const KvView& kv, float scale, float* out);
}  // namespace reference

}  // namespace qswap
