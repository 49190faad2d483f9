// Conversions between f32 and the narrow float formats: bf16, f16, e4m3, e5m2, e8m0.
//
// Three layers, in this file:
//   1. one-value scalar functions: the reference, plain bit manipulation (constexpr);
//   2. bulk functions in namespace scalar: loops over (1), the reference of every bulk function;
//   3. bulk functions in namespace qswap (what callers use): run-time dispatch to the AVX-512
//      paths (convert_avx512.cc) or to scalar::. Every fast path is bit-identical to scalar::
//      on every input, NaN payloads and signs included (tests/tensor/).
//
// Numerics (DESIGN.md, "Numerics"):
//   bf16, f16   round to nearest even; overflow -> inf; f16 subnormals exact. NaN -> quiet NaN
//               with the sign and the top payload bits kept: bf16 = (bits >> 16) | 0x0040,
//               f16 = sign | 0x7E00 | (mantissa >> 13) (what F16C's vcvtps2ph does).
//   e4m3 (fn)   round to nearest even, saturating: finite overflow and +-inf -> +-448;
//               NaN -> 0x7F / 0xFF (sign kept).
//   e5m2        round to nearest even, saturating: finite overflow and +-inf -> +-57344
//               (CUDA __NV_SATFINITE); NaN -> 0x7F / 0xFF (sign kept).
//   e8m0        see f32_to_e8m0 below: torch's float8_e8m0fnu cast, exactly.
// Decoding is exact for all formats. bf16 decodes by a shift (a NaN keeps its bits); f16 and e5m2
// NaNs decode quiet with sign and payload, e4m3 NaN to +-0x7FC00000, e8m0 NaN to 0x7FC00000.
// No result depends on MXCSR (rounding mode, FTZ, DAZ): rounding is integer arithmetic. The one
// exception is the product x * inv_scale of the *_scaled functions, computed alike on all paths.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>

#include "qswap/base/status.h"
#include "qswap/tensor/dtype.h"

namespace qswap {

// ---------------------------------------------------------------------------------------------
// 1. Scalar reference, one value.

namespace convert_detail {

inline constexpr uint32_t kF32Inf = 0x7F800000;
inline constexpr uint32_t kF32QuietNan = 0x7FC00000;
inline constexpr uint32_t kE4m3MaxBits = 0x43E00000;  // 448.0f
inline constexpr uint32_t kE5m2MaxBits = 0x47600000;  // 57344.0f
inline constexpr uint32_t kF16InfBits = 0x47800000;   // 65536.0f: the first f16 overflow binade

// Rounds a finite non-negative f32, given as bits, to nearest-even in a binary format with
// kMant stored mantissa bits and exponent bias kBias; returns (exponent field << kMant) + mantissa.
// The target's subnormals need no special case: below the smallest normal exponent the quantum
// stays that of exponent field 1 and the field is 0. A carry out of the mantissa bumps the
// exponent, so callers only have to handle overflow themselves.
template <int kMant, int kBias>
constexpr uint32_t round_to_format(uint32_t abs_bits) {
  int32_t f32_exp = static_cast<int32_t>(abs_bits >> 23);
  uint32_t sig = abs_bits & 0x7FFFFF;
  if (f32_exp == 0) {
    f32_exp = 1;  // an f32 subnormal has the scale of exponent field 1, without the leading 1
  } else {
    sig |= 0x800000;
  }
  int32_t field = f32_exp - 127 + kBias;  // the value's exponent field in the target format
  int32_t shift = 23 - kMant + (field < 1 ? 1 - field : 0);
  if (shift > 31) shift = 31;  // sig < 2^24 <= half a quantum: rounds to 0 all the same
  uint32_t q = sig >> shift;
  uint32_t rem = sig & ((1u << shift) - 1);
  uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (q & 1u) != 0)) ++q;
  return (static_cast<uint32_t>(field < 1 ? 0 : field - 1) << kMant) + q;
}

}  // namespace convert_detail

constexpr float bf16_to_f32(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

constexpr uint16_t f32_to_bf16(float x) {
  uint32_t u = std::bit_cast<uint32_t>(x);
  uint32_t abs = u & 0x7FFFFFFF;
  if (abs > convert_detail::kF32Inf) return static_cast<uint16_t>((u >> 16) | 0x0040);
  return static_cast<uint16_t>(((u >> 16) & 0x8000) | convert_detail::round_to_format<7, 127>(abs));
}

constexpr float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  if (exp == 0x1F) {
    uint32_t nan = mant != 0 ? 0x400000 | (mant << 13) : 0;  // NaN: quiet, payload kept
    return std::bit_cast<float>(sign | convert_detail::kF32Inf | nan);
  }
  if (exp == 0) {  // subnormal (or zero): mant * 2^-24, exact and a normal f32
    float value = static_cast<float>(mant) * 0x1p-24f;
    return std::bit_cast<float>(sign | std::bit_cast<uint32_t>(value));
  }
  return std::bit_cast<float>(sign | ((exp + 127 - 15) << 23) | (mant << 13));
}

constexpr uint16_t f32_to_f16(float x) {
  uint32_t u = std::bit_cast<uint32_t>(x);
  uint32_t sign = (u >> 16) & 0x8000;
  uint32_t abs = u & 0x7FFFFFFF;
  if (abs > convert_detail::kF32Inf) {  // NaN: quiet, top payload bits kept
    return static_cast<uint16_t>(sign | 0x7E00 | ((abs >> 13) & 0x3FF));
  }
  if (abs >= convert_detail::kF16InfBits) return static_cast<uint16_t>(sign | 0x7C00);
  return static_cast<uint16_t>(sign | convert_detail::round_to_format<10, 15>(abs));
}

constexpr float e4m3_to_f32(uint8_t c) {
  uint32_t sign = static_cast<uint32_t>(c & 0x80) << 24;
  uint32_t exp = (c >> 3) & 0xF;
  uint32_t mant = c & 0x7;
  if ((c & 0x7F) == 0x7F) return std::bit_cast<float>(sign | convert_detail::kF32QuietNan);
  if (exp == 0) {  // subnormal (or zero): mant * 2^-9
    float value = static_cast<float>(mant) * 0x1p-9f;
    return std::bit_cast<float>(sign | std::bit_cast<uint32_t>(value));
  }
  return std::bit_cast<float>(sign | ((exp + 127 - 7) << 23) | (mant << 20));
}

constexpr uint8_t f32_to_e4m3(float x) {
  uint32_t u = std::bit_cast<uint32_t>(x);
  uint32_t sign = (u >> 24) & 0x80;
  uint32_t abs = u & 0x7FFFFFFF;
  if (abs > convert_detail::kF32Inf) return static_cast<uint8_t>(sign | 0x7F);
  if (abs > convert_detail::kE4m3MaxBits) abs = convert_detail::kE4m3MaxBits;  // saturate, inf too
  return static_cast<uint8_t>(sign | convert_detail::round_to_format<3, 7>(abs));
}

// e5m2 is the top byte of an f16.
constexpr float e5m2_to_f32(uint8_t c) { return f16_to_f32(static_cast<uint16_t>(c << 8)); }

constexpr uint8_t f32_to_e5m2(float x) {
  uint32_t u = std::bit_cast<uint32_t>(x);
  uint32_t sign = (u >> 24) & 0x80;
  uint32_t abs = u & 0x7FFFFFFF;
  if (abs > convert_detail::kF32Inf) return static_cast<uint8_t>(sign | 0x7F);
  if (abs > convert_detail::kE5m2MaxBits) abs = convert_detail::kE5m2MaxBits;  // saturate, inf too
  return static_cast<uint8_t>(sign | convert_detail::round_to_format<2, 15>(abs));
}

// 2^(c - 127); code 0 is 2^-127 (an f32 subnormal), 0xFF is NaN.
constexpr float e8m0_to_f32(uint8_t c) {
  if (c == 0xFF) return std::bit_cast<float>(convert_detail::kF32QuietNan);
  if (c == 0) return std::bit_cast<float>(uint32_t{0x00400000});
  return std::bit_cast<float>(static_cast<uint32_t>(c) << 23);
}

// torch's `x.to(torch.float8_e8m0fnu)` (2.13), bit for bit:
//  - the sign is ignored: -x encodes like x;
//  - NaN and +-inf -> 0xFF (NaN);
//  - otherwise the result is x's biased f32 exponent, plus one when x's mantissa is at least
//    half (normal x; so a tie like 1.5 * 2^k rounds up to 2^(k+1)) or more than half
//    (subnormal x, whose implicit bit is 0: 2^-127 itself stays code 0);
//  - so +-0 and f32 subnormals up to 2^-127 -> 0 (2^-127), and x >= 1.5 * 2^127 -> 0xFF (NaN).
// Scale computations that must not produce NaN clamp x to [2^-127, 2^127] first.
constexpr uint8_t f32_to_e8m0(float x) {
  uint32_t u = std::bit_cast<uint32_t>(x);
  uint32_t exp = (u >> 23) & 0xFF;
  uint32_t mant = u & 0x7FFFFF;
  if (exp == 0xFF) return 0xFF;
  bool up = exp != 0 ? mant >= 0x400000 : mant > 0x400000;
  return static_cast<uint8_t>(exp + (up ? 1 : 0));
}

// Decode tables of the 8-bit formats, from the functions above: table[code] == x_to_f32(code).
std::span<const float, 256> e4m3_decode_table();
std::span<const float, 256> e5m2_decode_table();
std::span<const float, 256> e8m0_decode_table();

// ---------------------------------------------------------------------------------------------
// 3. Bulk conversions, dispatched at run time (AVX-512 when cpu_features().avx512, else scalar).
// `in` and `out` must not overlap; pointers need only their element type's natural alignment.

void bf16_to_f32(const uint16_t* in, float* out, size_t n);
void f32_to_bf16(const float* in, uint16_t* out, size_t n);
void f16_to_f32(const uint16_t* in, float* out, size_t n);
void f32_to_f16(const float* in, uint16_t* out, size_t n);
void e4m3_to_f32(const uint8_t* in, float* out, size_t n);
void f32_to_e4m3(const float* in, uint8_t* out, size_t n);
void e5m2_to_f32(const uint8_t* in, float* out, size_t n);
void f32_to_e5m2(const float* in, uint8_t* out, size_t n);
void e8m0_to_f32(const uint8_t* in, float* out, size_t n);
void f32_to_e8m0(const float* in, uint8_t* out, size_t n);

// out[i] = f32_to_e4m3(in[i] * inv_scale): the FP8 quantize of DESIGN.md, multiplying by the f32
// reciprocal of the scale (never dividing), saturating to +-448. A NaN inv_scale gives
// f32_to_e4m3(inv_scale) everywhere: which NaN a NaN * NaN product keeps depends on the operand
// order the compiler picks, so that case is fixed up front to keep every path bit-identical.
void f32_to_e4m3_scaled(const float* in, float inv_scale, uint8_t* out, size_t n);
// The same with bf16 input: f32_to_e4m3(bf16_to_f32(in[i]) * inv_scale).
void bf16_to_e4m3_scaled(const uint16_t* in, float inv_scale, uint8_t* out, size_t n);

// max |x| over n values; 0 for n == 0. If any value is NaN the result is a quiet NaN
// (0x7FC00000) so that a NaN weight is detectable from the scale; +-inf gives inf.
float amax_f32(const float* in, size_t n);
float amax_bf16(const uint16_t* in, size_t n);

// Whether convert() handles `dtype`: f32, bf16, f16, f8_e4m3, f8_e5m2, f8_e8m0.
bool is_convertible(DType dtype);

// Converts n elements between any two convertible dtypes, exactly as decode-to-f32 followed by
// the encoder above (decoding is exact, so there is no double rounding). Same dtype: a copy
// (overlap allowed); otherwise src and dst must not overlap. Any pointer alignment.
// Errors: invalid_argument for an unsupported dtype (naming both) or a null pointer with n > 0.
Status convert(DType src_type, const void* src, DType dst_type, void* dst, size_t n);

// ---------------------------------------------------------------------------------------------
// 2. Scalar reference of every bulk function (the dispatch falls back to these).
namespace scalar {
void bf16_to_f32(const uint16_t* in, float* out, size_t n);
void f32_to_bf16(const float* in, uint16_t* out, size_t n);
void f16_to_f32(const uint16_t* in, float* out, size_t n);
void f32_to_f16(const float* in, uint16_t* out, size_t n);
void e4m3_to_f32(const uint8_t* in, float* out, size_t n);
void f32_to_e4m3(const float* in, uint8_t* out, size_t n);
void e5m2_to_f32(const uint8_t* in, float* out, size_t n);
void f32_to_e5m2(const float* in, uint8_t* out, size_t n);
void e8m0_to_f32(const uint8_t* in, float* out, size_t n);
void f32_to_e8m0(const float* in, uint8_t* out, size_t n);
void f32_to_e4m3_scaled(const float* in, float inv_scale, uint8_t* out, size_t n);
void bf16_to_e4m3_scaled(const uint16_t* in, float inv_scale, uint8_t* out, size_t n);
float amax_f32(const float* in, size_t n);
float amax_bf16(const uint16_t* in, size_t n);
}  // namespace scalar

// AVX-512 (F+BW+VL+DQ) paths, convert_avx512.cc; only built on x86-64. Call only when
// cpu_features().avx512 (the dispatching functions above do). e8m0 has no fast path.
namespace avx512 {
void bf16_to_f32(const uint16_t* in, float* out, size_t n);
void f32_to_bf16(const float* in, uint16_t* out, size_t n);
void f16_to_f32(const uint16_t* in, float* out, size_t n);
void f32_to_f16(const float* in, uint16_t* out, size_t n);
void e4m3_to_f32(const uint8_t* in, float* out, size_t n);
void f32_to_e4m3(const float* in, uint8_t* out, size_t n);
void e5m2_to_f32(const uint8_t* in, float* out, size_t n);
void f32_to_e5m2(const float* in, uint8_t* out, size_t n);
void f32_to_e4m3_scaled(const float* in, float inv_scale, uint8_t* out, size_t n);
void bf16_to_e4m3_scaled(const uint16_t* in, float inv_scale, uint8_t* out, size_t n);
float amax_f32(const float* in, size_t n);
float amax_bf16(const uint16_t* in, size_t n);
}  // namespace avx512

}  // namespace qswap
