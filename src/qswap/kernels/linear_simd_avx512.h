// Building blocks of the AVX-512 linear kernels, shared by linear_avx512.cc and linear_vbmi.cc.
// Include only from those ISA files, after <immintrin.h>: everything here is in an anonymous
// namespace (internal linkage), so no ISA-compiled copy of a function can leak to other files.
#pragma once

#include <cstring>

#include "qswap/kernels/linear_avx512.h"
#include "qswap/kernels/reduce_avx512.h"

namespace qswap::kernels::avx512 {
namespace {

constexpr int64_t kTile = 128;  // fp8-block tile
constexpr int64_t kMxBlock = 32;
// MX: e8m0 scales per row (one per 32 codes along k), and where a step of 64 codes from kk falls
// in its row's group of 8 steps (16 blocks), the unit the GEMV sets the scales up for.
inline int64_t mx_blocks(int64_t k) { return (k + kMxBlock - 1) / kMxBlock; }
inline int mx_group_step(int64_t kk) { return static_cast<int>(kk / 64 % 8); }
// GEMV software prefetch distances. Rows stream in address order, but the hardware prefetchers
// alone keep too few lines in flight behind the decode work (fp8, weights in DRAM, measured:
// 7 GB/s without, 12 with, one thread). Two prefetches per line: to L2 (T2) 8 KB ahead, where
// more misses can be in flight than the L1's fill buffers allow, then to L1 (T0) 1 KB ahead, so
// the decode's loads find their lines in L1. Measured on a busy machine, one thread, 8 MB
// windows of a 1 GB buffer: bf16 13.1 GB/s with T0 alone at 8 KB, 14.5 with T2 alone, 15.3
// with both; fp8 12.8, 12.8, 13.3. 256 B - 1 KB near and 6 - 12 KB far did alike.
constexpr int64_t kPrefetchBytes = 8192;
constexpr int64_t kPrefetchNearBytes = 1024;

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
// Lanes [0, left) of 16; none when left <= 0.
inline __mmask16 tail_mask(int64_t left) {
  if (left <= 0) return 0;
  return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
}

inline float bits_to_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}
inline float bf16_value(uint16_t h) { return bits_to_f32(static_cast<uint32_t>(h) << 16); }
// 2^(c - 127); code 0 is 2^-127 (an f32 subnormal). 0xFF (NaN) is never written by the schemes.
inline float e8m0_value(uint8_t c) { return bits_to_f32(c == 0 ? 0x00400000u : static_cast<uint32_t>(c) << 23); }

template <Codes C>
constexpr int64_t code_bytes() {
  return C == Codes::kBf16 ? 2 : 1;
}

// 16 codes starting at element `i` of `p`, as f32 (e4m3: × 2^-8, see linear_avx512.cc).
// kMasked: only lanes in `m` are read, the rest are 0.
template <Codes C, bool kMasked>
inline __m512 decode16(const void* p, int64_t i, __mmask16 m) {
  if constexpr (C == Codes::kBf16) {
    const uint16_t* q = static_cast<const uint16_t*>(p) + i;
    __m256i h = kMasked ? _mm256_maskz_loadu_epi16(m, q) : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  } else if constexpr (C == Codes::kI8) {
    const int8_t* q = static_cast<const int8_t*>(p) + i;
    __m128i b = kMasked ? _mm_maskz_loadu_epi8(m, q) : _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b));
  } else {
    const uint8_t* q = static_cast<const uint8_t*>(p) + i;
    __m128i b = kMasked ? _mm_maskz_loadu_epi8(m, q) : _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
    __m256i h = _mm256_and_si256(_mm256_slli_epi16(_mm256_cvtepi8_epi16(b), 7),
                                 _mm256_set1_epi16(static_cast<short>(0xBFFF)));
    return _mm512_cvtph_ps(h);
  }
}

// A decoder turns 64 codes into 4 f32 vectors; kUnbias multiplies a finished sum. kPermuted: the
// vectors hold the 64 elements in the decoder's own order, and x comes in that order too (rows
// of round_up(k, 64) floats, zeros past k). kRareFixes: some codes need a fix-up that decode64
// can skip behind a branch (kBranch) when a step has none of them, counting the steps that had
// some in `fixed_steps` (see FixMode). This one runs decode16 four times, in order, and has no
// fix-up.
template <Codes C>
struct PlainDecoder {
  static constexpr float kUnbias = C == Codes::kE4m3 ? 256.0f : 1.0f;
  static constexpr bool kPermuted = false;
  static constexpr bool kRareFixes = false;
  // w[v] = elements [i + 16v, i + 16v + 16); kMasked: only the first `left` elements are read.
  template <bool kMasked, bool kBranch>
  static inline void decode64(const void* p, int64_t i, int64_t left, __m512 (&w)[4], int64_t& /*fixed_steps*/) {
    for (int v = 0; v < 4; ++v) w[v] = decode16<C, kMasked>(p, i + 16 * v, tail_mask(left - 16 * v));
  }
};

// Whether a GEMV's steps skip the decoder's fix-up behind a branch (kRareFixes). In real weights
// the codes that need it are rare (e4m3 exponent 0: 1-2 in 10^4 codes, 0.5-1 % of 64-code steps
// in checkpoints quantized per tensor or per channel), and skipping it saves 2 of the ~16 vector
// uops of a step. A mispredicted branch costs about as much as 16 steps save, so once more than
// 1 step in kMaxFixedShare (+ kFixSlack) has needed the fix since the branch mode began, rows run
// with the fix unconditional, and every kProbeRows rows the branch is tried again for a row. No
// weight pays more than one row of mispredictions per kProbeRows rows. The decoded values, and
// so the results, are the same either way. One per thread and GEMV call, handed from row to row.
struct FixMode {
  static constexpr int64_t kMaxFixedShare = 16;
  static constexpr int64_t kFixSlack = 2;
  static constexpr int64_t kProbeRows = 256;
  bool branch = true;
  int64_t steps = 0, fixed = 0;  // since the branch mode began: steps run, steps that needed the fix
  int64_t unconditional_rows = 0;

  void branch_row(int64_t row_steps) {
    steps += row_steps;
    if (fixed * kMaxFixedShare > steps + kFixSlack * kMaxFixedShare) {
      branch = false;
      steps = fixed = unconditional_rows = 0;
    }
  }
  void unconditional_row() { branch = ++unconditional_rows >= kProbeRows; }
};

// The scale of element (row j, column kk) for the layouts whose scale varies along k.
template <Scales S>
inline float varying_scale(const Weight& w, int64_t j, int64_t kk) {
  if constexpr (S == Scales::kBlock) {
    const int64_t tiles_k = (w.k + kTile - 1) / kTile;
    return static_cast<const float*>(w.scale)[w.scale_row[j] * tiles_k + kk / kTile];
  } else {
    return e8m0_value(static_cast<const uint8_t*>(w.scale)[j * mx_blocks(w.k) + kk / kMxBlock]);
  }
}

// The scale constant along k of row j (1 for `none` and the k-varying layouts).
template <Scales S>
inline float row_scale(const Weight& w, int64_t j) {
  if constexpr (S == Scales::kTensor) return static_cast<const float*>(w.scale)[0];
  if constexpr (S == Scales::kRow) return static_cast<const float*>(w.scale)[j];
  (void)w;
  (void)j;
  return 1.0f;
}

// MX: the e8m0 scales of rows [j, j_end), `ahead` bytes further, to L1. The scale stream (1 byte
// per 32 codes, read once per 16 blocks) gets no prefetch from the steps, and the hardware
// prefetchers alone left it short (cold MX GEMV with this: +8 % GB/s on one thread, +2 % on two).
inline void prefetch_mx_scales(const Weight& w, int64_t j, int64_t j_end, int64_t ahead) {
  const int64_t blocks = mx_blocks(w.k), bytes = (j_end - j) * blocks;
  const char* s = static_cast<const char*>(w.scale) + j * blocks + ahead;  // may run past the end: harmless
  for (int64_t off = 0; off < bytes; off += 64) _mm_prefetch(s + off, _MM_HINT_T0);
  _mm_prefetch(s + bytes - 1, _MM_HINT_T0);
}

// ---------------------------------------------------------------------------------------------
// GEMV: one weight row at a time, so each thread streams its rows in address order (the L2
// streamer follows one stream per 4 KB page; interleaving rows defeats it), with a software
// prefetch ahead. 64 elements per step into 4 accumulators per row of x (enough independent FMA
// chains); each decoded vector is used for all M rows of x. Per-tensor/per-row scales multiply
// the finished dot product. Block scales change along k but are shared by 128 rows: x is scaled
// by them once per tile row (a k-long multiply per 128 weight rows), and the steps run unscaled.
// MX scales change along k and per row: with several rows of x they multiply the decoded vectors
// (once for all rows); with one row, the partial sum of each 32-block is scaled instead.
//
// Rows are finished 16 at a time: each row leaves one vector of partial sums, and one
// transpose-add tree (reduce16) turns 16 of them into 16 dot products, scaled, biased and stored
// as one vector. A horizontal sum, scale and store per row cost ~15 cycles, ~10 % of a
// 1024-element fp8 row.

// Floats per row of x as the decoder reads it.
template <class Dec>
inline int64_t x_stride(int64_t k) {
  return Dec::kPermuted ? (k + 63) / 64 * 64 : k;
}

// Row j's partial sums (one vector per row of x; the dot product is the sum of its lanes). S is
// never kBlock here: gemv_rows folds block scales into x.
template <class Dec, Codes C, Scales S, int M>
inline void gemv_row_sums(const Dec& dec, const Weight& w, const float* x, int64_t j, FixMode& mode,
                          __m512 (&sums)[M]) {
  static_assert(S != Scales::kBlock);
  constexpr bool kGroupSums = S == Scales::kMx && M == 1;
  const int64_t k = w.k, ldx = x_stride<Dec>(k);
  const void* row = static_cast<const uint8_t*>(w.data) + j * k * code_bytes<C>();
  __m512 acc[4][M];
  for (int v = 0; v < 4; ++v) {
    for (int mi = 0; mi < M; ++mi) acc[v][mi] = _mm512_setzero_ps();
  }
  // MX: the row's scales of one group of 8 steps (16 blocks), set up once per group (a load and
  // conversion of 16 e8m0 codes), so that a step finds its scales at a constant offset. Permuted
  // decoders take one vector per step (lanes 0-7 the step's first block, 8-15 its second: an FMA
  // memory operand), the others a broadcast per block.
  alignas(64) float mx_scales[16];
  alignas(64) float mx_pairs[8][16];
  auto load_mx_group = [&](int64_t kk) __attribute__((always_inline)) {
    const int64_t blocks = mx_blocks(k), block = kk / kMxBlock;
    const uint8_t* codes = static_cast<const uint8_t*>(w.scale) + j * blocks + block;
    const __m512i c = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(tail_mask(blocks - block), codes));
    __m512i bits = _mm512_slli_epi32(c, 23);
    bits = _mm512_mask_mov_epi32(bits, _mm512_testn_epi32_mask(c, c), _mm512_set1_epi32(0x00400000));  // 2^-127
    if constexpr (Dec::kPermuted) {
      const __m512i second = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
      for (int t = 0; t < 8; ++t) {
        const __m512i idx = _mm512_add_epi32(second, _mm512_set1_epi32(2 * t));
        _mm512_store_ps(mx_pairs[t], _mm512_castsi512_ps(_mm512_permutexvar_epi32(idx, bits)));
      }
    } else {
      _mm512_store_si512(mx_scales, bits);
    }
  };
  // One step of 64 codes from kk (t: its place in an MX group).
  auto step = [&]<bool kMasked, bool kBranch>(int64_t kk, int64_t left, int t) __attribute__((always_inline)) {
    __m512 wv[4];
    dec.template decode64<kMasked, kBranch>(row, kk, left, wv, mode.fixed);
    __m512 xv[4][M];
    for (int v = 0; v < 4; ++v) {
      const __mmask16 mask = tail_mask(left - 16 * v);
      for (int mi = 0; mi < M; ++mi) {
        const float* xp = x + mi * ldx + kk + 16 * v;
        // A permuted x is padded with zeros, and the codes past k decode to zeros.
        xv[v][mi] = kMasked && !Dec::kPermuted ? _mm512_maskz_loadu_ps(mask, xp) : _mm512_loadu_ps(xp);
      }
    }
    if constexpr (S == Scales::kMx) {
      if constexpr (Dec::kPermuted) {  // lanes 0-7 of every vector are the first 32-block, 8-15 the next
        const __m512 sb = _mm512_load_ps(mx_pairs[t]);
        if constexpr (kGroupSums) {  // one partial-sum vector for both blocks: 5 FMA-type ops, not 6
          __m512 b = _mm512_mul_ps(wv[0], xv[0][0]);
          for (int v = 1; v < 4; ++v) b = _mm512_fmadd_ps(wv[v], xv[v][0], b);
          acc[0][0] = _mm512_fmadd_ps(b, sb, acc[0][0]);
          return;
        }
        for (int v = 0; v < 4; ++v) wv[v] = _mm512_mul_ps(wv[v], sb);
        for (int v = 0; v < 4; ++v) {
          for (int mi = 0; mi < M; ++mi) acc[v][mi] = _mm512_fmadd_ps(wv[v], xv[v][mi], acc[v][mi]);
        }
        return;
      }
      const __m512 s0 = _mm512_set1_ps(mx_scales[2 * t]);
      const __m512 s1 = left > kMxBlock ? _mm512_set1_ps(mx_scales[2 * t + 1]) : s0;
      if constexpr (kGroupSums) {  // vectors 0-1 are one 32-block, 2-3 the next
        const __m512 b0 = _mm512_fmadd_ps(wv[1], xv[1][0], _mm512_mul_ps(wv[0], xv[0][0]));
        const __m512 b1 = _mm512_fmadd_ps(wv[3], xv[3][0], _mm512_mul_ps(wv[2], xv[2][0]));
        acc[0][0] = _mm512_fmadd_ps(b0, s0, acc[0][0]);
        acc[1][0] = _mm512_fmadd_ps(b1, s1, acc[1][0]);
        return;
      }
      wv[0] = _mm512_mul_ps(wv[0], s0);
      wv[1] = _mm512_mul_ps(wv[1], s0);
      wv[2] = _mm512_mul_ps(wv[2], s1);
      wv[3] = _mm512_mul_ps(wv[3], s1);
    }
    for (int v = 0; v < 4; ++v) {
      for (int mi = 0; mi < M; ++mi) acc[v][mi] = _mm512_fmadd_ps(wv[v], xv[v][mi], acc[v][mi]);
    }
  };
  const char* ahead = static_cast<const char*>(row) + kPrefetchBytes;  // may run into later rows: harmless
  const char* near = static_cast<const char*>(row) + kPrefetchNearBytes;
  auto full_step = [&]<bool kBranch>(int64_t kk, int t) __attribute__((always_inline)) {
    for (int64_t line = 0; line < code_bytes<C>(); ++line) {
      _mm_prefetch(ahead + kk * code_bytes<C>() + 64 * line, _MM_HINT_T2);
      _mm_prefetch(near + kk * code_bytes<C>() + 64 * line, _MM_HINT_T0);
    }
    step.template operator()<false, kBranch>(kk, 64, t);
  };
  // The scales of the codes kPrefetchBytes ahead, as the steps' far prefetch.
  if constexpr (S == Scales::kMx) prefetch_mx_scales(w, j, j + 1, kPrefetchBytes / kMxBlock);
  // A row's full steps; returns where they end. MX rows go by groups of 8 steps, unrolled, so that
  // no step checks for a new group or computes where its scales are (with that and a
  // two-broadcast blend an MX step took ~37 instructions, now ~23 + 4 for the group's set-up);
  // what is left after the whole groups, full steps and tail, lies in one more group. full_step
  // comes as an argument: a closure holding it would hold acc's address in every layout, and GCC
  // then kept acc in memory (4 stores per step; check objdump after touching this).
  auto full_steps = [&load_mx_group, k]<bool kBranch>(auto& steps) __attribute__((always_inline)) {
    int64_t kk = 0;
    if constexpr (S == Scales::kMx) {
      for (; kk + 8 * 64 <= k; kk += 8 * 64) {
        load_mx_group(kk);
#pragma GCC unroll 8
        for (int t = 0; t < 8; ++t) steps.template operator()<kBranch>(kk + 64 * t, t);
      }
      if (kk < k) load_mx_group(kk);
    }
    for (; kk + 64 <= k; kk += 64) steps.template operator()<kBranch>(kk, mx_group_step(kk));
    return kk;
  };
  int64_t kk;
  if constexpr (Dec::kRareFixes) {
    if (mode.branch) {
      kk = full_steps.template operator()<true>(full_step);
      mode.branch_row(kk / 64);
    } else {
      mode.unconditional_row();
      kk = full_steps.template operator()<false>(full_step);
    }
  } else {
    kk = full_steps.template operator()<false>(full_step);
  }
  if (kk < k) step.template operator()<true, false>(kk, k - kk, mx_group_step(kk));
  for (int mi = 0; mi < M; ++mi) {
    sums[mi] = _mm512_add_ps(_mm512_add_ps(acc[0][mi], acc[1][mi]), _mm512_add_ps(acc[2][mi], acc[3][mi]));
  }
}

// fp8-block: x × the scales of tile row `tile_row`, into xs (same layout as x). Each 64-element
// step of a row lies in one 128-column tile, permuted or not, so a step reads scaled x only.
template <class Dec, int M>
void scale_x_by_tiles(const Weight& w, const float* x, int32_t tile_row, float* xs) {
  const int64_t ldx = x_stride<Dec>(w.k), tiles_k = (w.k + kTile - 1) / kTile;
  const float* s = static_cast<const float*>(w.scale) + tile_row * tiles_k;
  for (int mi = 0; mi < M; ++mi) {
    for (int64_t kk = 0; kk < ldx; kk += 16) {
      const __mmask16 mask = tail_mask(ldx - kk);
      const __m512 v = _mm512_maskz_loadu_ps(mask, x + mi * ldx + kk);
      _mm512_mask_storeu_ps(xs + mi * ldx + kk, mask, _mm512_mul_ps(v, _mm512_set1_ps(s[kk / kTile])));
    }
  }
}

// Rows [n_begin, n_end) of y for M rows of x, 16 rows at a time. fp8-block rows read x scaled by
// their tile row's scales (xs: gemv_scratch_floats, recomputed when the tile row changes, every
// 128 rows of a shard), so their steps do no scaling at all.
template <class Dec, Codes C, Scales S, int M>
void gemv_rows(const Weight& w, const float* x, float* y, const uint16_t* bias, int64_t n_begin, int64_t n_end,
               float* xs) {
  const Dec dec;
  FixMode mode;
  int32_t scaled_for = -1;
  // The rows' own prefetch runs kPrefetchBytes ahead of them: fetch the first kPrefetchBytes of
  // this range now, or each chunk a thread takes starts with a stall.
  const char* first = static_cast<const char*>(w.data) + n_begin * w.k * code_bytes<C>();
  const int64_t head = min64(kPrefetchBytes, (n_end - n_begin) * w.k * code_bytes<C>());
  for (int64_t off = 0; off < head; off += 64) _mm_prefetch(first + off, _MM_HINT_T2);
  if constexpr (S == Scales::kMx) prefetch_mx_scales(w, n_begin, min64(n_end, n_begin + head / w.k + 1), 0);
  for (int64_t j0 = n_begin; j0 < n_end; j0 += 16) {
    const int64_t rows = min64(16, n_end - j0);
    __m512 part[M][16];
    for (int64_t r = 0; r < 16; ++r) {
      if (r < rows) {
        __m512 sums[M];
        if constexpr (S == Scales::kBlock) {
          const int32_t tile_row = w.scale_row[j0 + r];
          if (tile_row != scaled_for) {
            scale_x_by_tiles<Dec, M>(w, x, tile_row, xs);
            scaled_for = tile_row;
          }
          gemv_row_sums<Dec, C, Scales::kNone, M>(dec, w, xs, j0 + r, mode, sums);
        } else {
          gemv_row_sums<Dec, C, S, M>(dec, w, x, j0 + r, mode, sums);
        }
        for (int mi = 0; mi < M; ++mi) part[mi][r] = sums[mi];
      } else {
        for (int mi = 0; mi < M; ++mi) part[mi][r] = _mm512_setzero_ps();
      }
    }
    const __mmask16 mask = tail_mask(rows);
    __m512 scale = _mm512_set1_ps(1.0f);
    if constexpr (S == Scales::kTensor) scale = _mm512_set1_ps(row_scale<S>(w, j0));
    if constexpr (S == Scales::kRow) scale = _mm512_maskz_loadu_ps(mask, static_cast<const float*>(w.scale) + j0);
    __m512 b = _mm512_setzero_ps();
    if (bias != nullptr) {
      b = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, bias + j0)), 16));
    }
    for (int mi = 0; mi < M; ++mi) {
      __m512 sum = reduce16(part[mi]);
      if constexpr (Dec::kUnbias != 1.0f) sum = _mm512_mul_ps(sum, _mm512_set1_ps(Dec::kUnbias));
      if constexpr (S == Scales::kTensor || S == Scales::kRow) sum = _mm512_mul_ps(sum, scale);
      _mm512_mask_storeu_ps(y + mi * w.n + j0, mask, _mm512_add_ps(sum, b));
    }
  }
}

// Rows of x in slices of up to 4 (the dispatcher sends only m <= 4 here).
template <class Dec, Codes C, Scales S>
void gemv_layout(const Weight& w, const float* x, int64_t m, float* y, const uint16_t* bias, int64_t n_begin,
                 int64_t n_end, float* xs) {
  for (int64_t i = 0; i < m; i += 4) {
    const float* xi = x + i * x_stride<Dec>(w.k);
    float* yi = y + i * w.n;
    switch (min64(4, m - i)) {
      case 1: gemv_rows<Dec, C, S, 1>(w, xi, yi, bias, n_begin, n_end, xs); break;
      case 2: gemv_rows<Dec, C, S, 2>(w, xi, yi, bias, n_begin, n_end, xs); break;
      case 3: gemv_rows<Dec, C, S, 3>(w, xi, yi, bias, n_begin, n_end, xs); break;
      default: gemv_rows<Dec, C, S, 4>(w, xi, yi, bias, n_begin, n_end, xs); break;
    }
  }
}

}  // namespace
}  // namespace qswap::kernels::avx512
