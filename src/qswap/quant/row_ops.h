// Row-level building blocks shared by the schemes. Each op has a scalar reference (per-element
// conversion functions) and a fast path (the dispatched bulk kernels); `reference` picks one.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "qswap/quant/scheme.h"

namespace qswap::quant {

// max |x|; NaN if any element is NaN (so non-finite weights are caught by one check).
float amax(const float* x, int64_t n, bool reference);
// out[i] = clamp(rne(x[i] * inv_scale), -127, 127).
void quantize_i8(const float* x, float inv_scale, int8_t* out, int64_t n, bool reference);

// scale = amax / qmax, with the zero-tensor guard of DESIGN.md (scale 1, all codes 0).
inline float scale_for(float amax_value, float qmax) { return amax_value == 0.0f ? 1.0f : amax_value / qmax; }

Status non_finite_error(const SourceRows& src, int64_t row);

// Orders this thread's streamed stores (row_ops_avx512.h) before its later stores.
void stream_fence();

// Runs fn(begin, end) over row indices [0, rows) (relative to src.row0), on ctx.pool if set, and
// returns the error of the lowest failing row, if any. Each call of fn is followed by
// stream_fence(), so the row kernels' streamed stores are complete when this returns.
Status for_each_row_block(const QuantContext& ctx, int64_t rows, int64_t grain,
                          const std::function<Status(int64_t, int64_t)>& fn);

// One source row, read the cheapest way: on the fast path bf16 and f32 rows are used in place (the
// fused kernels read each element once per pass); f16 rows, and every row on the reference path,
// are converted to f32 once, on select().
//
// The quantizing methods expect finite values: callers check the row's amax first (a bf16 row on
// AVX-512 goes through an encoder that assumes it).
class RowReader {
 public:
  RowReader(const SourceRows& src, bool reference);
  void select(int64_t r);  // row r, relative to src.row0
  // max |x| over columns [c0, c0 + n); NaN if one is NaN. `streaming`: the rows are read in order
  // for their amax alone (the AVX-512 path then prefetches ahead).
  float amax(int64_t c0, int64_t n, bool streaming = false) const;
  // out[t] = max |x| over columns [t * kTile, (t + 1) * kTile) of rows [r0, r1), t < ceil(cols / kTile);
  // NaN if one is NaN. Leaves no row selected: select() one before reading it.
  static constexpr int64_t kTile = 128;
  void tile_amax(int64_t r0, int64_t r1, float* out);
  // out[i] = e4m3(saturate(x[c0 + i] * inv_scale)).
  void quantize_e4m3(int64_t c0, int64_t n, float inv_scale, uint8_t* out) const;
  // The whole row, column tile t (of kTile columns) scaled by inv_scales[t].
  void quantize_e4m3_tiles(const float* inv_scales, uint8_t* out) const;
  // out[i] = clamp(rne(x[i] * inv_scale), -127, 127) over the whole row.
  void quantize_i8(float inv_scale, int8_t* out);
  // The row as f32 (converted on first use).
  const float* f32();
  // The row's bf16 values when the AVX-512 row kernels apply to it (fast path, bf16, AVX-512),
  // else null.
  const uint16_t* avx512_bf16() const { return avx512_ ? reinterpret_cast<const uint16_t*>(row_) : nullptr; }

 private:
  enum class Mode { kBf16, kF32, kConverted };
  const SourceRows& src_;
  bool reference_;
  Mode mode_;
  bool avx512_;  // bf16 rows use the AVX-512 row kernels (row_ops_avx512.h)
  const std::byte* row_ = nullptr;
  float* converted_ = nullptr;  // valid for this row when non-null
  float* scratch_;
};

inline constexpr float kE4m3Max = 448.0f;

inline int64_t total_rows(std::span<const int64_t> shard_rows) {
  int64_t n = 0;
  for (int64_t r : shard_rows) n += r;
  return n;
}

}  // namespace qswap::quant
