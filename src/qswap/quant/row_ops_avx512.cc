// Only intrinsics here (see row_ops_avx512.h); reached when cpu_features().avx512.
#include "qswap/quant/row_ops_avx512.h"

#include <immintrin.h>

namespace qswap::quant::avx512 {

void quantize_i8(const float* x, float inv_scale, int8_t* out, int64_t n) {
  const __m512 inv = _mm512_set1_ps(inv_scale);
  const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
  for (int64_t i = 0; i < n; i += 16) {
    const int64_t left = n - i;
    const __mmask16 m = left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
    const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv);
    // cvtps_epi32 rounds with MXCSR's mode, nearest-even by default: the same as nearbyint.
    const __m512i q = _mm512_min_epi32(_mm512_max_epi32(_mm512_cvtps_epi32(v), lo), hi);
    _mm512_mask_cvtepi32_storeu_epi8(out + i, m, q);
  }
}

}  // namespace qswap::quant::avx512
