// GEMV for the e4m3 layouts with AVX512-VBMI and GFNI (compiled with those flags; intrinsics
// only, see linear_avx512.h). Decoding 64 codes takes 12 uops, 5 of them port-5-only (the f16
// placement of linear_avx512.cc takes 20), which is what lets a GEMV keep up with memory:
//   1. two vgf2p8affineqb map each code byte to the high and low byte of its bf16 value. For the
//      normal codes (exponent field e = 1..15) both are GF(2)-affine in the code's bits: the
//      bf16 exponent e + 120 is [e3, ~e3, ~e3, ~e3, ~e3, e2, e1, e0], so the high byte is
//      [s, e3, ~e3 x4, e2, e1] (constant 0x3C for the ~) and the low byte [e0, m2, m1, m0, 0000].
//   2. Subnormals and zero (e = 0; vptestnmb finds them) are not affine: two masked vpermb by the
//      mantissa fix them, one writing their low byte, one XORing their high byte into shape
//      (which keeps the sign the affine map placed). In real weights a step rarely holds such a
//      code, so the GEMV skips the fix behind a branch while they stay rare, and applies it
//      unconditionally in rows where they are not (FixMode, linear_simd_avx512.h).
//   3. vpunpck{l,h}bw interleave low and high bytes into 2 × 32 bf16; a shift and a mask widen
//      those to 4 × 16 f32.
// The elements come out of the unpacks in a shuffled order; rather than a vpermb of every 64
// codes (port 5, which the permutes and unpacks already load), x is put in that order once per
// call (gemv_e4m3_vbmi_pack_x). The values are exact (no 2^-8 to undo). The NaN codes 0x7F/0xFF
// decode as ±480, as in the AVX-512F decoder; the schemes never write them.
#include "qswap/kernels/linear_avx512.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VBMI__) && defined(__GFNI__)

#include <immintrin.h>

#include "qswap/kernels/linear_simd_avx512.h"

namespace qswap::kernels::avx512 {
namespace {

// bf16 bits of the e4m3 value with magnitude code c (0..127; 0x7F, NaN, is never decoded here).
constexpr uint16_t e4m3_magnitude_bf16(int c) {
  const int e = c >> 3, m = c & 7;
  if (e != 0) return static_cast<uint16_t>(((e + 120) << 7) | (m << 4));  // 2^(e-7) × 1.m
  if (m == 0) return 0;
  const int p = m >= 4 ? 2 : m >= 2 ? 1 : 0;  // m × 2^-9 = 2^(p-9) × (m / 2^p)
  return static_cast<uint16_t>(((118 + p) << 7) | ((m - (1 << p)) << (7 - p)));
}

// vgf2p8affineqb: output bit i of a byte = parity(row i AND the byte) XOR bit i of the constant,
// where row i is byte 7 - i of the matrix qword. rows[i]: the code bits that feed output bit i.
constexpr uint64_t matrix(const uint8_t (&rows)[8]) {
  uint64_t q = 0;
  for (int i = 0; i < 8; ++i) q |= static_cast<uint64_t>(rows[i]) << (8 * (7 - i));
  return q;
}
// Code bits: s = 0x80, e3..e0 = 0x40..0x08, m2..m0 = 0x04..0x01.
constexpr uint64_t kHighMatrix = matrix({0x10, 0x20, 0x40, 0x40, 0x40, 0x40, 0x40, 0x80});  // e1 e2 e3 x5 s
constexpr int kHighConstant = 0x3C;  // bits 2-5: ~e3
constexpr uint64_t kLowMatrix = matrix({0, 0, 0, 0, 0x01, 0x02, 0x04, 0x08});  // m0 m1 m2 e0 in bits 4-7

// What the affine maps give a code with e = 0 (high byte s | 0x3C, low byte m << 4) turned into
// its bf16 bytes, indexed by the code's low 6 bits (= m when e = 0).
struct alignas(64) SubnormalFix {
  uint8_t low[64];        // the bf16 low byte
  uint8_t high_xor[64];   // XOR into the high byte
};
constexpr SubnormalFix make_fix() {
  SubnormalFix f{};
  for (int m = 0; m < 8; ++m) {
    f.low[m] = static_cast<uint8_t>(e4m3_magnitude_bf16(m) & 0xFF);
    f.high_xor[m] = static_cast<uint8_t>((e4m3_magnitude_bf16(m) >> 8) ^ kHighConstant);
  }
  return f;
}
constexpr SubnormalFix kFix = make_fix();

// The affine maps agree with e4m3_magnitude_bf16 (and the sign) on every normal code.
constexpr uint8_t affine(uint64_t m, int constant, uint8_t x) {
  uint8_t out = 0;
  for (int i = 0; i < 8; ++i) {
    const uint8_t row = static_cast<uint8_t>(m >> (8 * (7 - i)));
    out |= static_cast<uint8_t>((__builtin_parity(row & x) ^ ((constant >> i) & 1)) << i);
  }
  return out;
}
constexpr bool affine_maps_match() {
  for (int c = 8; c < 256; ++c) {
    if ((c & 0x7F) == 0x7F) continue;
    const uint16_t want = static_cast<uint16_t>(e4m3_magnitude_bf16(c & 0x7F) | ((c & 0x80) << 8));
    const uint8_t x = static_cast<uint8_t>(c);
    if (((c & 0x78) != 0) && (affine(kHighMatrix, kHighConstant, x) != (want >> 8) ||
                              affine(kLowMatrix, 0, x) != (want & 0xFF))) {
      return false;
    }
  }
  return true;
}
static_assert(affine_maps_match());

// Where the decoded vectors put the 64 elements of a step: unpack{lo,hi} interleave the bytes of
// each 128-bit quarter q, so 32-bit lane 4q + d of vector v holds element 16q + 2d + kOffset[v].
constexpr int kOffset[4] = {0, 1, 8, 9};

struct AffineDecoder {
  static constexpr float kUnbias = 1.0f;
  static constexpr bool kPermuted = true;
  static constexpr bool kRareFixes = true;

  __m512i fix_low = _mm512_load_si512(kFix.low), fix_high = _mm512_load_si512(kFix.high_xor);

  // kBranch: fix the exponent-0 codes only if the step has any (counted in `fixed_steps`).
  template <bool kMasked, bool kBranch>
  inline void decode64(const void* p, int64_t i, int64_t left, __m512 (&w)[4], int64_t& fixed_steps) const {
    const uint8_t* q = static_cast<const uint8_t*>(p) + i;
    __m512i c;
    if constexpr (kMasked) {  // codes past k read as 0 and decode to +0
      c = _mm512_maskz_loadu_epi8(left >= 64 ? ~0ULL : (1ULL << left) - 1, q);
    } else {
      c = _mm512_loadu_si512(q);
    }
    const __mmask64 e0 = _mm512_testn_epi8_mask(c, _mm512_set1_epi8(0x78));
    const __m512i high_matrix = _mm512_set1_epi64(static_cast<long long>(kHighMatrix));
    const __m512i low_matrix = _mm512_set1_epi64(static_cast<long long>(kLowMatrix));
    __m512i hi = _mm512_gf2p8affine_epi64_epi8(c, high_matrix, kHighConstant);
    __m512i lo = _mm512_gf2p8affine_epi64_epi8(c, low_matrix, 0);
    if (!kBranch || __builtin_expect(e0 != 0, 0)) {
      if constexpr (kBranch) ++fixed_steps;
      lo = _mm512_mask_permutexvar_epi8(lo, e0, c, fix_low);
      hi = _mm512_xor_si512(hi, _mm512_maskz_permutexvar_epi8(e0, c, fix_high));
    }
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
                    int64_t n_end, float* xs) {
  constexpr Codes kE4m3 = Codes::kE4m3;
  switch (w.scales) {
    case Scales::kTensor: return gemv_layout<AffineDecoder, kE4m3, Scales::kTensor>(w, x, m, y, bias, n_begin, n_end, xs);
    case Scales::kRow: return gemv_layout<AffineDecoder, kE4m3, Scales::kRow>(w, x, m, y, bias, n_begin, n_end, xs);
    case Scales::kBlock: return gemv_layout<AffineDecoder, kE4m3, Scales::kBlock>(w, x, m, y, bias, n_begin, n_end, xs);
    case Scales::kMx: return gemv_layout<AffineDecoder, kE4m3, Scales::kMx>(w, x, m, y, bias, n_begin, n_end, xs);
    case Scales::kNone: break;
  }
}

}  // namespace qswap::kernels::avx512

#endif
