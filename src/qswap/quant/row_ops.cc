#include "qswap/quant/row_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <vector>

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

#include "qswap/base/cpu.h"
#include "qswap/quant/row_ops_avx512.h"
#include "qswap/tensor/convert.h"

namespace qswap::quant {
namespace {

// Row r of `src` (relative to src.row0) as f32.
void load_row_f32(const SourceRows& src, int64_t r, float* out, bool reference) {
  const size_t n = static_cast<size_t>(src.cols);
  const std::byte* row = src.row(r);
  switch (src.dtype) {
    case DType::kBF16: {
      const auto* in = reinterpret_cast<const uint16_t*>(row);
      if (reference) {
        for (size_t i = 0; i < n; ++i) out[i] = bf16_to_f32(in[i]);
      } else {
        bf16_to_f32(in, out, n);
      }
      return;
    }
    case DType::kF16: {
      const auto* in = reinterpret_cast<const uint16_t*>(row);
      if (reference) {
        for (size_t i = 0; i < n; ++i) out[i] = f16_to_f32(in[i]);
      } else {
        f16_to_f32(in, out, n);
      }
      return;
    }
    default:  // f32; the loader admits no other source dtype
      std::memcpy(out, row, n * sizeof(float));
      return;
  }
}

// out[i] = e4m3(saturate(x[i] * inv_scale)), RNE.
void quantize_e4m3(const float* x, float inv_scale, uint8_t* out, int64_t n, bool reference) {
  if (!reference) {
    f32_to_e4m3_scaled(x, inv_scale, out, static_cast<size_t>(n));
    return;
  }
  for (int64_t i = 0; i < n; ++i) out[i] = f32_to_e4m3(x[i] * inv_scale);
}

// Thread-local scratch for one converted row.
float* scratch_row(int64_t cols) {
  thread_local std::vector<float> v;
  if (v.size() < static_cast<size_t>(cols)) v.resize(static_cast<size_t>(cols));
  return v.data();
}

}  // namespace


float amax(const float* x, int64_t n, bool reference) {
  if (!reference) return amax_f32(x, static_cast<size_t>(n));
  float m = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(x[i])) return x[i];
    m = std::max(m, std::fabs(x[i]));
  }
  return m;
}


void quantize_i8(const float* x, float inv_scale, int8_t* out, int64_t n, bool reference) {
  // The kernel takes finite scales; an inf one (a row of bf16 subnormals: amax / 127 underflows
  // to an f32 whose reciprocal overflows) makes 0 * inf products, which only the loop handles.
  if (!reference && cpu_features().avx512 && std::isfinite(inv_scale)) {
    avx512::quantize_i8(x, inv_scale, out, n);
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    float q = std::nearbyint(x[i] * inv_scale);  // default rounding mode: nearest even
    // A NaN product (0 * inf) gives 0, as torch's float -> int8 cast does on x86.
    out[i] = std::isnan(q) ? int8_t{0} : static_cast<int8_t>(std::clamp(q, -127.0f, 127.0f));
  }
}

RowReader::RowReader(const SourceRows& src, bool reference)
    : src_(src), reference_(reference), scratch_(scratch_row(src.cols)) {
  if (!reference && src.dtype == DType::kBF16) {
    mode_ = Mode::kBf16;
  } else if (!reference && src.dtype == DType::kF32) {
    mode_ = Mode::kF32;
  } else {
    mode_ = Mode::kConverted;
  }
  avx512_ = mode_ == Mode::kBf16 && cpu_features().avx512;
}

void RowReader::select(int64_t r) {
  row_ = src_.row(r);
  converted_ = nullptr;
  if (mode_ == Mode::kConverted) {
    load_row_f32(src_, r, scratch_, reference_);
    converted_ = scratch_;
  }
}

float RowReader::amax(int64_t c0, int64_t n, bool streaming) const {
  switch (mode_) {
    case Mode::kBf16:
      if (avx512_) return avx512::amax_bf16(reinterpret_cast<const uint16_t*>(row_) + c0, n, streaming);
      return amax_bf16(reinterpret_cast<const uint16_t*>(row_) + c0, static_cast<size_t>(n));
    case Mode::kF32: return amax_f32(reinterpret_cast<const float*>(row_) + c0, static_cast<size_t>(n));
    case Mode::kConverted: break;
  }
  return quant::amax(converted_ + c0, n, reference_);
}

void RowReader::tile_amax(int64_t r0, int64_t r1, float* out) {
  const int64_t tiles = (src_.cols + kTile - 1) / kTile;
  if (avx512_ && src_.contiguous(r0, r1)) {
    avx512::amax_bf16_tiles(reinterpret_cast<const uint16_t*>(src_.row(r0)), r1 - r0, src_.cols, src_.cols, out);
    return;
  }
  for (int64_t t = 0; t < tiles; ++t) out[t] = 0.0f;
  for (int64_t r = r0; r < r1; ++r) {
    select(r);
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t c0 = t * kTile;
      const float m = amax(c0, std::min(kTile, src_.cols - c0));
      out[t] = std::isnan(out[t]) || std::isnan(m) ? NAN : std::max(out[t], m);  // NaN sticks
    }
  }
}

void RowReader::quantize_e4m3_tiles(const float* inv_scales, uint8_t* out) const {
  if (avx512_) {
    avx512::quantize_e4m3_bf16_tiles(reinterpret_cast<const uint16_t*>(row_), inv_scales, out, src_.cols);
    return;
  }
  for (int64_t c0 = 0, t = 0; c0 < src_.cols; c0 += kTile, ++t) {
    quantize_e4m3(c0, std::min(kTile, src_.cols - c0), inv_scales[t], out + c0);
  }
}

void RowReader::quantize_i8(float inv_scale, int8_t* out) {
  if (avx512_ && std::isfinite(inv_scale)) {
    avx512::quantize_i8_bf16(reinterpret_cast<const uint16_t*>(row_), inv_scale, out, src_.cols);
    return;
  }
  quant::quantize_i8(f32(), inv_scale, out, src_.cols, reference_);
}

void RowReader::quantize_e4m3(int64_t c0, int64_t n, float inv_scale, uint8_t* out) const {
  switch (mode_) {
    case Mode::kBf16:
      if (avx512_) {
        avx512::quantize_e4m3_bf16(reinterpret_cast<const uint16_t*>(row_) + c0, inv_scale, out, n);
        return;
      }
      bf16_to_e4m3_scaled(reinterpret_cast<const uint16_t*>(row_) + c0, inv_scale, out, static_cast<size_t>(n));
      return;
    case Mode::kF32:
      f32_to_e4m3_scaled(reinterpret_cast<const float*>(row_) + c0, inv_scale, out, static_cast<size_t>(n));
      return;
    case Mode::kConverted: break;
  }
  quant::quantize_e4m3(converted_ + c0, inv_scale, out, n, reference_);
}

const float* RowReader::f32() {
  if (converted_ != nullptr) return converted_;
  if (mode_ == Mode::kF32) return reinterpret_cast<const float*>(row_);
  bf16_to_f32(reinterpret_cast<const uint16_t*>(row_), scratch_, static_cast<size_t>(src_.cols));
  converted_ = scratch_;
  return converted_;
}

Status non_finite_error(const SourceRows& src, int64_t row) {
  return data_loss("row {} holds a NaN or Inf value", src.row0 + row);
}

void stream_fence() {
#if defined(__x86_64__)
  _mm_sfence();
#endif
}

Status for_each_row_block(const QuantContext& ctx, int64_t rows, int64_t grain,
                          const std::function<Status(int64_t, int64_t)>& fn) {
  if (ctx.pool == nullptr || ctx.pool->size() == 1) {
    Status s = fn(0, rows);
    stream_fence();
    return s;
  }
  std::mutex mutex;
  int64_t first_bad = rows;
  Status error;
  ctx.pool->parallel_for(rows, grain, [&](int64_t begin, int64_t end) {
    Status s = fn(begin, end);
    stream_fence();
    if (s.ok()) return;
    std::lock_guard<std::mutex> lock(mutex);
    if (begin < first_bad) {
      first_bad = begin;
      error = std::move(s);
    }
  });
  return error;
}


}  // namespace qswap::quant
