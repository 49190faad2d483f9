// The linear layer y = x · Wᵀ over every kernel-tensor layout the quant schemes write, with the
// weight dequantized in registers (W8A16 / W16A16: activations are f32, the weight is never
// materialised in full precision in memory, apart from an L2-sized panel in the GEMM path).
//
// Layouts (W is [n out, k in], row-major), as src/qswap/quant/*.cc write them:
//   none          weight bf16 [n, k]
//   fp8           weight e4m3 [n, k], weight_scale f32 [1]
//   fp8-channel   weight e4m3 [n, k], weight_scale f32 [n]
//   fp8-block     weight e4m3 [n, k], weight_scale f32 [ceil(n/128), ceil(k/128)]
//   mxfp8         weight e4m3 [n, k], weight_scale e8m0 [n, ceil(k/32)]
//   int8-channel  weight i8 [n, k],   weight_scale f32 [n]
// Dequantized weight = code value × its scale.
//
// Numerics: the reference dequantizes each element in f32 (code value × scale, one rounding) and
// accumulates in f32 in k order. The fast paths differ from it only by f32 reassociation (partial
// sums per SIMD lane, a scale applied to a sum instead of to each term); the tests bound the
// difference by 1e-5 × Σ|x||w| per output. Results never depend on the thread count: every output
// element is computed by one thread, in an order fixed by the shapes alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "qswap/base/status.h"
#include "qswap/base/thread_pool.h"
#include "qswap/quant/scheme.h"
#include "qswap/tensor/tensor.h"

namespace qswap {

// A linear layer's weight: non-owning pointers into its kernel tensors (stable across reloads).
struct LinearWeight {
  QuantKind kind = QuantKind::kNone;
  int64_t n = 0, k = 0;
  const std::byte* weight = nullptr;  // [n, k] in the layout's code dtype
  const std::byte* scale = nullptr;   // layout-dependent, nullptr for `none`
  const int32_t* scale_row = nullptr; // fp8-block: the tile row of weight_scale for each output row
  int64_t scale_tile_rows = 0;         // fp8-block: rows of weight_scale
};

// Checks the views' dtypes and shapes against the layout of `kind`; errors name expected vs actual.
Result<LinearWeight> make_linear_weight(QuantKind kind, std::span<const TensorView> kernel_tensors);

// y[m, n] = sum_k x[m, k] * deq(W)[n, k] (+ bias[n] if bias != nullptr; bias is bf16 [n]).
// x: [m, k] f32 row-major, y: [m, n] f32 row-major (must not overlap x). Splits the work over
// `pool` (nullptr: the caller's thread only). Dispatches on cpu_features(): AVX-512 paths
// (GEMV for m <= kGemvMaxRows, else GEMM), otherwise reference::linear.
void linear(const LinearWeight& w, const float* x, int64_t m, float* y, const uint16_t* bias, ThreadPool* pool);

// Batches up to this many rows take the memory-bound GEMV path.
inline constexpr int64_t kGemvMaxRows = 4;

// Test hook: whether the AVX-512 GEMV may decode e4m3 with AVX512-VBMI and GFNI (default: if the
// CPU has both). Off, it decodes as every AVX-512 CPU can; both must match the reference.
void set_linear_vbmi(bool allowed);

namespace reference {
// Scalar: each element dequantized in f32 (code value × scale), f32 accumulation in k order, then
// + bias.
void linear(const LinearWeight& w, const float* x, int64_t m, float* y, const uint16_t* bias);
}  // namespace reference

// Bytes of the weight's kernel tensors (codes and scales): what a GEMV must read.
size_t linear_weight_bytes(const LinearWeight& w);

}  // namespace qswap
