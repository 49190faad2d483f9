// AVX-512 row kernels of the schemes, bit-identical to their scalar references (row_ops.cc,
// mxfp8.cc, scheme.cc). This header (and the .cc behind it) includes nothing but <cstdint>: an
// inline function from a shared header compiled with AVX-512 flags can become the program-wide
// copy of that function (a weak symbol) and crash CPUs without AVX-512.
//
// The kernels that write kernel tensors use streaming (non-temporal) stores for whole 64-byte
// lines: those bytes are written once per update and not read again soon, so the usual read of
// each destination line before it is written (read-for-ownership) is wasted memory traffic.
// Streamed stores are weakly ordered: the row kernels (quantize_*, bf16_to_mxfp8) leave the fence
// to their caller, once per batch of rows (for_each_row_block does it, row_ops.h); the copies
// fence before they return.
#pragma once

#include <cstdint>

namespace qswap::quant::avx512 {

// out[i] = clamp(rne(x[i] * inv_scale), -127, 127) for finite x[i] and a finite inv_scale.
void quantize_i8(const float* x, float inv_scale, int8_t* out, int64_t n);
// The same for bf16 x.
void quantize_i8_bf16(const uint16_t* x, float inv_scale, int8_t* out, int64_t n);

// out[i] = e4m3(bf16 x[i] * inv_scale), as f32_to_e4m3(bf16_to_f32(x[i]) * inv_scale). Every x[i]
// must be finite (the schemes check a row's amax first); any inv_scale.
void quantize_e4m3_bf16(const uint16_t* x, float inv_scale, uint8_t* out, int64_t n);
// The same with one scale per 128 columns: columns [128 t, 128 t + 128) use inv_scales[t].
void quantize_e4m3_bf16_tiles(const uint16_t* x, const float* inv_scales, uint8_t* out, int64_t n);

// max |x| of n bf16 values; a quiet NaN if one is NaN (as convert.h's amax_bf16), inf if an inf.
// prefetch_ahead: for rows read only for their amax (per-tensor FP8's first pass); where a
// quantizing kernel reads the row next, its own prefetching does better alone (measured).
float amax_bf16(const uint16_t* x, int64_t n, bool prefetch_ahead);

// Max |x| of every 128-column tile of rows [0, rows) of a bf16 matrix (row stride `stride`
// elements, `cols` columns): tile_amax[t] for columns [128 t, 128 t + 128). A tile holding a NaN
// gives a NaN, one holding an inf (and no NaN) inf.
void amax_bf16_tiles(const uint16_t* x, int64_t rows, int64_t stride, int64_t cols, float* tile_amax);

// MXFP8 of one bf16 row (E8M0 scale per 32, e4m3 codes), exactly as mxfp8.cc's reference; false
// (codes and scales undefined) if the row holds NaN or Inf.
bool bf16_to_mxfp8(const uint16_t* in, int64_t n, uint8_t* codes, uint8_t* scales);

// dst = src, n bf16 values; false if one of them is NaN or Inf (dst is written all the same).
bool copy_bf16_finite(const uint16_t* src, uint16_t* dst, int64_t n);
// dst = src, n bf16 values, with plain stores (dst is read again soon: per-tensor FP8's staging);
// returns max |x| as amax_bf16 does.
float copy_amax_bf16(const uint16_t* src, uint16_t* dst, int64_t n);
// dst = src, `bytes` bytes (a transaction's commit into the live kernel tensors).
void copy_streaming(const void* src, void* dst, int64_t bytes);

}  // namespace qswap::quant::avx512
