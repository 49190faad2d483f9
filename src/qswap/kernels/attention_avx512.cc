// AVX-512 attention (intrinsics only, see attention_avx512.h).
//
// Scores: 16 keys at a time. Each key's dot product with a query row accumulates in its own
// zmm (16 independent FMA chains, the row's head_dim in steps of 16 lanes); a transpose-add tree
// turns the 16 accumulators into one vector of 16 scores, so no horizontal sum is paid per key.
// The 16 keys (8 KB at head_dim 128) stay in L1 while every query row of the block passes over
// them. Then a softmax per row (ops_avx512.cc), then out = Σ_j w[j] v_j with the weights
// broadcast and two query rows of a token sharing each loaded value vector.
#include "qswap/kernels/attention_avx512.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)

#include <immintrin.h>

#include "qswap/kernels/ops_avx512.h"
#include "qswap/kernels/reduce_avx512.h"

namespace qswap::kernels::avx512 {
namespace {

constexpr int64_t kKeys = 16;   // keys per score block
constexpr int64_t kPvDims = 128;  // head dims per output pass (8 zmm per row)

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
inline int64_t round_up16(int64_t v) { return (v + 15) & ~int64_t{15}; }
inline __mmask16 tail_mask(int64_t left) {
  if (left <= 0) return 0;
  return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
}

// The dot products q · kp[j], j = 0 .. 15, one per lane.
inline __m512 dots16(const float* q, const float* const (&kp)[kKeys], int64_t hd) {
  __m512 acc[kKeys];
#pragma GCC unroll 16
  for (int j = 0; j < kKeys; ++j) acc[j] = _mm512_setzero_ps();
  int64_t d = 0;
  for (; d + 16 <= hd; d += 16) {
    const __m512 qv = _mm512_loadu_ps(q + d);
#pragma GCC unroll 16
    for (int j = 0; j < kKeys; ++j) acc[j] = _mm512_fmadd_ps(qv, _mm512_loadu_ps(kp[j] + d), acc[j]);
  }
  if (d < hd) {
    const __mmask16 m = tail_mask(hd - d);
    const __m512 qv = _mm512_maskz_loadu_ps(m, q + d);
#pragma GCC unroll 16
    for (int j = 0; j < kKeys; ++j) acc[j] = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, kp[j] + d), acc[j]);
  }
  return reduce16(acc);
}

// dots16 for 16 consecutive keys (k0 + j * HD) of a compile-time head_dim: one base pointer and
// constant displacements, instead of 16 pointers that spill from the general-purpose registers.
template <int64_t HD>
inline __m512 dots16_fixed(const float* q, const float* k0) {
  static_assert(HD % 16 == 0);
  __m512 acc[kKeys];
#pragma GCC unroll 16
  for (int j = 0; j < kKeys; ++j) acc[j] = _mm512_setzero_ps();
#pragma GCC unroll 8
  for (int64_t d = 0; d < HD; d += 16) {
    const __m512 qv = _mm512_loadu_ps(q + d);
#pragma GCC unroll 16
    for (int j = 0; j < kKeys; ++j) acc[j] = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k0 + j * HD + d), acc[j]);
  }
  return reduce16(acc);
}

// The 16 scores of keys kb .. kb + 15 (the last `keys` - 1 repeated past the causal limit).
inline __m512 scores16(const float* q, const float* keys, int64_t kb, int64_t n_keys, int64_t hd) {
  if (n_keys == kKeys) {
    if (hd == 128) return dots16_fixed<128>(q, keys + kb * 128);
    if (hd == 64) return dots16_fixed<64>(q, keys + kb * 64);
  }
  const float* kp[kKeys];
  for (int64_t j = 0; j < kKeys; ++j) kp[j] = keys + (kb + min64(j, n_keys - 1)) * hd;
  return dots16(q, kp, hd);
}

// o[r][d0 .. d0 + width) = Σ_j p[r][j] v[j][d0 ..] for R query rows of equal length; NV vectors of
// 16 dims, the last masked by `last`.
template <int R, int NV>
inline void pv_chunk(const float* const (&p)[R], int64_t len, const float* v, int64_t hd, int64_t d0, __mmask16 last,
                     float* const (&o)[R]) {
  __m512 acc[R][NV];
  for (int r = 0; r < R; ++r) {
    for (int x = 0; x < NV; ++x) acc[r][x] = _mm512_setzero_ps();
  }
  for (int64_t j = 0; j < len; ++j) {
    const float* vr = v + j * hd + d0;
    __m512 pj[R];
    for (int r = 0; r < R; ++r) pj[r] = _mm512_set1_ps(p[r][j]);
    for (int x = 0; x < NV; ++x) {
      const __m512 w = x == NV - 1 ? _mm512_maskz_loadu_ps(last, vr + 16 * x) : _mm512_loadu_ps(vr + 16 * x);
      for (int r = 0; r < R; ++r) acc[r][x] = _mm512_fmadd_ps(pj[r], w, acc[r][x]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int x = 0; x < NV; ++x) {
      _mm512_mask_storeu_ps(o[r] + d0 + 16 * x, x == NV - 1 ? last : static_cast<__mmask16>(0xFFFF), acc[r][x]);
    }
  }
}

template <int R>
void pv(const float* const (&p)[R], int64_t len, const float* v, int64_t hd, float* const (&o)[R]) {
  for (int64_t d0 = 0; d0 < hd; d0 += kPvDims) {
    const int64_t width = min64(kPvDims, hd - d0), nv = (width + 15) / 16;
    const __mmask16 last = tail_mask(width - 16 * (nv - 1));
    switch (nv) {
      case 1: pv_chunk<R, 1>(p, len, v, hd, d0, last, o); break;
      case 2: pv_chunk<R, 2>(p, len, v, hd, d0, last, o); break;
      case 3: pv_chunk<R, 3>(p, len, v, hd, d0, last, o); break;
      case 4: pv_chunk<R, 4>(p, len, v, hd, d0, last, o); break;
      case 5: pv_chunk<R, 5>(p, len, v, hd, d0, last, o); break;
      case 6: pv_chunk<R, 6>(p, len, v, hd, d0, last, o); break;
      case 7: pv_chunk<R, 7>(p, len, v, hd, d0, last, o); break;
      default: pv_chunk<R, 8>(p, len, v, hd, d0, last, o); break;
    }
  }
}

}  // namespace

int64_t attention_scores_floats(int64_t rows, int64_t max_len) { return rows * round_up16(max_len); }

void attention_block(const AttentionBlock& b) {
  const int64_t hd = b.head_dim, group = b.group;
  const int64_t max_len = b.start + b.t_end, ld = round_up16(max_len);
  auto q_row = [&](int64_t t, int64_t hh) { return b.q + t * b.q_stride + (b.g * group + hh) * hd; };
  auto out_row = [&](int64_t t, int64_t hh) { return b.out + (t * b.heads + b.g * group + hh) * hd; };
  auto score_row = [&](int64_t t, int64_t hh) { return b.scores + ((t - b.t_begin) * group + hh) * ld; };
  const __m512 scale = _mm512_set1_ps(b.scale);

  // Scores, key block by key block; token t sees keys 0 .. start + t.
  for (int64_t kb = 0; kb < max_len; kb += kKeys) {
    for (int64_t t = max64(b.t_begin, kb - b.start); t < b.t_end; ++t) {
      // Lanes past the causal limit repeat the last key; their scores land in the row's padding.
      const int64_t keys = min64(kKeys, b.start + t + 1 - kb);
      for (int64_t hh = 0; hh < group; ++hh) {
        _mm512_storeu_ps(score_row(t, hh) + kb, _mm512_mul_ps(scores16(q_row(t, hh), b.keys, kb, keys, hd), scale));
      }
    }
  }
  for (int64_t t = b.t_begin; t < b.t_end; ++t) {
    const int64_t len = b.start + t + 1;
    for (int64_t hh = 0; hh < group; ++hh) softmax(score_row(t, hh), len);
    int64_t hh = 0;
    for (; hh + 2 <= group; hh += 2) {
      const float* const p[2] = {score_row(t, hh), score_row(t, hh + 1)};
      float* const o[2] = {out_row(t, hh), out_row(t, hh + 1)};
      pv<2>(p, len, b.values, hd, o);
    }
    if (hh < group) {
      const float* const p[1] = {score_row(t, hh)};
      float* const o[1] = {out_row(t, hh)};
      pv<1>(p, len, b.values, hd, o);
    }
  }
}

}  // namespace qswap::kernels::avx512

#endif
