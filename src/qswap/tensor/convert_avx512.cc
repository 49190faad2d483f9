// AVX-512 conversions (F+BW+VL+DQ), bit-identical to the scalar reference in convert.h.
// Reached only through the dispatch in convert.cc. 16 lanes per step (64 for bf16 -> e4m3); the
// tail of a call uses masked loads and stores, so no element past n is read or written.
//
// Rounding is done in integer arithmetic as the reference does, or (e4m3 below 2^-6) by an f32
// add with an explicit rounding mode (convert_simd_avx512.h) — not vcvtneps2bf16, which flushes
// subnormal inputs to zero and would differ from the reference. f16 uses F16C's vcvtps2ph with an
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

#include "qswap/tensor/convert_simd_avx512.h"

namespace qswap::avx512 {
namespace {

using namespace avx512_detail;  // NOLINT: the shared intrinsics helpers

constexpr int kLanes = 16;
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

// f32 -> e5m2 code (sign, saturation, NaN -> 0x7F | sign), one byte per lane.
inline __m128i encode_e5m2(__m512 x) {
  __m512i u = _mm512_castps_si512(x);
  __m512i abs = _mm512_and_si512(u, splat(0x7FFFFFFF));
  __mmask16 nan = _mm512_cmpgt_epu32_mask(abs, splat(kF32Inf));
  __m512i code = round_to_format<2, 15>(_mm512_min_epu32(abs, splat(kE5m2MaxBits)));
  code = _mm512_mask_mov_epi32(code, nan, splat(0x7F));
  code = _mm512_or_si512(code, _mm512_and_si512(_mm512_srli_epi32(u, 24), splat(0x80)));
  return _mm512_cvtepi32_epi8(code);
}

// e4m3(bf16 x * inv_scale) for n values, 64 at a time with e4m3_words_bf16x32 where inv_scale is
// finite and the 64 values are; encode_e4m3 on the rest.
template <bool kNegate>
void bf16_to_e4m3_blocks(const uint16_t* in, float inv_scale, uint8_t* out, size_t n) {
  const __m512 s = _mm512_set1_ps(inv_scale);
  const __m512 abs_s = _mm512_abs_ps(s);
  const __m512i abs_mask = splat(0x7FFF7FFF);
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512i x0 = _mm512_loadu_si512(in + i), x1 = _mm512_loadu_si512(in + i + 32);
    const __m512i a0 = _mm512_and_si512(x0, abs_mask), a1 = _mm512_and_si512(x1, abs_mask);
    if (any_non_finite_bf16(a0, a1)) {
      for (size_t j = i; j < i + 64; j += kLanes) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + j), encode_e4m3(_mm512_mul_ps(load_bf16(in + j, 0xFFFF), s)));
      }
      continue;
    }
    const __m512i w0 = e4m3_words_bf16x32<kNegate>(x0, a0, abs_s), w1 = e4m3_words_bf16x32<kNegate>(x1, a1, abs_s);
    _mm512_storeu_si512(out + i, pack_code_words(w0, w1));
  }
  for_blocks(n - i, [&](size_t j, __mmask16 m) {
    _mm_mask_storeu_epi8(out + i + j, m, encode_e4m3(_mm512_mul_ps(load_bf16(in + i + j, m), s)));
  });
}

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
    __m128i code = encode_e5m2(load_f32(in + i, m));
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
  uint32_t u;
  std::memcpy(&u, &inv_scale, sizeof(u));
  if ((u & 0x7FFFFFFF) == kF32Inf) {  // 0 * inf is NaN whatever x's sign: the general path
    const __m512 s = _mm512_set1_ps(inv_scale);
    for_blocks(n, [&](size_t i, __mmask16 m) {
      _mm_mask_storeu_epi8(out + i, m, encode_e4m3(_mm512_mul_ps(load_bf16(in + i, m), s)));
    });
    return;
  }
  if ((u >> 31) != 0) {
    bf16_to_e4m3_blocks<true>(in, inv_scale, out, n);
  } else {
    bf16_to_e4m3_blocks<false>(in, inv_scale, out, n);
  }
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

}  // namespace qswap::avx512

#elif defined(__x86_64__) || defined(_M_X64)
#error "convert_avx512.cc needs the AVX-512 flags (qswap_isa_sources in sources.cmake)"
#endif
