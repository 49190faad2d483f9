// Building blocks of the AVX-512 encoders, shared by tensor/convert_avx512.cc and
// quant/row_ops_avx512.cc. Include only from files compiled with the AVX-512 flags: everything
// here is intrinsics in an anonymous namespace (internal linkage), so no AVX-512 copy of a
// function can become the program-wide one (see convert_avx512.cc).
//
// Two e4m3 encoders, both bit-identical to convert.h's f32_to_e4m3 (tests/tensor, tests/quant):
//   - encode_e4m3: any f32 (NaN, inf, saturation, subnormals), 16 values per vector;
//   - e4m3_words_bf16x32: 32 finite bf16 values times a finite scale per vector, about half the
//     vector ops per value. The bulk paths use it on blocks of 64 values known to be finite and
//     encode_e4m3 on the rest (tails, blocks holding NaN or Inf).
#pragma once

#include <cstdint>

#include <immintrin.h>

namespace qswap::avx512_detail {
namespace {

constexpr uint32_t kF32Inf = 0x7F800000;
constexpr uint32_t kF32QuietNan = 0x7FC00000;
constexpr uint32_t kE4m3MaxBits = 0x43E00000;  // 448.0f
constexpr uint32_t kE4m3MinNormalBits = 0x3C800000;  // 2^-6

inline __m512i splat(uint32_t v) { return _mm512_set1_epi32(static_cast<int>(v)); }

inline __m512 load_f32(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
inline __m512 load_bf16(const uint16_t* p, __mmask16 m) {
  __m512i h = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(h, 16));
}

// e4m3 magnitude code of y >= 0 (not NaN; inf saturates), in bits 0..7 of each lane; bits 8..15
// are 0, bits 16..31 are 0 or garbage (callers mask them). Same rounding as the reference:
//  - y >= 2^-6 (e4m3 normal): round-half-even at bit 20 of the f32 bits, the add that rounds also
//    rebiasing the exponent (127 -> 7), so the code is the sum shifted down;
//  - y < 2^-6: e4m3's quantum there is 2^-9 at every exponent, the ulp of 2^14. The f32 sum
//    y + 2^14 is y rounded to that grid (RNE; the rounding mode is explicit, so MXCSR cannot change
//    it, and FTZ/DAZ cannot either: an f32 subnormal y rounds to 0 both ways), and its low bits
//    count quanta: 0..8, 8 being 2^-6 (code 0x08). Its bits 16..31 are 0x4680.
inline __m512i e4m3_magnitude(__m512 y) {
  const __m512i m = _mm512_min_epu32(_mm512_castps_si512(y), splat(kE4m3MaxBits));
  const __mmask16 odd = _mm512_test_epi32_mask(m, splat(1u << 20));
  __m512i t = _mm512_add_epi32(m, splat(0x7FFFFu - (120u << 23)));  // half - 1, rebias
  t = _mm512_mask_sub_epi32(t, odd, t, splat(0xFFFFFFFFu));          // + 1 when the kept lsb is odd
  const __m512i normal = _mm512_srli_epi32(t, 20);
  const __mmask16 small = _mm512_cmplt_epu32_mask(m, splat(kE4m3MinNormalBits));
  return _mm512_castps_si512(_mm512_mask_add_round_ps(_mm512_castsi512_ps(normal), small, _mm512_castsi512_ps(m),
                                                      _mm512_set1_ps(0x1p14f),
                                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

// Any f32 -> e4m3 code: sign, saturation to +-448, NaN -> 0x7F | sign. One byte per lane.
inline __m128i encode_e4m3(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i abs = _mm512_and_si512(u, splat(0x7FFFFFFF));
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(abs, splat(kF32Inf));
  __m512i code = _mm512_mask_mov_epi32(e4m3_magnitude(_mm512_castsi512_ps(abs)), nan, splat(0x7F));
  code = _mm512_ternarylogic_epi32(code, _mm512_srli_epi32(u, 24), splat(0x80), 0xF8);  // a | (b & c)
  return _mm512_cvtepi32_epi8(code);  // truncates: the garbage above bit 15 goes
}

// 32 bf16 values x (one vector; abs = x & 0x7FFF7FFF) -> their e4m3 codes of x * s as 16-bit
// words (code in the low byte). s = |inv_scale|, finite; kNegate when inv_scale's sign bit is set.
// Every x must be finite. The even and odd elements are widened in place (x << 16 and
// x & 0xFFFF0000, no shuffle), and |x * s| = |x| * |s| exactly, so the sign is x's (flipped by
// kNegate), as the reference's product has it.
template <bool kNegate>
inline __m512i e4m3_words_bf16x32(__m512i x, __m512i abs, __m512 s) {
  const __m512 even = _mm512_mul_ps(_mm512_castsi512_ps(_mm512_slli_epi32(abs, 16)), s);
  const __m512 odd = _mm512_mul_ps(_mm512_castsi512_ps(_mm512_and_si512(abs, splat(0xFFFF0000))), s);
  // Even codes to bits 0..7 (their garbage above bit 15 masked off), odd codes to bits 16..23.
  const __m512i w = _mm512_ternarylogic_epi32(e4m3_magnitude(even), _mm512_slli_epi32(e4m3_magnitude(odd), 16),
                                              splat(0xFFFF), 0xEC);  // (a & c) | b
  // x's sign bits 15 and 31 moved to bits 7 and 23.
  const __m512i sign = _mm512_srli_epi16(x, 8);
  return _mm512_ternarylogic_epi32(w, sign, splat(0x00800080), kNegate ? 0xF2 : 0xF8);  // a | (~b & c) : a | (b & c)
}

// Two vectors of 32 code words -> the 64 codes in order.
inline __m512i pack_code_words(__m512i w0, __m512i w1) {
  // packus interleaves 8-byte groups of w0 and w1 per 128-bit lane; the permute restores order.
  return _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7), _mm512_packus_epi16(w0, w1));
}

// True when one of the 32 bf16 values (abs = x & 0x7FFF7FFF) of a or b is NaN or Inf.
inline bool any_non_finite_bf16(__m512i abs_a, __m512i abs_b) {
  const __m512i inf = _mm512_set1_epi16(0x7F80);
  return !_kortestz_mask32_u8(_mm512_cmpge_epu16_mask(abs_a, inf), _mm512_cmpge_epu16_mask(abs_b, inf));
}

}  // namespace
}  // namespace qswap::avx512_detail
