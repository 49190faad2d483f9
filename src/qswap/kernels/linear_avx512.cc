// AVX-512 linear layer (see linear_avx512.h for the include rule: intrinsics only).
//
// Decoding, 16 codes per step, all in registers (linear_simd_avx512.h):
//   bf16  zero-extend to 32 bits, shift left 16.
//   i8    sign-extend to 32 bits, convert (vpmovsxbd + vcvtdq2ps).
//   e4m3  sign-extend to 16 bits, shift left 7 and clear bit 14: that places sign, exponent and
//         mantissa into an f16 whose value is the e4m3 value × 2^-8 (subnormals included, since
//         both formats' subnormals sit at exponent field 0); vcvtph2ps widens it exactly. The 2^8
//         is folded back in once per output (GEMV) or per packed element (GEMM). The NaN codes
//         0x7F/0xFF decode as ±480 here; the schemes never write them (they reject NaN weights).
//         With AVX512-VBMI and GFNI, the GEMV decodes e4m3 by GF(2) affine maps instead
//         (linear_vbmi.cc).
//
// GEMV (m <= 4, memory-bound): see linear_simd_avx512.h.
//
// GEMM (compute-bound), BLIS-style: a [kKc × kNc] block of W is dequantized once (code × scale,
// the reference's own f32 product) and transposed into an f32 panel of kNr-column strips
// (L2-resident; one strip, 24 KB, stays in L1 while all rows of x stream past it); x is packed
// once per call into micro-panels of 8 rows, [k block][row tile][k][8], so that the 8
// broadcasts of a k step read 32 consecutive bytes and each micro-kernel call streams one
// contiguous 4 KB tile (rows of x far apart, as they were, kept 8 L1 streams per call); an 8 × 48
// register-blocked micro-kernel (24 zmm accumulators) does 24 FMAs per 3 panel loads and 8
// broadcasts. Each output's sum runs over k in order, one FMA per term, continuing from y
// between k blocks: the blocking and the column split never change an output's arithmetic.
#include "qswap/kernels/linear_avx512.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)

#include <immintrin.h>

#include "qswap/kernels/linear_simd_avx512.h"

namespace qswap::kernels::avx512 {
namespace {

// ---------------------------------------------------------------------------------------------
// GEMM

constexpr int kMr = 8;      // rows of x per micro-tile
constexpr int64_t kNr = 48;  // columns per micro-tile (3 zmm)
constexpr int64_t kKc = 128;  // k block: a 128 × 48 f32 strip is 24 KB (L1)
constexpr int64_t kNc = 4 * kNr;  // columns per packed panel: 96 KB (L2)
constexpr size_t kPanelFloats = static_cast<size_t>(kKc * kNc);

int64_t row_tiles(int64_t m) { return (m + kMr - 1) / kMr; }

// In-register transpose of 16 rows of 16 floats.
inline void transpose16(__m512 (&r)[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  __m512 u[16];  // u[4q + c]: lane L holds rows 4q..4q+3 of column 4L + c
  for (int q = 0; q < 4; ++q) {
    const __m512d a = _mm512_castps_pd(t[4 * q]), b = _mm512_castps_pd(t[4 * q + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * q + 2]), d = _mm512_castps_pd(t[4 * q + 3]);
    u[4 * q + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    u[4 * q + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    u[4 * q + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    u[4 * q + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  for (int c = 0; c < 4; ++c) {
    const __m512 lo01 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44);    // lanes 0,1 of rows 0-3, 4-7
    const __m512 hi01 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);    // lanes 2,3
    const __m512 lo23 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
    const __m512 hi23 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
    r[c] = _mm512_shuffle_f32x4(lo01, lo23, 0x88);
    r[4 + c] = _mm512_shuffle_f32x4(lo01, lo23, 0xDD);
    r[8 + c] = _mm512_shuffle_f32x4(hi01, hi23, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(hi01, hi23, 0xDD);
  }
}

// Dequantized W[j, kk .. kk+16) (masked), exactly the reference's code value × scale.
template <Codes C, Scales S>
inline __m512 dequant_chunk(const Weight& w, int64_t j, int64_t kk, __mmask16 mask) {
  const void* row = static_cast<const uint8_t*>(w.data) + j * w.k * code_bytes<C>();
  __m512 v = decode16<C, true>(row, kk, mask);
  // e4m3 decodes as code × 2^-8; with an f32 scale, (code × 2^-8) × (256 × s) is one rounding of
  // the same real product code × s (256 × s is exact: s <= 448^-1 × f32 max), so folding the 2^8
  // into the scale keeps the reference's bits. An e8m0 scale can be 2^127, whose × 256 would
  // overflow: MX multiplies twice.
  if constexpr (S == Scales::kTensor || S == Scales::kRow) {
    const float s = row_scale<S>(w, j);
    v = _mm512_mul_ps(v, _mm512_set1_ps(C == Codes::kE4m3 ? 256.0f * s : s));
  } else if constexpr (S == Scales::kBlock) {
    v = _mm512_mul_ps(v, _mm512_set1_ps(256.0f * varying_scale<S>(w, j, kk)));
  } else if constexpr (S == Scales::kMx) {
    v = _mm512_mul_ps(_mm512_mul_ps(v, _mm512_set1_ps(256.0f)), _mm512_set1_ps(varying_scale<S>(w, j, kk)));
  }
  return v;
}

// Panel layout: strip g (columns jc + 48g ...) holds kc rows of 48 floats: panel[g][p][col].
template <Codes C, Scales S>
void pack_panel(const Weight& w, int64_t jc, int64_t nc, int64_t pc, int64_t kc, float* panel) {
  const int64_t strips = (nc + kNr - 1) / kNr;
  for (int64_t g = 0; g < strips; ++g) {
    float* strip = panel + g * kc * kNr;
    for (int64_t s = 0; s < kNr / 16; ++s) {
      const int64_t j_base = jc + g * kNr + s * 16;
      const int64_t rows = min64(16, jc + nc - j_base);  // may be <= 0: zero columns
      for (int64_t kk = 0; kk < kc; kk += 16) {
        const int64_t width = min64(16, kc - kk);
        const __mmask16 mask = tail_mask(width);
        __m512 r[16];
        for (int t = 0; t < 16; ++t) {
          r[t] = t < rows ? dequant_chunk<C, S>(w, j_base + t, pc + kk, mask) : _mm512_setzero_ps();
        }
        transpose16(r);
        for (int64_t t = 0; t < width; ++t) _mm512_store_ps(strip + (kk + t) * kNr + s * 16, r[t]);
      }
    }
  }
}

// y[i, 0..48) (masked) of MR rows += a[kc × 8 packed, rows 0..MR) · strip[kc × 48]; loads y first
// unless `first`, adds the bias (f32, 48 values, or nullptr) when `last`.
template <int MR>
void micro_kernel(const float* a, const float* strip, int64_t kc, float* y, int64_t ldy, const __mmask16 (&mask)[3],
                  bool first, const float* bias) {
  __m512 acc[MR][3];
  for (int i = 0; i < MR; ++i) {
    for (int v = 0; v < 3; ++v) {
      acc[i][v] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mask[v], y + i * ldy + 16 * v);
    }
  }
  for (int64_t p = 0; p < kc; ++p) {
    const float* b = strip + p * kNr;
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16), b2 = _mm512_load_ps(b + 32);
    for (int i = 0; i < MR; ++i) {
      const __m512 av = _mm512_set1_ps(a[p * kMr + i]);
      acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
      acc[i][2] = _mm512_fmadd_ps(av, b2, acc[i][2]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int v = 0; v < 3; ++v) {
      __m512 out = acc[i][v];
      if (bias != nullptr) out = _mm512_add_ps(out, _mm512_loadu_ps(bias + 16 * v));
      _mm512_mask_storeu_ps(y + i * ldy + 16 * v, mask[v], out);
    }
  }
}

void micro_dispatch(int64_t rows, const float* a, const float* strip, int64_t kc, float* y, int64_t ldy,
                    const __mmask16 (&mask)[3], bool first, const float* bias) {
  switch (rows) {
    case 1: micro_kernel<1>(a, strip, kc, y, ldy, mask, first, bias); break;
    case 2: micro_kernel<2>(a, strip, kc, y, ldy, mask, first, bias); break;
    case 3: micro_kernel<3>(a, strip, kc, y, ldy, mask, first, bias); break;
    case 4: micro_kernel<4>(a, strip, kc, y, ldy, mask, first, bias); break;
    case 5: micro_kernel<5>(a, strip, kc, y, ldy, mask, first, bias); break;
    case 6: micro_kernel<6>(a, strip, kc, y, ldy, mask, first, bias); break;
    case 7: micro_kernel<7>(a, strip, kc, y, ldy, mask, first, bias); break;
    default: micro_kernel<8>(a, strip, kc, y, ldy, mask, first, bias); break;
  }
}

// x [m, k] into micro-panels (row tiles [t_begin, t_end)): k block pc (width kc) starts at
// xp + pc * tiles * 8, row tile t of it at + t * kc * 8, element (row 8t + i, column pc + p) at
// + p * 8 + i. Rows past m are zeros.
void pack_x_tiles(const float* x, int64_t m, int64_t k, int64_t t_begin, int64_t t_end, float* xp) {
  const int64_t tiles = row_tiles(m);
  for (int64_t pc = 0; pc < k; pc += kKc) {
    const int64_t kc = min64(kKc, k - pc);
    for (int64_t t = t_begin; t < t_end; ++t) {
      float* dst = xp + pc * tiles * kMr + t * kc * kMr;
      const int64_t rows = min64(kMr, m - t * kMr);
      for (int64_t p = 0; p < kc; p += 16) {
        const __mmask16 mask = tail_mask(kc - p);
        __m512 r[16];
        for (int i = 0; i < 16; ++i) {
          r[i] = i < rows ? _mm512_maskz_loadu_ps(mask, x + (t * kMr + i) * k + pc + p) : _mm512_setzero_ps();
        }
        transpose16(r);  // r[q] lanes 0..7: column p + q of rows 0..7
        for (int64_t q = 0; q < min64(16, kc - p); ++q) _mm256_store_ps(dst + (p + q) * kMr, _mm512_castps512_ps256(r[q]));
      }
    }
  }
}

// Prefetches (to L2) the weight codes of the block a later pack_panel will read, a few lines per
// call of step(): a panel's rows sit in as many 4 KB pages, where the hardware prefetchers see no
// stream, and packing straight from DRAM stalled on every row (~6 % of a GEMM at m = 128).
template <Codes C>
class BlockPrefetch {
 public:
  BlockPrefetch(const Weight& w, int64_t j0, int64_t rows, int64_t pc, int64_t kc, int64_t steps)
      : base_(static_cast<const char*>(w.data)), row_bytes_(w.k * code_bytes<C>()), j0_(j0), rows_(rows) {
    begin_ = pc * code_bytes<C>();
    lines_per_row_ = ((begin_ + kc * code_bytes<C>() + 63) >> 6) - (begin_ >> 6);
    per_step_ = steps > 0 ? (rows_ * lines_per_row_ + steps - 1) / steps : 0;
  }
  void step() {
    for (int64_t q = 0; q < per_step_ && next_ < rows_ * lines_per_row_; ++q, ++next_) {
      const int64_t r = next_ / lines_per_row_, l = next_ % lines_per_row_;
      _mm_prefetch(base_ + (j0_ + r) * row_bytes_ + ((begin_ >> 6) + l) * 64, _MM_HINT_T2);
    }
  }

 private:
  const char* base_;
  int64_t row_bytes_, j0_, rows_, begin_ = 0, lines_per_row_ = 0, per_step_ = 0, next_ = 0;
};

template <Codes C, Scales S>
void gemm_layout(const Weight& w, const float* xp, int64_t m, float* y, const uint16_t* bias, int64_t n_begin,
                 int64_t n_end, float* panel) {
  const int64_t k = w.k, n = w.n, tiles = row_tiles(m);
  alignas(64) float bias_f32[kNr];
  for (int64_t jc = n_begin; jc < n_end; jc += kNc) {
    const int64_t nc = min64(kNc, n_end - jc);
    for (int64_t pc = 0; pc < k; pc += kKc) {
      const int64_t kc = min64(kKc, k - pc);
      const bool first = pc == 0, last = pc + kc == k;
      pack_panel<C, S>(w, jc, nc, pc, kc, panel);
      // The block packed next: the following k block of these columns, else the next columns' first.
      const int64_t strips = (nc + kNr - 1) / kNr;
      const bool more_k = pc + kc < k;
      const int64_t next_jc = more_k ? jc : jc + kNc, next_pc = more_k ? pc + kc : 0;
      BlockPrefetch<C> ahead(w, next_jc, next_jc < n_end ? min64(kNc, n_end - next_jc) : 0, next_pc,
                             min64(kKc, k - next_pc), strips * tiles);
      const float* xblock = xp + pc * tiles * kMr;
      for (int64_t g = 0; g < strips; ++g) {
        const int64_t j = jc + g * kNr, cols = min64(kNr, jc + nc - j);
        const __mmask16 mask[3] = {tail_mask(cols), tail_mask(cols - 16), tail_mask(cols - 32)};
        const float* strip_bias = nullptr;
        if (last && bias != nullptr) {
          for (int64_t c = 0; c < kNr; ++c) bias_f32[c] = c < cols ? bf16_value(bias[j + c]) : 0.0f;
          strip_bias = bias_f32;
        }
        const float* strip = panel + g * kc * kNr;
        for (int64_t t = 0; t < tiles; ++t) {
          ahead.step();
          micro_dispatch(min64(kMr, m - t * kMr), xblock + t * kc * kMr, strip, kc, y + t * kMr * n + j, n, mask, first,
                         strip_bias);
        }
      }
    }
  }
}

using GemvFn = void (*)(const Weight&, const float*, int64_t, float*, const uint16_t*, int64_t, int64_t, float*);
using GemmFn = void (*)(const Weight&, const float*, int64_t, float*, const uint16_t*, int64_t, int64_t, float*);

struct Entry {
  GemvFn gemv;
  GemmFn gemm;
};

template <Codes C, Scales S>
constexpr Entry entry() {
  return {gemv_layout<PlainDecoder<C>, C, S>, gemm_layout<C, S>};
}

Entry select(const Weight& w) {
  switch (w.codes) {
    case Codes::kBf16: return entry<Codes::kBf16, Scales::kNone>();
    case Codes::kI8: return entry<Codes::kI8, Scales::kRow>();
    case Codes::kE4m3:
      switch (w.scales) {
        case Scales::kTensor: return entry<Codes::kE4m3, Scales::kTensor>();
        case Scales::kRow: return entry<Codes::kE4m3, Scales::kRow>();
        case Scales::kBlock: return entry<Codes::kE4m3, Scales::kBlock>();
        case Scales::kMx: return entry<Codes::kE4m3, Scales::kMx>();
        case Scales::kNone: break;
      }
      break;
  }
  return entry<Codes::kE4m3, Scales::kTensor>();  // unreachable: linear.cc validates layouts
}

}  // namespace

size_t gemv_scratch_floats(const Weight& w, int64_t m) {
  return w.scales == Scales::kBlock ? static_cast<size_t>(min64(m, 4) * ((w.k + 63) / 64 * 64)) : 0;
}

void gemv(const Weight& w, const float* x, int64_t m, float* y, const uint16_t* bias, int64_t n_begin,
          int64_t n_end, float* xs) {
  select(w).gemv(w, x, m, y, bias, n_begin, n_end, xs);
}

void gemm(const Weight& w, const float* xp, int64_t m, float* y, const uint16_t* bias, int64_t n_begin,
          int64_t n_end, float* panel) {
  select(w).gemm(w, xp, m, y, bias, n_begin, n_end, panel);
}

int64_t gemm_row_tiles(int64_t m) { return row_tiles(m); }
void gemm_pack_x(const float* x, int64_t m, int64_t k, int64_t t_begin, int64_t t_end, float* xp) {
  pack_x_tiles(x, m, k, t_begin, t_end, xp);
}
size_t gemm_packed_x_floats(int64_t m, int64_t k) { return static_cast<size_t>(row_tiles(m) * kMr * k); }
size_t gemm_panel_floats() { return kPanelFloats; }
int64_t gemm_column_grain() { return kNr; }

}  // namespace qswap::kernels::avx512

#endif
