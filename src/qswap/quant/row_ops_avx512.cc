// Only intrinsics here (see row_ops_avx512.h); reached when cpu_features().avx512.
#include "qswap/quant/row_ops_avx512.h"

#include <cstring>

#include <immintrin.h>

#include "qswap/tensor/convert_simd_avx512.h"

namespace qswap::quant::avx512 {
namespace {

using namespace avx512_detail;  // NOLINT: the shared intrinsics helpers

constexpr int64_t kTile = 128;   // fp8-block tile
constexpr int64_t kMxBlock = 32;

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline __mmask16 mask16(int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
}
inline __mmask32 mask32(int64_t left) {
  return left >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((uint64_t{1} << left) - 1);
}
inline bool aligned64(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 63) == 0; }

// The schemes read rows in address order, straight from the checkpoint (memory, not cache). The
// kernels that take each row first prefetch kPrefetchBytes ahead as they go (two lines per 128
// bytes read): the hardware prefetchers alone keep too few lines in flight behind the encoding
// work, and prefetching a row at once, before it is used, stalls on full fill buffers instead.
constexpr int64_t kPrefetchBytes = 8192;
inline void prefetch(const void* p, int64_t bytes) {
  for (int64_t off = 0; off < bytes; off += 64) _mm_prefetch(static_cast<const char*>(p) + off, _MM_HINT_T0);
}
inline uint32_t f32_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  return u;
}
inline float f32_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

// Max of the 32 unsigned 16-bit lanes: halve the span five times.
inline uint32_t max_u16(__m512i a) {
  a = _mm512_max_epu16(a, _mm512_shuffle_i64x2(a, a, 0x4E));
  a = _mm512_max_epu16(a, _mm512_shuffle_i64x2(a, a, 0xB1));
  a = _mm512_max_epu16(a, _mm512_shuffle_epi32(a, static_cast<_MM_PERM_ENUM>(0x4E)));
  a = _mm512_max_epu16(a, _mm512_shuffle_epi32(a, static_cast<_MM_PERM_ENUM>(0xB1)));
  a = _mm512_max_epu16(a, _mm512_srli_epi32(a, 16));
  return static_cast<uint32_t>(_mm_cvtsi128_si32(_mm512_castsi512_si128(a))) & 0xFFFF;
}

template <bool kStream>
inline void store64(void* p, __m512i v) {
  if constexpr (kStream) {
    _mm512_stream_si512(static_cast<__m512i*>(p), v);
  } else {
    _mm512_storeu_si512(p, v);
  }
}

// ---- e4m3 ----

// encode_e4m3 on x * inv_scale, 16 at a time: any inv_scale, any x.
void e4m3_general(const uint16_t* x, float inv_scale, uint8_t* out, int64_t n) {
  const __m512 s = _mm512_set1_ps(inv_scale);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = mask16(n - i);
    _mm_mask_storeu_epi8(out + i, m, encode_e4m3(_mm512_mul_ps(load_bf16(x + i, m), s)));
  }
}

template <bool kNegate>
inline __m512i e4m3_x64(const uint16_t* x, __m512 abs_s) {
  const __m512i abs_mask = splat(0x7FFF7FFF);
  const __m512i x0 = _mm512_loadu_si512(x), x1 = _mm512_loadu_si512(x + 32);
  return pack_code_words(e4m3_words_bf16x32<kNegate>(x0, _mm512_and_si512(x0, abs_mask), abs_s),
                         e4m3_words_bf16x32<kNegate>(x1, _mm512_and_si512(x1, abs_mask), abs_s));
}

template <bool kNegate, bool kStream>
void e4m3_blocks(const uint16_t* x, float inv_scale, uint8_t* out, int64_t n) {
  const __m512 abs_s = _mm512_abs_ps(_mm512_set1_ps(inv_scale));
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(x + i) + kPrefetchBytes, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(x + i) + kPrefetchBytes + 64, _MM_HINT_T0);
    store64<kStream>(out + i, e4m3_x64<kNegate>(x + i, abs_s));
  }
  if (i < n) e4m3_general(x + i, inv_scale, out + i, n - i);
}

// Finite x; no fence.
void e4m3_row(const uint16_t* x, float inv_scale, uint8_t* out, int64_t n) {
  const uint32_t u = f32_bits(inv_scale);
  if ((u & 0x7FFFFFFF) >= kF32Inf) {  // inf or NaN scale: 0 * inf, NaN operands
    e4m3_general(x, inv_scale, out, n);
  } else if (aligned64(out)) {
    (u >> 31) != 0 ? e4m3_blocks<true, true>(x, inv_scale, out, n) : e4m3_blocks<false, true>(x, inv_scale, out, n);
  } else {
    (u >> 31) != 0 ? e4m3_blocks<true, false>(x, inv_scale, out, n) : e4m3_blocks<false, false>(x, inv_scale, out, n);
  }
}

template <bool kStream>
void e4m3_tiles(const uint16_t* x, const float* inv_scales, uint8_t* out, int64_t n) {
  static_assert(kTile == 128);
  int64_t c0 = 0, t = 0;
  for (; c0 + kTile <= n; c0 += kTile, ++t) {
    if (f32_bits(inv_scales[t]) < kF32Inf) {  // finite, sign bit clear: the block scheme's scales
      const __m512 s = _mm512_set1_ps(inv_scales[t]);
      store64<kStream>(out + c0, e4m3_x64<false>(x + c0, s));
      store64<kStream>(out + c0 + 64, e4m3_x64<false>(x + c0 + 64, s));
    } else {
      e4m3_row(x + c0, inv_scales[t], out + c0, kTile);
    }
  }
  if (c0 < n) e4m3_row(x + c0, inv_scales[t], out + c0, n - c0);
}

// ---- MXFP8 ----

// Shared exponent of a block from its max |x| (bf16 bits, finite), as mxfp8.cc: e = clamp(
// floor(log2(amax)) - 8, -127, 127), 0 for an all-zero block; bf16 subnormals clamp to -127.
// Writes the e8m0 code and returns the bits of 2^-e (2^-127 being the f32 subnormal 0x00400000).
inline uint32_t mx_scale(uint32_t amax, uint8_t* scale) {
  const int exp_field = static_cast<int>(amax >> 7);
  int e = 0;
  if (amax != 0) e = exp_field == 0 ? -127 : (exp_field - 135 < -127 ? -127 : exp_field - 135);
  *scale = static_cast<uint8_t>(e + 127);
  return 127 - e >= 1 ? static_cast<uint32_t>(127 - e) << 23 : 0x00400000u;
}

// One block of up to 32 values (the row's last, or every block of a short row).
bool mx_block(const uint16_t* in, int64_t width, uint8_t* codes, uint8_t* scale) {
  const __mmask32 m = mask32(width);
  const uint32_t amax = max_u16(_mm512_and_si512(_mm512_maskz_loadu_epi16(m, in), _mm512_set1_epi16(0x7FFF)));
  if (amax >= 0x7F80) return false;  // inf or NaN
  const __m512 inv = _mm512_set1_ps(f32_from_bits(mx_scale(amax, scale)));
  const __mmask16 m0 = static_cast<__mmask16>(m & 0xFFFF), m1 = static_cast<__mmask16>(m >> 16);
  _mm_mask_storeu_epi8(codes, m0, encode_e4m3(_mm512_mul_ps(load_bf16(in, m0), inv)));
  if (m1 != 0) _mm_mask_storeu_epi8(codes + 16, m1, encode_e4m3(_mm512_mul_ps(load_bf16(in + 16, m1), inv)));
  return true;
}

// Four whole blocks (128 values): their maxima by one shuffle tree, then the fast encoder (the
// scales are powers of two, the values finite once the maxima are).
template <bool kStream>
bool mx_blocks4(const uint16_t* in, uint8_t* codes, uint8_t* scales) {
  const __m512i abs_mask = splat(0x7FFF7FFF);
  __m512i x[4], a[4];
  for (int k = 0; k < 4; ++k) {
    x[k] = _mm512_loadu_si512(in + 32 * k);
    a[k] = _mm512_and_si512(x[k], abs_mask);
  }
  // 128-bit lane j of m ends up holding the max of block j.
  const __m512i m01 = _mm512_max_epu16(_mm512_shuffle_i64x2(a[0], a[1], 0x44), _mm512_shuffle_i64x2(a[0], a[1], 0xEE));
  const __m512i m23 = _mm512_max_epu16(_mm512_shuffle_i64x2(a[2], a[3], 0x44), _mm512_shuffle_i64x2(a[2], a[3], 0xEE));
  __m512i m = _mm512_max_epu16(_mm512_shuffle_i64x2(m01, m23, 0x88), _mm512_shuffle_i64x2(m01, m23, 0xDD));
  m = _mm512_max_epu16(m, _mm512_shuffle_epi32(m, static_cast<_MM_PERM_ENUM>(0x4E)));
  m = _mm512_max_epu16(m, _mm512_shuffle_epi32(m, static_cast<_MM_PERM_ENUM>(0xB1)));
  m = _mm512_max_epu16(m, _mm512_srli_epi32(m, 16));
  alignas(64) uint16_t lanes[32];
  _mm512_store_si512(lanes, m);
  __m512 s[4];
  for (int k = 0; k < 4; ++k) {
    const uint32_t amax = lanes[8 * k];
    if (amax >= 0x7F80) return false;  // inf or NaN
    s[k] = _mm512_castsi512_ps(splat(mx_scale(amax, scales + k)));
  }
  store64<kStream>(codes, pack_code_words(e4m3_words_bf16x32<false>(x[0], a[0], s[0]),
                                          e4m3_words_bf16x32<false>(x[1], a[1], s[1])));
  store64<kStream>(codes + 64, pack_code_words(e4m3_words_bf16x32<false>(x[2], a[2], s[2]),
                                               e4m3_words_bf16x32<false>(x[3], a[3], s[3])));
  return true;
}

template <bool kStream>
bool mx_row(const uint16_t* in, int64_t n, uint8_t* codes, uint8_t* scales) {
  int64_t i = 0, b = 0;
  for (; i + 4 * kMxBlock <= n; i += 4 * kMxBlock, b += 4) {
    prefetch(reinterpret_cast<const char*>(in + i) + kPrefetchBytes, 256);
    if (!mx_blocks4<kStream>(in + i, codes + i, scales + b)) return false;
  }
  for (; i < n; i += kMxBlock, ++b) {
    if (!mx_block(in + i, min64(kMxBlock, n - i), codes + i, scales + b)) return false;
  }
  return true;
}

// x * inv clamped to [-128, 128] before the conversion, which would turn anything beyond int32 into
// INT_MIN; exact for finite products (the clamp bound is an integer past 127). cvtps_epi32 rounds
// with MXCSR's mode, nearest-even by default: the same as the reference's nearbyint.
inline __m512i i8_round(__m512 x, __m512 inv) {
  const __m512 y = _mm512_max_ps(_mm512_min_ps(_mm512_mul_ps(x, inv), _mm512_set1_ps(128.0f)), _mm512_set1_ps(-128.0f));
  return _mm512_cvtps_epi32(y);
}

template <bool kStream>
void i8_row(const uint16_t* x, float inv_scale, int8_t* out, int64_t n) {
  const __m512 inv = _mm512_set1_ps(inv_scale);
  const __m512i high_half = splat(0xFFFF0000);
  // Saturating packs clamp to [-128, 127], then -128 -> -127. The packs interleave elements
  // (even/odd halves, 8-byte groups per lane); two shuffles undo it.
  const __m512i order = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15));
  const __m512i lanes = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7);
  const __m512i lo = _mm512_set1_epi8(-127);
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(x + i) + kPrefetchBytes, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(x + i) + kPrefetchBytes + 64, _MM_HINT_T0);
    __m512i q[4];
    for (int k = 0; k < 2; ++k) {
      const __m512i v = _mm512_loadu_si512(x + i + 32 * k);
      const __m512 even = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
      const __m512 odd = _mm512_castsi512_ps(_mm512_and_si512(v, high_half));
      q[2 * k] = i8_round(even, inv);
      q[2 * k + 1] = i8_round(odd, inv);
    }
    __m512i b = _mm512_packs_epi16(_mm512_packs_epi32(q[0], q[1]), _mm512_packs_epi32(q[2], q[3]));
    b = _mm512_permutexvar_epi64(lanes, _mm512_shuffle_epi8(b, order));
    store64<kStream>(out + i, _mm512_max_epi8(b, lo));
  }
  const __m512i lo32 = _mm512_set1_epi32(-127), hi32 = _mm512_set1_epi32(127);
  for (; i < n; i += 16) {
    const __mmask16 m = mask16(n - i);
    const __m512i q = i8_round(load_bf16(x + i, m), inv);
    _mm512_mask_cvtepi32_storeu_epi8(out + i, m, _mm512_min_epi32(_mm512_max_epi32(q, lo32), hi32));
  }
}

// The f32 value of the largest bf16 magnitude whose bits lanes of acc hold (|x| bits, 16 per
// lane): NaN if any was a NaN.
inline float amax_value(__m512i acc) {
  const uint32_t max_abs = max_u16(acc);
  return max_abs > 0x7F80 ? f32_from_bits(kF32QuietNan) : f32_from_bits(max_abs << 16);
}

// Copies the bf16 lanes of m from src to dst and folds their |bits| into acc (lanes off m read as
// +0).
inline __m512i copy_masked_max(const uint16_t* src, uint16_t* dst, __mmask32 m, __m512i acc) {
  const __m512i v = _mm512_maskz_loadu_epi16(m, src);
  _mm512_mask_storeu_epi16(dst, m, v);
  return _mm512_max_epu16(acc, _mm512_and_si512(v, _mm512_set1_epi16(0x7FFF)));
}

}  // namespace

void quantize_i8(const float* x, float inv_scale, int8_t* out, int64_t n) {
  const __m512 inv = _mm512_set1_ps(inv_scale);
  const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = mask16(n - i);
    const __m512i q = _mm512_min_epi32(_mm512_max_epi32(i8_round(_mm512_maskz_loadu_ps(m, x + i), inv), lo), hi);
    _mm512_mask_cvtepi32_storeu_epi8(out + i, m, q);
  }
}

void quantize_i8_bf16(const uint16_t* x, float inv_scale, int8_t* out, int64_t n) {
  aligned64(out) ? i8_row<true>(x, inv_scale, out, n) : i8_row<false>(x, inv_scale, out, n);
}

float amax_bf16(const uint16_t* x, int64_t n, bool prefetch_ahead) {
  const __m512i abs_mask = _mm512_set1_epi16(0x7FFF);
  __m512i acc = _mm512_setzero_si512();
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    if (prefetch_ahead) prefetch(reinterpret_cast<const char*>(x + i) + kPrefetchBytes, 128);
    acc = _mm512_max_epu16(acc, _mm512_max_epu16(_mm512_and_si512(_mm512_loadu_si512(x + i), abs_mask),
                                                 _mm512_and_si512(_mm512_loadu_si512(x + i + 32), abs_mask)));
  }
  for (; i < n; i += 32) {  // masked-off lanes read as +0
    acc = _mm512_max_epu16(acc, _mm512_and_si512(_mm512_maskz_loadu_epi16(mask32(n - i), x + i), abs_mask));
  }
  return amax_value(acc);
}

void quantize_e4m3_bf16(const uint16_t* x, float inv_scale, uint8_t* out, int64_t n) { e4m3_row(x, inv_scale, out, n); }

void quantize_e4m3_bf16_tiles(const uint16_t* x, const float* inv_scales, uint8_t* out, int64_t n) {
  aligned64(out) ? e4m3_tiles<true>(x, inv_scales, out, n) : e4m3_tiles<false>(x, inv_scales, out, n);
}

void amax_bf16_tiles(const uint16_t* x, int64_t rows, int64_t stride, int64_t cols, float* tile_amax) {
  constexpr int64_t kChunk = 32;  // tiles per pass: 32 accumulators, 2 KB of stack
  const int64_t tiles = (cols + kTile - 1) / kTile;
  const __m512i abs_mask = _mm512_set1_epi16(0x7FFF);
  for (int64_t t0 = 0; t0 < tiles; t0 += kChunk) {
    const int64_t t1 = min64(tiles, t0 + kChunk);
    __m512i acc[kChunk];
    for (int64_t t = t0; t < t1; ++t) acc[t - t0] = _mm512_setzero_si512();
    for (int64_t r = 0; r < rows; ++r) {
      const uint16_t* row = x + r * stride;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t c0 = t * kTile;
        prefetch(reinterpret_cast<const char*>(row + c0) + kPrefetchBytes, 2 * min64(kTile, cols - c0));
        __m512i m;
        if (c0 + kTile <= cols) {
          m = _mm512_max_epu16(_mm512_and_si512(_mm512_loadu_si512(row + c0), abs_mask),
                               _mm512_and_si512(_mm512_loadu_si512(row + c0 + 32), abs_mask));
          m = _mm512_max_epu16(m, _mm512_and_si512(_mm512_loadu_si512(row + c0 + 64), abs_mask));
          m = _mm512_max_epu16(m, _mm512_and_si512(_mm512_loadu_si512(row + c0 + 96), abs_mask));
        } else {
          m = _mm512_setzero_si512();  // masked-off lanes read as +0
          for (int64_t c = c0; c < cols; c += 32) {
            m = _mm512_max_epu16(m, _mm512_and_si512(_mm512_maskz_loadu_epi16(mask32(cols - c), row + c), abs_mask));
          }
        }
        acc[t - t0] = _mm512_max_epu16(acc[t - t0], m);
      }
    }
    for (int64_t t = t0; t < t1; ++t) {
      tile_amax[t] = amax_value(acc[t - t0]);
    }
  }
}

bool bf16_to_mxfp8(const uint16_t* in, int64_t n, uint8_t* codes, uint8_t* scales) {
  return aligned64(codes) ? mx_row<true>(in, n, codes, scales) : mx_row<false>(in, n, codes, scales);
}

bool copy_bf16_finite(const uint16_t* src, uint16_t* dst, int64_t n) {
  const __m512i abs_mask = _mm512_set1_epi16(0x7FFF);
  __m512i acc = _mm512_setzero_si512();
  // Up to the first 64-byte boundary of dst, then whole lines streamed, then the rest.
  int64_t i = min64(n, static_cast<int64_t>(((64 - (reinterpret_cast<uintptr_t>(dst) & 63)) & 63) / 2));
  if (i > 0) acc = copy_masked_max(src, dst, mask32(i), acc);
  if (aligned64(dst + i)) {
    for (; i + 64 <= n; i += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(src + i) + kPrefetchBytes, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(src + i) + kPrefetchBytes + 64, _MM_HINT_T0);
      const __m512i v0 = _mm512_loadu_si512(src + i), v1 = _mm512_loadu_si512(src + i + 32);
      store64<true>(dst + i, v0);
      store64<true>(dst + i + 32, v1);
      acc = _mm512_max_epu16(acc, _mm512_max_epu16(_mm512_and_si512(v0, abs_mask), _mm512_and_si512(v1, abs_mask)));
    }
  }
  for (; i < n; i += 32) acc = copy_masked_max(src + i, dst + i, mask32(n - i), acc);
  _mm_sfence();
  return _mm512_cmpge_epu16_mask(acc, _mm512_set1_epi16(0x7F80)) == 0;
}

float copy_amax_bf16(const uint16_t* src, uint16_t* dst, int64_t n) {
  const __m512i abs_mask = _mm512_set1_epi16(0x7FFF);
  __m512i acc = _mm512_setzero_si512();
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    prefetch(reinterpret_cast<const char*>(src + i) + kPrefetchBytes, 128);
    const __m512i v0 = _mm512_loadu_si512(src + i), v1 = _mm512_loadu_si512(src + i + 32);
    _mm512_storeu_si512(dst + i, v0);
    _mm512_storeu_si512(dst + i + 32, v1);
    acc = _mm512_max_epu16(acc, _mm512_max_epu16(_mm512_and_si512(v0, abs_mask), _mm512_and_si512(v1, abs_mask)));
  }
  for (; i < n; i += 32) acc = copy_masked_max(src + i, dst + i, mask32(n - i), acc);
  return amax_value(acc);
}

void copy_streaming(const void* src, void* dst, int64_t bytes) {
  const auto* s = static_cast<const char*>(src);
  auto* d = static_cast<char*>(dst);
  int64_t i = min64(bytes, static_cast<int64_t>((64 - (reinterpret_cast<uintptr_t>(d) & 63)) & 63));
  if (i > 0) std::memcpy(d, s, static_cast<size_t>(i));
  for (; i + 256 <= bytes; i += 256) {
    _mm_prefetch(s + i + kPrefetchBytes, _MM_HINT_T0);
    _mm_prefetch(s + i + kPrefetchBytes + 64, _MM_HINT_T0);
    _mm_prefetch(s + i + kPrefetchBytes + 128, _MM_HINT_T0);
    _mm_prefetch(s + i + kPrefetchBytes + 192, _MM_HINT_T0);
    const __m512i v0 = _mm512_loadu_si512(s + i), v1 = _mm512_loadu_si512(s + i + 64);
    const __m512i v2 = _mm512_loadu_si512(s + i + 128), v3 = _mm512_loadu_si512(s + i + 192);
    store64<true>(d + i, v0);
    store64<true>(d + i + 64, v1);
    store64<true>(d + i + 128, v2);
    store64<true>(d + i + 192, v3);
  }
  if (i < bytes) std::memcpy(d + i, s + i, static_cast<size_t>(bytes - i));
  _mm_sfence();
}

}  // namespace qswap::quant::avx512
