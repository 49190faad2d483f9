// AVX-512 element-wise kernels (intrinsics only, see ops_avx512.h). Tails use masked loads and
// stores, so nothing past n is read or written.
#include "qswap/kernels/ops_avx512.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)

#include <immintrin.h>

namespace qswap::kernels::avx512 {
namespace {

inline __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
}

// Calls body(i, mask) for every block of up to 16 elements.
template <typename Body>
inline void for_blocks(int64_t n, Body body) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) body(i, static_cast<__mmask16>(0xFFFF));
  if (i < n) body(i, tail_mask(n - i));
}

// exp(x): x = n ln2 + r, |r| <= ln2/2, exp(r) by Cephes' expf polynomial (within 2 ulp of expf),
// times 2^n by vscalefps, which also gives 0 on underflow and inf on overflow. NaN stays NaN.
inline __m512 exp_ps(__m512 x) {
  x = _mm512_min_ps(_mm512_set1_ps(89.0f), x);  // operand order: a NaN x is returned as is
  x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

}  // namespace

float sum_squares(const float* x, int64_t n) {
  __m512 acc = _mm512_setzero_ps();
  for_blocks(n, [&](int64_t i, __mmask16 m) {
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    acc = _mm512_fmadd_ps(v, v, acc);
  });
  return _mm512_reduce_add_ps(acc);
}

void scale_mul_bf16(const float* x, float r, const uint16_t* weight, float* out, int64_t n) {
  const __m512 rv = _mm512_set1_ps(r);
  for_blocks(n, [&](int64_t i, __mmask16 m) {
    const __m512 w = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, weight + i)), 16));
    const __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), rv), w);
    _mm512_mask_storeu_ps(out + i, m, v);
  });
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for_blocks(n, [&](int64_t i, __mmask16 m) {
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
    const __m512 e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), g));
    const __m512 s = _mm512_div_ps(g, _mm512_add_ps(one, e));
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, up + i)));
  });
}

void add_inplace(float* x, const float* y, int64_t n) {
  for_blocks(n, [&](int64_t i, __mmask16 m) {
    _mm512_mask_storeu_ps(x + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  });
}

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  __m512 mx = _mm512_set1_ps(-__builtin_inff());
  for_blocks(n, [&](int64_t i, __mmask16 m) { mx = _mm512_mask_max_ps(mx, m, mx, _mm512_maskz_loadu_ps(m, x + i)); });
  const __m512 maxv = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
  __m512 sum = _mm512_setzero_ps();
  for_blocks(n, [&](int64_t i, __mmask16 m) {
    const __m512 e = exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), maxv));
    sum = _mm512_mask_add_ps(sum, m, sum, e);
    _mm512_mask_storeu_ps(x + i, m, e);
  });
  const __m512 total = _mm512_set1_ps(_mm512_reduce_add_ps(sum));
  for_blocks(n, [&](int64_t i, __mmask16 m) {
    _mm512_mask_storeu_ps(x + i, m, _mm512_div_ps(_mm512_maskz_loadu_ps(m, x + i), total));
  });
}

float max_value(const float* x, int64_t n) {
  // _mm512_max_ps(v, acc) returns acc where v is NaN, so NaN entries are skipped.
  __m512 m0 = _mm512_set1_ps(-__builtin_inff()), m1 = m0, m2 = m0, m3 = m0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    m0 = _mm512_max_ps(_mm512_loadu_ps(x + i), m0);
    m1 = _mm512_max_ps(_mm512_loadu_ps(x + i + 16), m1);
    m2 = _mm512_max_ps(_mm512_loadu_ps(x + i + 32), m2);
    m3 = _mm512_max_ps(_mm512_loadu_ps(x + i + 48), m3);
  }
  for_blocks(n - i, [&](int64_t j, __mmask16 m) { m0 = _mm512_mask_max_ps(m0, m, _mm512_maskz_loadu_ps(m, x + i + j), m0); });
  return _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
}

int64_t find_at_least(const float* x, int64_t n, float threshold) {
  const __m512 t = _mm512_set1_ps(threshold);
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __mmask16 k0 = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), t, _CMP_GE_OQ);
    const __mmask16 k1 = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i + 16), t, _CMP_GE_OQ);
    const __mmask16 k2 = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i + 32), t, _CMP_GE_OQ);
    const __mmask16 k3 = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i + 48), t, _CMP_GE_OQ);
    if ((k0 | k1 | k2 | k3) == 0) continue;
    if (k0 != 0) return i + __builtin_ctz(k0);
    if (k1 != 0) return i + 16 + __builtin_ctz(k1);
    if (k2 != 0) return i + 32 + __builtin_ctz(k2);
    return i + 48 + __builtin_ctz(k3);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __mmask16 k = _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, x + i), t, _CMP_GE_OQ);
    if (k != 0) return i + __builtin_ctz(k);
  }
  return n;
}

namespace {

// The sum of the 16 lanes in double, as 8 pairs.
inline __m512d to_double(__m512 a) {
  const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1));
  return _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(a)), _mm512_cvtps_pd(hi));
}

// Four f32 accumulators over a block of up to `block` elements (a multiple of 64 keeps every lane
// at <= block / 64 full terms plus a 4-vector tail), then summed in double.
template <bool kStore>
double exp_weights_impl(const float* x, int64_t n, float shift, float scale, float* out, double* block_sums,
                        int64_t block) {
  const __m512 sh = _mm512_set1_ps(shift), sc = _mm512_set1_ps(scale);
  auto weight = [&](__m512 v) { return exp_ps(_mm512_mul_ps(_mm512_sub_ps(v, sh), sc)); };
  double total = 0.0;
  for (int64_t b = 0; b < n; b += block) {
    const int64_t len = n - b < block ? n - b : block;
    const float* xb = x + b;
    float* ob = kStore ? out + b : nullptr;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 64 <= len; i += 64) {
      const __m512 e0 = weight(_mm512_loadu_ps(xb + i));
      const __m512 e1 = weight(_mm512_loadu_ps(xb + i + 16));
      const __m512 e2 = weight(_mm512_loadu_ps(xb + i + 32));
      const __m512 e3 = weight(_mm512_loadu_ps(xb + i + 48));
      if constexpr (kStore) {
        _mm512_storeu_ps(ob + i, e0);
        _mm512_storeu_ps(ob + i + 16, e1);
        _mm512_storeu_ps(ob + i + 32, e2);
        _mm512_storeu_ps(ob + i + 48, e3);
      }
      a0 = _mm512_add_ps(a0, e0);
      a1 = _mm512_add_ps(a1, e1);
      a2 = _mm512_add_ps(a2, e2);
      a3 = _mm512_add_ps(a3, e3);
    }
    for_blocks(len - i, [&](int64_t j, __mmask16 m) {
      const __m512 e = weight(_mm512_maskz_loadu_ps(m, xb + i + j));
      if constexpr (kStore) _mm512_mask_storeu_ps(ob + i + j, m, e);
      a0 = _mm512_mask_add_ps(a0, m, a0, e);
    });
    const double sum = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(to_double(a0), to_double(a1)),
                                                          _mm512_add_pd(to_double(a2), to_double(a3))));
    if (block_sums != nullptr) block_sums[b / block] = sum;
    total += sum;
  }
  return total;
}

}  // namespace

double exp_weights(const float* x, int64_t n, float shift, float scale, float* out, double* block_sums, int64_t block) {
  return out != nullptr ? exp_weights_impl<true>(x, n, shift, scale, out, block_sums, block)
                        : exp_weights_impl<false>(x, n, shift, scale, out, block_sums, block);
}

}  // namespace qswap::kernels::avx512

#endif
