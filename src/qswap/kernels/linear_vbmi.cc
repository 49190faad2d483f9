// GEMV for the e4m3 layouts with AVX512-VBMI (compiled with AVX-512 + VBMI flags; intrinsics only,
// see linear_avx512.h). Decoding 64 codes takes 8 shuffle/logic uops instead of 20 for the f16
// placement (linear_avx512.cc), which is what lets a GEMV keep up with memory:
//   1. two vpermi2b look up the low and high bytes of each code's bf16 value (128-entry tables,
//      indexed by the 7 magnitude bits: e4m3 values are exact in bf16, subnormals included);
//      a vpternlogd ORs the code's sign into the high byte;
//   2. vpunpck{l,h}bw interleave them into 2 × 32 bf16; a shift and a mask widen those to
//      4 × 16 f32.
// The elements come out of the unpacks in a shuffled order; rather than a vpermb of every 64
// codes (port 5, which the lookups saturate: -6 to -12 % cycles per row without it), x is put in
// that order once per call (gemv_e4m3_vbmi_pack_x). The values are exact (no 2^-8 to undo), and
// NaN codes decode to NaN.
#include "qswap/kernels/linear_avx512.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VBMI__)

#include <immintrin.h>

#include "qswap/kernels/linear_simd_avx512.h"

namespace qswap::kernels::avx512 {
namespace {

struct alignas(64) E4m3Tables {
  uint8_t lo[128];  // low byte of bf16(e4m3 magnitude code)
  uint8_t hi[128];  // high byte
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
  return t;
}

// Where the decoded vectors put the 64 elements of a step: unpack{lo,hi} interleave the bytes of
// each 128-bit quarter q, so 32-bit lane 4q + d of vector v holds element 16q + 2d + kOffset[v].
constexpr int kOffset[4] = {0, 1, 8, 9};

constexpr E4m3Tables kTables = make_tables();

struct TableDecoder {
  static constexpr float kUnbias = 1.0f;
  static constexpr bool kPermuted = true;

  __m512i lo0 = _mm512_load_si512(kTables.lo), lo1 = _mm512_load_si512(kTables.lo + 64);
  __m512i hi0 = _mm512_load_si512(kTables.hi), hi1 = _mm512_load_si512(kTables.hi + 64);

  template <bool kMasked>
  inline void decode64(const void* p, int64_t i, int64_t left, __m512 (&w)[4]) const {
    const uint8_t* q = static_cast<const uint8_t*>(p) + i;
    __m512i c;
    if constexpr (kMasked) {
      c = _mm512_maskz_loadu_epi8(left >= 64 ? ~0ULL : (1ULL << left) - 1, q);
    } else {
      c = _mm512_loadu_si512(q);
    }
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

size_t gemv_e4m3_vbmi_x_floats(int64_t m, int64_t k) { return static_cast<size_t>(m * ((k + 63) / 64 * 64)); }

void gemv_e4m3_vbmi_pack_x(const float* x, int64_t m, int64_t k, float* xq) {
  // Lanes 0-7 of output vector v come from the first 32 elements, 8-15 from the next 32, both
  // with the index pattern 16 (q mod 2) + 2d + kOffset[v].
  __m512i idx[4];
  for (int v = 0; v < 4; ++v) {
    alignas(64) int32_t lanes[16];
    for (int lane = 0; lane < 16; ++lane) lanes[lane] = 16 * ((lane / 4) % 2) + 2 * (lane % 4) + kOffset[v];
    idx[v] = _mm512_load_si512(lanes);
  }
  const int64_t ldx = (k + 63) / 64 * 64;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t kk = 0; kk < k; kk += 64) {
      __m512 in[4];
      for (int r = 0; r < 4; ++r) in[r] = _mm512_maskz_loadu_ps(tail_mask(k - kk - 16 * r), x + i * k + kk + 16 * r);
      for (int v = 0; v < 4; ++v) {
        const __m512 a = _mm512_permutex2var_ps(in[0], idx[v], in[1]), b = _mm512_permutex2var_ps(in[2], idx[v], in[3]);
        _mm512_storeu_ps(xq + i * ldx + kk + 16 * v, _mm512_mask_blend_ps(static_cast<__mmask16>(0xFF00), a, b));
      }
    }
  }
}

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
