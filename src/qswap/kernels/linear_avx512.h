// AVX-512 linear-layer kernels (linear_avx512.cc). This header, and the .cc behind it, include
// nothing but <cstdint>/<cstddef> and intrinsics: an inline function of a shared header compiled
// with AVX-512 flags can become the program-wide copy of that function (a weak symbol) and crash
// CPUs without AVX-512. Reached only through linear.cc's dispatch on cpu_features().avx512.
#pragma once

#include <cstddef>
#include <cstdint>

namespace qswap::kernels::avx512 {

// How the codes decode (the weight tensor's dtype).
enum class Codes : int { kBf16, kE4m3, kI8 };
// Where the scales live.
enum class Scales : int {
  kNone,     // none: scale 1
  kTensor,   // f32 [1]
  kRow,      // f32 [n]
  kBlock,    // f32 [tile rows, ceil(k/128)], tile row of output row j = scale_row[j]
  kMx,       // e8m0 [n, ceil(k/32)]
};

struct Weight {
  Codes codes;
  Scales scales;
  int64_t n, k;
  const void* data;   // [n, k] codes
  const void* scale;  // see Scales
  const int32_t* scale_row;  // kBlock only
};

// GEMV (m small): rows [n_begin, n_end) of y[m, n]; reads the weight rows once, dequantizing in
// registers. `xs`: the calling thread's scratch of gemv_scratch_floats(w, m) floats (fp8-block
// keeps x scaled by a tile row's scales there; nullptr when that is 0).
size_t gemv_scratch_floats(const Weight& w, int64_t m);
void gemv(const Weight& w, const float* x, int64_t m, float* y, const uint16_t* bias, int64_t n_begin,
          int64_t n_end, float* xs);

// gemv() for the e4m3 layouts, decoding with GFNI affine maps and AVX512-VBMI permutes
// (linear_vbmi.cc): call only when the CPU has both. Takes x rearranged by gemv_e4m3_vbmi_pack_x
// (once per call, shared by the threads) into gemv_e4m3_vbmi_x_floats(m, k) floats.
size_t gemv_e4m3_vbmi_x_floats(int64_t m, int64_t k);
void gemv_e4m3_vbmi_pack_x(const float* x, int64_t m, int64_t k, float* xq);
void gemv_e4m3_vbmi(const Weight& w, const float* xq, int64_t m, float* y, const uint16_t* bias, int64_t n_begin,
                    int64_t n_end, float* xs);

// GEMM (m large), in two steps: x is packed once per call into micro-panels (gemm_pack_x, split
// by row tiles, gemm_row_tiles(m) of them, into gemm_packed_x_floats(m, k) floats, 64-byte
// aligned), then gemm() computes columns [n_begin, n_end) of y[m, n] from the packed x; `panel`
// holds gemm_panel_floats() floats, 64-byte aligned (one per thread).
int64_t gemm_row_tiles(int64_t m);
size_t gemm_packed_x_floats(int64_t m, int64_t k);
void gemm_pack_x(const float* x, int64_t m, int64_t k, int64_t t_begin, int64_t t_end, float* xp);
void gemm(const Weight& w, const float* xp, int64_t m, float* y, const uint16_t* bias, int64_t n_begin,
          int64_t n_end, float* panel);
size_t gemm_panel_floats();
// The GEMM's column blocking: callers split n in multiples of this (the last piece may be short).
int64_t gemm_column_grain();

}  // namespace qswap::kernels::avx512
