// AVX-512 row ops; reached only when cpu_features().avx512 (see row_ops.cc).
#include <immintrin.h>

#include "qswap/quant/row_ops.h"

namespace qswap::quant {

void quantize_i8_avx512(const float* x, float inv_scale, int8_t* out, int64_t n) {
  const __m512 inv = _mm512_set1_ps(inv_scale);
  const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
  int64_t i = 0;
  for (; i < n; i += 16) {
    __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - i)) - 1);
    __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv);
    // cvtps_epi32 rounds with MXCSR's mode, nearest-even by default: the same as nearbyint.
    __m512i q = _mm512_min_epi32(_mm512_max_epi32(_mm512_cvtps_epi32(v), lo), hi);
    _mm512_mask_cvtepi32_storeu_epi8(out + i, m, q);
  }
}

}  // namespace qswap::quant
