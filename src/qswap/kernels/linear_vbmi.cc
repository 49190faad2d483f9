// GEMV for the e4m3 layouts with AVX512-VBMI (compiled with AVX-512 + VBMI flags; intrinsics only,
// see linear_avx512.h). Decoding 64 codes takes 9 shuffle/logic uops instead of 20 for the f16
// placement (linear_avx512.cc), which is what lets a GEMV keep up with memory:
//   1. vpermb reorders the codes so that the unpacks below produce elements in order;
//   2. two vpermi2b look up the low and high bytes of each code's bf16 value (128-entry tables,
//      indexed by the 7 magnitude bits: e4m3 values are exact in bf16, subnormals included);
//      a vpternlogd ORs the code's sign into the high byte;
//   3. vpunpck{l,h}bw interleave them into 2 × 32 bf16; a shift and a mask widen those to
//      4 × 16 f32.
// The values are exact (no 2^-8 to undo), and NaN codes decode to NaN.
#include "qswap/kernels/linear_avx512.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VBMI__)

#include <immintrin.h>

#include "qswap/kernels/linear_simd_avx512.h"

namespace qswap::kernels::avx512 {
namespace {

struct alignas(64) E4m3Tables {
  uint8_t lo[128];   // low byte of bf16(e4m3 magnitude code)
  uint8_t hi[128];   // high byte
  uint8_t perm[64];  // the vpermb order of step 1
};

// bf16 bits of the e4m3 value with magnitude code c (0..127).
constexpr uint16_t e4m3_magnitude_bf16(int c) {
  if (c == 0x7F) return 0x7FC0;  // NaN
  const int e = c >> 3, m = c & 7;
  if (e != 0) return static_cast<uint16_t>(((e + 120) << 7) | (m << 4));  // 2^(e-7) × 1.m
  if (m == 0) return 0;
  const int p = m >= 4 ? 2 : m >= 2 ? 1 : 0;  // m × 2^-9 = 2^(p-9) × (m / 2^p)
  return static_cast<uint16_t>(((118 + p) << 7) | ((m - (1 << p)) << (7 - p)));
}

constexpr E4m3Tables make_tables() {
  E4m3Tables t{};
  for (int c = 0; c < 128; ++c) {
    t.lo[c] = static_cast<uint8_t>(e4m3_magnitude_bf16(c) & 0xFF);
    t.hi[c] = static_cast<uint8_t>(e4m3_magnitude_bf16(c) >> 8);
  }
  // Unpacking lane L's bytes 8a + 2u + b gives output vector 2a + b, element 4L + u.
  for (int lane = 0; lane < 4; ++lane) {
    for (int a = 0; a < 2; ++a) {
      for (int u = 0; u < 4; ++u) {
        for (int b = 0; b < 2; ++b) t.perm[16 * lane + 8 * a + 2 * u + b] = static_cast<uint8_t>(32 * a + 16 * b + 4 * lane + u);
      }
    }
  }
  return t;
}

constexpr E4m3Tables kTables = make_tables();

struct TableDecoder {
  static constexpr float kUnbias = 1.0f;

  __m512i lo0 = _mm512_load_si512(kTables.lo), lo1 = _mm512_load_si512(kTables.lo + 64);
  __m512i hi0 = _mm512_load_si512(kTables.hi), hi1 = _mm512_load_si512(kTables.hi + 64);
  __m512i perm = _mm512_load_si512(kTables.perm);

  template <bool kMasked>
  inline void decode64(const void* p, int64_t i, int64_t left, __m512 (&w)[4]) const {
    const uint8_t* q = static_cast<const uint8_t*>(p) + i;
    __m512i c;
    if constexpr (kMasked) {
      c = _mm512_maskz_loadu_epi8(left >= 64 ? ~0ULL : (1ULL << left) - 1, q);
    } else {
      c = _mm512_loadu_si512(q);
    }
    c = _mm512_permutexvar_epi8(perm, c);
    const __m512i lo = _mm512_permutex2var_epi8(lo0, c, lo1);
    __m512i hi = _mm512_permutex2var_epi8(hi0, c, hi1);
    hi = _mm512_ternarylogic_epi32(hi, c, _mm512_set1_epi8(static_cast<char>(0x80)), 0xF8);  // hi | (c & 0x80)
    const __m512i w0 = _mm512_unpacklo_epi8(lo, hi), w1 = _mm512_unpackhi_epi8(lo, hi);
    const __m512i high = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
    w[0] = _mm512_castsi512_ps(_mm512_slli_epi32(w0, 16));
    w[1] = _mm512_castsi512_ps(_mm512_and_si512(w0, high));
    w[2] = _mm512_castsi512_ps(_mm512_slli_epi32(w1, 16));
    w[3] = _mm512_castsi512_ps(_mm512_and_si512(w1, high));
  }
};

}  // namespace

void gemv_e4m3_vbmi(const Weight& w, const float* x, int64_t m, float* y, const uint16_t* bias, int64_t n_begin,
                    int64_t n_end) {
  switch (w.scales) {
    case Scales::kTensor: return gemv_layout<TableDecoder, Codes::kE4m3, Scales::kTensor>(w, x, m, y, bias, n_begin, n_end);
    case Scales::kRow: return gemv_layout<TableDecoder, Codes::kE4m3, Scales::kRow>(w, x, m, y, bias, n_begin, n_end);
    case Scales::kBlock: return gemv_layout<TableDecoder, Codes::kE4m3, Scales::kBlock>(w, x, m, y, bias, n_begin, n_end);
    case Scales::kMx: return gemv_layout<TableDecoder, Codes::kE4m3, Scales::kMx>(w, x, m, y, bias, n_begin, n_end);
    case Scales::kNone: break;
  }
}

}  // namespace qswap::kernels::avx512

#endif
