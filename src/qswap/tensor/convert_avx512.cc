// AVX-512 conversions (F+BW+VL+DQ), bit-identical to the scalar reference in convert.h.
// Reached only through the dispatch in convert.cc. 16 lanes per step; the tail of a call uses
// masked loads and stores, so no element past n is read or written.
//
// Rounding is done with the same integer arithmetic as the reference (not vcvtneps2bf16, which
// flushes subnormal inputs to zero and would differ from it). f16 uses F16C's vcvtps2ph with an
// explicit round-to-nearest-even immediate, whose results (subnormals, NaN quieting and payload)
// are those of f32_to_f16; decoding with vcvtph2ps likewise matches f16_to_f32.
//
// This file is compiled with AVX-512 flags, so it must not call any inline function from a shared
// header (convert.h's reference functions, std::bit_cast, std::span): a non-inlined copy would be
// an AVX-512 build of a weak symbol the linker may pick for the whole program, and baseline CPUs
// would fault. Everything used here is an intrinsic or has internal linkage.
#include "qswap/tensor/convert.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)

#include <cstring>

#include <immintrin.h>

namespace qswap::avx512 {
namespace {

constexpr int kLanes = 16;
constexpr uint32_t kF32Inf = 0x7F800000;
constexpr uint32_t kF32QuietNan = 0x7FC00000;
constexpr uint32_t kE4m3MaxBits = 0x43E00000;  // 448.0f
constexpr uint32_t kE5m2MaxBits = 0x47600000;  // 57344.0f

float f32_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

// A NaN inv_scale fills out with its own e4m3 NaN code, as the reference does (convert.h).
bool fill_if_nan_scale(float inv_scale, uint8_t* out, size_t n) {
  uint32_t u;
  std::memcpy(&u, &inv_scale, sizeof(u));
  if ((u & 0x7FFFFFFF) <= kF32Inf) return false;
  if (n != 0) std::memset(out, static_cast<int>(0x7F | ((u >> 24) & 0x80)), n);
  return true;
}

// Calls body(i, mask) for every block of up to 16 elements; mask selects the live lanes.
template <typename Body>
inline void for_blocks(size_t n, Body body) {
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) body(i, static_cast<__mmask16>(0xFFFF));
  if (i < n) body(i, static_cast<__mmask16>((1u << (n - i)) - 1));
}

inline __m512i splat(uint32_t v) { return _mm512_set1_epi32(static_cast<int>(v)); }

inline __m512 load_f32(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
inline __m512 load_bf16(const uint16_t* p, __mmask16 m) {
  __m512i h = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(h, 16));
}

// Vector form of convert_detail::round_to_format (convert.h): same result, with the
// round-half-even step written as (sig + half - 1 + lsb) >> shift instead of a comparison.
template <int kMant, int kBias>
inline __m512i round_to_format(__m512i abs) {
  const __m512i zero = _mm512_setzero_si512();
  const __m512i one = splat(1);
  __m512i exp = _mm512_srli_epi32(abs, 23);
  __m512i sig = _mm512_and_si512(abs, splat(0x7FFFFF));
  __mmask16 normal = _mm512_test_epi32_mask(exp, exp);
  sig = _mm512_mask_or_epi32(sig, normal, sig, splat(0x800000));
  exp = _mm512_max_epi32(exp, one);
  __m512i field = _mm512_add_epi32(exp, _mm512_set1_epi32(kBias - 127));
  __m512i extra = _mm512_max_epi32(_mm512_sub_epi32(one, field), zero);
  __m512i shift = _mm512_min_epi32(_mm512_add_epi32(extra, splat(23 - kMant)), splat(31));
  __m512i lsb = _mm512_and_si512(_mm512_srlv_epi32(sig, shift), one);
  __m512i half_m1 = _mm512_sub_epi32(_mm512_sllv_epi32(one, _mm512_sub_epi32(shift, one)), one);
  __m512i q = _mm512_srlv_epi32(_mm512_add_epi32(_mm512_add_epi32(sig, half_m1), lsb), shift);
  __m512i high = _mm512_slli_epi32(_mm512_max_epi32(_mm512_sub_epi32(field, one), zero), kMant);
  return _mm512_add_epi32(high, q);
}

// f32 -> 8-bit float code (sign, saturation to kMaxBits, NaN -> 0x7F | sign), one byte per lane.
template <int kMant, int kBias, uint32_t kMaxBits>
inline __m128i encode_fp8(__m512 x) {
  __m512i u = _mm512_castps_si512(x);
  __m512i abs = _mm512_and_si512(u, splat(0x7FFFFFFF));
  __mmask16 nan = _mm512_cmpgt_epu32_mask(abs, splat(kF32Inf));
  __m512i code = round_to_format<kMant, kBias>(_mm512_min_epu32(abs, splat(kMaxBits)));
  code = _mm512_mask_mov_epi32(code, nan, splat(0x7F));
  code = _mm512_or_si512(code, _mm512_and_si512(_mm512_srli_epi32(u, 24), splat(0x80)));
  return _mm512_cvtepi32_epi8(code);
}

inline __m128i encode_e4m3(__m512 x) { return encode_fp8<3, 7, kE4m3MaxBits>(x); }

}  // namespace

void bf16_to_f32(const uint16_t* in, float* out, size_t n) {
  for_blocks(n, [&](size_t i, __mmask16 m) {
    _mm512_mask_storeu_ps(out + i, m, load_bf16(in + i, m));
  });
}

void f32_to_bf16(const float* in, uint16_t* out, size_t n) {
  for_blocks(n, [&](size_t i, __mmask16 m) {
    __m512i u = _mm512_castps_si512(load_f32(in + i, m));
    __m512i abs = _mm512_and_si512(u, splat(0x7FFFFFFF));
    __mmask16 nan = _mm512_cmpgt_epu32_mask(abs, splat(kF32Inf));
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), splat(1));
    // The carry never reaches the sign: |x| + 0x8000 stays below 2^31 for any non-NaN x.
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, splat(0x7FFF)), lsb), 16);
    __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(u, 16), splat(0x0040));
    r = _mm512_mask_mov_epi32(r, nan, quiet);
    _mm256_mask_storeu_epi16(out + i, m, _mm512_cvtepi32_epi16(r));
  });
}

void f16_to_f32(const uint16_t* in, float* out, size_t n) {
  for_blocks(n, [&](size_t i, __mmask16 m) {
    _mm512_mask_storeu_ps(out + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, in + i)));
  });
}

void f32_to_f16(const float* in, uint16_t* out, size_t n) {
  for_blocks(n, [&](size_t i, __mmask16 m) {
    __m256i h = _mm512_cvtps_ph(load_f32(in + i, m), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_mask_storeu_epi16(out + i, m, h);
  });
}

void e4m3_to_f32(const uint8_t* in, float* out, size_t n) {
  for_blocks(n, [&](size_t i, __mmask16 m) {
    __m512i c = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, in + i));
    __m512i mag = _mm512_and_si512(c, splat(0x7F));
    // Normal: exponent and mantissa move up as one field, rebiased by 127 - 7.
    __m512i v = _mm512_add_epi32(_mm512_slli_epi32(mag, 20), splat((127 - 7) << 23));
    // Subnormal: mant * 2^-9, an exact product of normal floats (so MXCSR cannot change it).
    __mmask16 sub = _mm512_cmplt_epu32_mask(mag, splat(0x08));
    __m512 sub_v = _mm512_mul_ps(_mm512_cvtepi32_ps(mag), _mm512_set1_ps(0x1p-9f));
    v = _mm512_mask_mov_epi32(v, sub, _mm512_castps_si512(sub_v));
    v = _mm512_mask_mov_epi32(v, _mm512_cmpeq_epi32_mask(mag, splat(0x7F)), splat(kF32QuietNan));
    __m512i sign = _mm512_slli_epi32(_mm512_and_si512(c, splat(0x80)), 24);
    _mm512_mask_storeu_ps(out + i, m, _mm512_castsi512_ps(_mm512_or_si512(v, sign)));
  });
}

void f32_to_e4m3(const float* in, uint8_t* out, size_t n) {
  for_blocks(n, [&](size_t i, __mmask16 m) {
    _mm_mask_storeu_epi8(out + i, m, encode_e4m3(load_f32(in + i, m)));
  });
}

void e5m2_to_f32(const uint8_t* in, float* out, size_t n) {
  for_blocks(n, [&](size_t i, __mmask16 m) {
    __m256i h = _mm256_slli_epi16(_mm256_cvtepu8_epi16(_mm_maskz_loadu_epi8(m, in + i)), 8);
    _mm512_mask_storeu_ps(out + i, m, _mm512_cvtph_ps(h));
  });
}

void f32_to_e5m2(const float* in, uint8_t* out, size_t n) {
  for_blocks(n, [&](size_t i, __mmask16 m) {
    __m128i code = encode_fp8<2, 15, kE5m2MaxBits>(load_f32(in + i, m));
    _mm_mask_storeu_epi8(out + i, m, code);
  });
}

void f32_to_e4m3_scaled(const float* in, float inv_scale, uint8_t* out, size_t n) {
  if (fill_if_nan_scale(inv_scale, out, n)) return;
  const __m512 s = _mm512_set1_ps(inv_scale);
  for_blocks(n, [&](size_t i, __mmask16 m) {
    _mm_mask_storeu_epi8(out + i, m, encode_e4m3(_mm512_mul_ps(load_f32(in + i, m), s)));
  });
}

void bf16_to_e4m3_scaled(const uint16_t* in, float inv_scale, uint8_t* out, size_t n) {
  if (fill_if_nan_scale(inv_scale, out, n)) return;
  const __m512 s = _mm512_set1_ps(inv_scale);
  for_blocks(n, [&](size_t i, __mmask16 m) {
    _mm_mask_storeu_epi8(out + i, m, encode_e4m3(_mm512_mul_ps(load_bf16(in + i, m), s)));
  });
}

// Integer max of the sign-cleared bits, as in scalar::amax_*: NaNs sort above inf.
float amax_f32(const float* in, size_t n) {
  __m512i acc = _mm512_setzero_si512();
  for_blocks(n, [&](size_t i, __mmask16 m) {
    __m512i u = _mm512_castps_si512(load_f32(in + i, m));  // masked-off lanes read as +0
    acc = _mm512_max_epu32(acc, _mm512_and_si512(u, splat(0x7FFFFFFF)));
  });
  // (Not _mm512_reduce_max_epu32: GCC 12 warns inside it, -Wuninitialized.)
  alignas(64) uint32_t lanes[16];
  _mm512_store_si512(lanes, acc);
  uint32_t max_abs = 0;
  for (uint32_t v : lanes) max_abs = v > max_abs ? v : max_abs;
  if (max_abs > kF32Inf) return f32_from_bits(kF32QuietNan);
  return f32_from_bits(max_abs);
}

float amax_bf16(const uint16_t* in, size_t n) {
  constexpr size_t kStep = 32;
  const __m512i abs_mask = _mm512_set1_epi16(0x7FFF);
  __m512i acc = _mm512_setzero_si512();
  size_t i = 0;
  for (; i + kStep <= n; i += kStep) {
    acc = _mm512_max_epu16(acc, _mm512_and_si512(_mm512_loadu_si512(in + i), abs_mask));
  }
  if (i < n) {
    __mmask32 m = static_cast<__mmask32>((uint64_t{1} << (n - i)) - 1);
    acc = _mm512_max_epu16(acc, _mm512_and_si512(_mm512_maskz_loadu_epi16(m, in + i), abs_mask));
  }
  alignas(64) uint16_t lanes[32];
  _mm512_store_si512(lanes, acc);
  uint16_t max_abs = 0;
  for (uint16_t v : lanes) max_abs = v > max_abs ? v : max_abs;
  if (max_abs > 0x7F80) return f32_from_bits(kF32QuietNan);
  return f32_from_bits(uint32_t{max_abs} << 16);
}

// MXFP8 (OCP MX v1.0) of one bf16 row, as quant/mxfp8.cc defines it: per 32 elements the shared
// exponent e = clamp(floor(log2(amax)) - 8, -127, 127) (0 for an all-zero block), read off the
// bits of amax (bf16 subnormals always clamp to -127), then e4m3(x * 2^-e).
bool bf16_to_mxfp8(const uint16_t* in, size_t n, uint8_t* codes, uint8_t* scales) {
  constexpr size_t kBlock = 32;
  const __m512i abs_mask = _mm512_set1_epi16(0x7FFF);
  for (size_t i = 0, b = 0; i < n; i += kBlock, ++b) {
    const size_t width = n - i < kBlock ? n - i : kBlock;
    const __mmask32 m = width == kBlock ? ~__mmask32{0} : static_cast<__mmask32>((uint64_t{1} << width) - 1);
    // Max of the 32 sign-cleared lanes: halve the span five times.
    __m512i a = _mm512_and_si512(_mm512_maskz_loadu_epi16(m, in + i), abs_mask);
    a = _mm512_max_epu16(a, _mm512_shuffle_i64x2(a, a, 0x4E));
    a = _mm512_max_epu16(a, _mm512_shuffle_i64x2(a, a, 0xB1));
    a = _mm512_max_epu16(a, _mm512_shuffle_epi32(a, static_cast<_MM_PERM_ENUM>(0x4E)));
    a = _mm512_max_epu16(a, _mm512_shuffle_epi32(a, static_cast<_MM_PERM_ENUM>(0xB1)));
    a = _mm512_max_epu16(a, _mm512_srli_epi32(a, 16));
    const uint32_t amax = static_cast<uint32_t>(_mm_cvtsi128_si32(_mm512_castsi512_si128(a))) & 0xFFFF;
    if (amax >= 0x7F80) return false;  // inf or NaN
    const int exp_field = static_cast<int>(amax >> 7);
    int e = 0;
    if (amax != 0) e = exp_field == 0 ? -127 : (exp_field - 135 < -127 ? -127 : exp_field - 135);
    scales[b] = static_cast<uint8_t>(e + 127);
    // 2^-e exactly; 2^-127 is the f32 subnormal 0x00400000.
    const uint32_t inv_bits = 127 - e >= 1 ? static_cast<uint32_t>(127 - e) << 23 : 0x00400000u;
    const __m512 inv = _mm512_set1_ps(f32_from_bits(inv_bits));
    const __mmask16 m0 = static_cast<__mmask16>(m & 0xFFFF), m1 = static_cast<__mmask16>(m >> 16);
    _mm_mask_storeu_epi8(codes + i, m0, encode_e4m3(_mm512_mul_ps(load_bf16(in + i, m0), inv)));
    if (m1 != 0) {
      _mm_mask_storeu_epi8(codes + i + 16, m1, encode_e4m3(_mm512_mul_ps(load_bf16(in + i + 16, m1), inv)));
    }
  }
  return true;
}

}  // namespace qswap::avx512

#elif defined(__x86_64__) || defined(_M_X64)
#error "convert_avx512.cc needs the AVX-512 flags (qswap_isa_sources in sources.cmake)"
#endif
