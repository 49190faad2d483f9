// Horizontal sums of 16 vectors at once, for the AVX-512 kernels. Include only from ISA files,
// after <immintrin.h> (internal linkage, see linear_simd_avx512.h).
#pragma once

namespace qswap::kernels::avx512 {
namespace {

// Lane j of the result = the sum of the 16 lanes of a[j], by a transpose-add tree: 30 shuffles
// and 15 adds for 16 sums, against ~5 shuffles and 4 adds per _mm512_reduce_add_ps. Every lane
// is summed in the same order ((l0 + l2) + (l1 + l3) within each 128-bit quarter q, then
// (q0 + q1) + (q2 + q3)), so a sum never depends on which vectors share the call.
inline __m512 reduce16(const __m512 (&a)[16]) {
  __m512 b[8];  // per 128-bit quarter: [x0+x2, y0+y2, x1+x3, y1+y3] of x = a[2i], y = a[2i+1]
  for (int i = 0; i < 8; ++i) {
    b[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
  }
  __m512 c[4];  // per quarter q: sums over q of vectors 4i .. 4i+3
  for (int i = 0; i < 4; ++i) {
    const __m512d x = _mm512_castps_pd(b[2 * i]), y = _mm512_castps_pd(b[2 * i + 1]);
    c[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
  }
  __m512 d[2];  // quarters 0-1: vectors 8i .. 8i+3, quarters 2-3: 8i+4 .. 8i+7 (each a half sum)
  for (int i = 0; i < 2; ++i) {
    d[i] = _mm512_add_ps(_mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], 0x88),
                         _mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], 0xDD));
  }
  return _mm512_add_ps(_mm512_shuffle_f32x4(d[0], d[1], 0x88), _mm512_shuffle_f32x4(d[0], d[1], 0xDD));
}

}  // namespace
}  // namespace qswap::kernels::avx512
