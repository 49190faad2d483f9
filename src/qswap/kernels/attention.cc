#include "qswap/kernels/attention.h"

#include <algorithm>
#include <vector>

#include "qswap/base/cpu.h"
#include "qswap/kernels/attention_avx512.h"
#include "qswap/kernels/ops.h"
#include "qswap/tensor/tensor.h"

#if defined(__x86_64__) || defined(_M_X64)
#define QSWAP_ATTENTION_AVX512 1
#endif

namespace qswap {
namespace {

// Query heads [h_begin, h_end) of the reference.
void reference_heads(const AttentionShape& s, const float* q, int64_t q_stride, int64_t n, int64_t start,
                     const KvView& kv, float scale, float* out, int64_t h_begin, int64_t h_end) {
  const int64_t hd = s.head_dim, group = s.heads / s.kv_heads;
  std::vector<float> scores(static_cast<size_t>(start + n));
  for (int64_t h = h_begin; h < h_end; ++h) {
    const float* keys = kv.keys + (h / group) * kv.head_stride;
    const float* values = kv.values + (h / group) * kv.head_stride;
    for (int64_t t = 0; t < n; ++t) {
      const float* qv = q + t * q_stride + h * hd;
      const int64_t len = start + t + 1;  // causal: keys 0 .. start + t
      for (int64_t j = 0; j < len; ++j) {
        const float* kj = keys + j * hd;
        float dot = 0.0f;
        for (int64_t d = 0; d < hd; ++d) dot += qv[d] * kj[d];
        scores[static_cast<size_t>(j)] = dot * scale;
      }
      reference::softmax(scores.data(), len);
      float* o = out + (t * s.heads + h) * hd;
      std::fill(o, o + hd, 0.0f);
      for (int64_t j = 0; j < len; ++j) {
        const float p = scores[static_cast<size_t>(j)];
        const float* vj = values + j * hd;
        for (int64_t d = 0; d < hd; ++d) o[d] += p * vj[d];
      }
    }
  }
}

void for_range(ThreadPool* pool, int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (pool == nullptr || pool->size() == 1) {
    fn(0, n);
  } else {
    pool->parallel_for(n, 1, fn);
  }
}

#ifdef QSWAP_ATTENTION_AVX512
// Scores scratch per block: 32K floats (128 KB) keeps a block's scores in L2 beside its keys
// and values.
constexpr int64_t kScoreBudget = 32 * 1024;

// 64-byte aligned (Buffer): the score rows are loaded and stored as whole vectors.
float* scores_scratch(size_t floats) {
  thread_local Buffer scratch;
  if (scratch.size() < floats * sizeof(float)) scratch = Buffer::uninitialized(floats * sizeof(float));
  return scratch.as<float>();
}

void attention_avx512(const AttentionShape& s, const float* q, int64_t q_stride, int64_t n, int64_t start,
                      const KvView& kv, float scale, float* out, ThreadPool* pool) {
  const int64_t group = s.heads / s.kv_heads;
  const int64_t threads = pool != nullptr ? pool->size() : 1;
  // Work units: a kv head × a block of tokens. Blocks as large as the scratch allows, but at least
  // ~4 units per thread where the tokens allow it (decode: one unit per kv head).
  const int64_t row_floats = kernels::avx512::attention_scores_floats(group, start + n);
  int64_t block = std::max<int64_t>(1, kScoreBudget / row_floats);
  const int64_t min_blocks = (4 * threads + s.kv_heads - 1) / s.kv_heads;
  block = std::min(block, std::max<int64_t>(1, (n + min_blocks - 1) / min_blocks));
  const int64_t blocks = (n + block - 1) / block;
  for_range(pool, s.kv_heads * blocks, [&](int64_t u_begin, int64_t u_end) {
    float* scores = scores_scratch(static_cast<size_t>(block * row_floats));
    for (int64_t u = u_begin; u < u_end; ++u) {
      const int64_t g = u % s.kv_heads, blk = blocks - 1 - u / s.kv_heads;  // late (long) tokens first
      kernels::avx512::AttentionBlock b{};
      b.q = q;
      b.q_stride = q_stride;
      b.out = out;
      b.heads = s.heads;
      b.group = group;
      b.head_dim = s.head_dim;
      b.g = g;
      b.keys = kv.keys + g * kv.head_stride;
      b.values = kv.values + g * kv.head_stride;
      b.start = start;
      b.t_begin = blk * block;
      b.t_end = std::min(n, b.t_begin + block);
      b.scale = scale;
      b.scores = scores;
      kernels::avx512::attention_block(b);
    }
  });
}
#endif

}  // namespace

namespace reference {
void attention(const AttentionShape& shape, const float* q, int64_t q_stride, int64_t n, int64_t start,
               const KvView& kv, float scale, float* out) {
  if (n <= 0) return;
  reference_heads(shape, q, q_stride, n, start, kv, scale, out, 0, shape.heads);
}
}  // namespace reference

void attention(const AttentionShape& shape, const float* q, int64_t q_stride, int64_t n, int64_t start,
               const KvView& kv, float scale, float* out, ThreadPool* pool) {
  if (n <= 0) return;
#ifdef QSWAP_ATTENTION_AVX512
  if (cpu_features().avx512) {
    attention_avx512(shape, q, q_stride, n, start, kv, scale, out, pool);
    return;
  }
#endif
  for_range(pool, shape.heads, [&](int64_t b, int64_t e) {
    reference_heads(shape, q, q_stride, n, start, kv, scale, out, b, e);
  });
}

}  // namespace qswap
