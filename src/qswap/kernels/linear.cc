#include "qswap/kernels/linear.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <vector>

#include "qswap/base/cpu.h"
#include "qswap/kernels/linear_avx512.h"
#include "qswap/tensor/convert.h"

#if defined(__x86_64__) || defined(_M_X64)
#define QSWAP_LINEAR_AVX512 1
#endif

namespace qswap {
namespace {

constexpr int64_t kTile = 128;   // fp8-block
constexpr int64_t kMxBlock = 32;  // mxfp8

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

std::string_view kind_name(QuantKind kind) {
  switch (kind) {
    case QuantKind::kNone: return "none";
    case QuantKind::kFp8Tensor: return "fp8";
    case QuantKind::kFp8Channel: return "fp8-channel";
    case QuantKind::kFp8Block: return "fp8-block";
    case QuantKind::kMxfp8: return "mxfp8";
    case QuantKind::kInt8Channel: return "int8-channel";
  }
  return "unknown";
}

struct Expected {
  DType dtype;
  Shape shape;
};

DType code_dtype(QuantKind kind) {
  switch (kind) {
    case QuantKind::kNone: return DType::kBF16;
    case QuantKind::kInt8Channel: return DType::kI8;
    default: return DType::kF8E4M3;
  }
}

// The weight_scale tensor of a [n, k] weight; nullopt for `none`.
std::optional<Expected> scale_layout(QuantKind kind, int64_t n, int64_t k) {
  switch (kind) {
    case QuantKind::kNone: return std::nullopt;
    case QuantKind::kFp8Tensor: return Expected{DType::kF32, {1}};
    case QuantKind::kFp8Channel:
    case QuantKind::kInt8Channel: return Expected{DType::kF32, {n}};
    case QuantKind::kFp8Block: return std::nullopt;  // checked by check_block_scales
    case QuantKind::kMxfp8: return Expected{DType::kF8E8M0, {n, ceil_div(k, kMxBlock)}};
  }
  return std::nullopt;
}

std::string describe(DType dtype, const Shape& shape) {
  return fmt::format("{} {}", dtype_name(dtype), format_shape(shape));
}

Status check_tensor(QuantKind kind, std::string_view what, const TensorView& view, const Expected& expected) {
  if (view.dtype != expected.dtype || view.shape != expected.shape) {
    return invalid_argument("{} linear weight: {} is {}, expected {}", kind_name(kind), what,
                            describe(view.dtype, view.shape), describe(expected.dtype, expected.shape));
  }
  if (view.data == nullptr) {
    return invalid_argument("{} linear weight: {} {} has no data (not allocated)", kind_name(kind), what,
                            describe(view.dtype, view.shape));
  }
  return {};
}

// Row j of W dequantized the reference way: code value × scale, in f32.
void dequant_row(const LinearWeight& w, int64_t j, float* out) {
  const int64_t k = w.k;
  const auto* scales = reinterpret_cast<const float*>(w.scale);
  switch (w.kind) {
    case QuantKind::kNone: {
      const auto* codes = reinterpret_cast<const uint16_t*>(w.weight) + j * k;
      for (int64_t c = 0; c < k; ++c) out[c] = bf16_to_f32(codes[c]);
      return;
    }
    case QuantKind::kInt8Channel: {
      const auto* codes = reinterpret_cast<const int8_t*>(w.weight) + j * k;
      for (int64_t c = 0; c < k; ++c) out[c] = static_cast<float>(codes[c]) * scales[j];
      return;
    }
    default: break;
  }
  const auto* codes = reinterpret_cast<const uint8_t*>(w.weight) + j * k;
  for (int64_t c = 0; c < k; ++c) {
    float s = 1.0f;
    switch (w.kind) {
      case QuantKind::kFp8Tensor: s = scales[0]; break;
      case QuantKind::kFp8Channel: s = scales[j]; break;
      case QuantKind::kFp8Block: s = scales[w.scale_row[j] * ceil_div(k, kTile) + c / kTile]; break;
      case QuantKind::kMxfp8: {
        const auto* e8m0 = reinterpret_cast<const uint8_t*>(w.scale);
        s = e8m0_to_f32(e8m0[j * ceil_div(k, kMxBlock) + c / kMxBlock]);
        break;
      }
      default: break;
    }
    out[c] = e4m3_to_f32(codes[c]) * s;
  }
}

// Output columns [j_begin, j_end) of the reference.
void reference_columns(const LinearWeight& w, const float* x, int64_t m, float* y, const uint16_t* bias,
                       int64_t j_begin, int64_t j_end) {
  std::vector<float> row(static_cast<size_t>(w.k));
  for (int64_t j = j_begin; j < j_end; ++j) {
    dequant_row(w, j, row.data());
    const float b = bias != nullptr ? bf16_to_f32(bias[j]) : 0.0f;
    for (int64_t i = 0; i < m; ++i) {
      const float* xi = x + i * w.k;
      float acc = 0.0f;
      for (int64_t c = 0; c < w.k; ++c) acc += xi[c] * row[static_cast<size_t>(c)];
      y[i * w.n + j] = acc + b;
    }
  }
}

void for_columns(ThreadPool* pool, int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (pool == nullptr || pool->size() == 1) {
    fn(0, n);
  } else {
    pool->parallel_for(n, grain, fn);
  }
}

#ifdef QSWAP_LINEAR_AVX512
kernels::avx512::Weight to_avx512(const LinearWeight& w) {
  using kernels::avx512::Codes;
  using kernels::avx512::Scales;
  kernels::avx512::Weight a{Codes::kE4m3, Scales::kNone, w.n, w.k, w.weight, w.scale, w.scale_row};
  switch (w.kind) {
    case QuantKind::kNone: a.codes = Codes::kBf16; break;
    case QuantKind::kInt8Channel: a.codes = Codes::kI8; a.scales = Scales::kRow; break;
    case QuantKind::kFp8Tensor: a.scales = Scales::kTensor; break;
    case QuantKind::kFp8Channel: a.scales = Scales::kRow; break;
    case QuantKind::kFp8Block: a.scales = Scales::kBlock; break;
    case QuantKind::kMxfp8: a.scales = Scales::kMx; break;
  }
  return a;
}

std::atomic<bool>& vbmi_allowed() {
  static std::atomic<bool> allowed{true};
  return allowed;
}

bool use_vbmi() {
  const CpuFeatures f = cpu_features();
  return f.avx512_vbmi && f.gfni && vbmi_allowed().load(std::memory_order_relaxed);
}

// A thread's own scratch (the pool's threads live as long as the pool), grown as needed: the
// GEMM's weight panel, the GEMV's block-scaled x, and the packed x of a call (the calling
// thread's, read by all).
float* scratch(Buffer& buffer, size_t floats) {
  if (buffer.size() < floats * sizeof(float)) buffer = Buffer::uninitialized(floats * sizeof(float));
  return buffer.as<float>();
}
float* gemm_panel() {
  thread_local Buffer panel;
  return scratch(panel, kernels::avx512::gemm_panel_floats());
}
float* gemv_scratch(const kernels::avx512::Weight& a, int64_t m) {
  const size_t floats = kernels::avx512::gemv_scratch_floats(a, m);
  if (floats == 0) return nullptr;
  thread_local Buffer xs;
  return scratch(xs, floats);
}
float* gemm_packed_x(int64_t m, int64_t k) {
  thread_local Buffer packed;
  return scratch(packed, kernels::avx512::gemm_packed_x_floats(m, k));
}

void linear_avx512(const LinearWeight& w, const float* x, int64_t m, float* y, const uint16_t* bias,
                   ThreadPool* pool) {
  const kernels::avx512::Weight a = to_avx512(w);
  if (m <= kGemvMaxRows) {
    if (a.codes == kernels::avx512::Codes::kE4m3 && use_vbmi()) {
      thread_local Buffer packed;
      float* xq = scratch(packed, kernels::avx512::gemv_e4m3_vbmi_x_floats(m, w.k));
      kernels::avx512::gemv_e4m3_vbmi_pack_x(x, m, w.k, xq);
      for_columns(pool, w.n, 64, [&](int64_t b, int64_t e) {
        kernels::avx512::gemv_e4m3_vbmi(a, xq, m, y, bias, b, e, gemv_scratch(a, m));
      });
    } else {
      for_columns(pool, w.n, 64,
                  [&](int64_t b, int64_t e) { kernels::avx512::gemv(a, x, m, y, bias, b, e, gemv_scratch(a, m)); });
    }
    return;
  }
  // x is packed once (split over row tiles), then shared by every thread's columns.
  float* xp = gemm_packed_x(m, w.k);
  for_columns(pool, kernels::avx512::gemm_row_tiles(m), 1, [&](int64_t b, int64_t e) {
    kernels::avx512::gemm_pack_x(x, m, w.k, b, e, xp);
  });
  const int64_t grain = kernels::avx512::gemm_column_grain();
  for_columns(pool, ceil_div(w.n, grain), 1, [&](int64_t b, int64_t e) {
    kernels::avx512::gemm(a, xp, m, y, bias, b * grain, std::min(w.n, e * grain), gemm_panel());
  });
}
#endif

}  // namespace

namespace {

// fp8-block: tiles are cut per shard of a fused weight (quant/fp8_block.cc), so weight_scale has
// one row per tile row and weight_scale_row maps each output row to its tile row.
Status check_block_scales(int64_t n, int64_t k, std::span<const TensorView> t, LinearWeight& w) {
  const TensorView& scale = t[1];
  if (scale.dtype != DType::kF32 || scale.shape.size() != 2 || scale.shape[0] < ceil_div(n, kTile) ||
      scale.shape[1] != ceil_div(k, kTile) || scale.data == nullptr) {
    return invalid_argument("fp8-block linear weight: weight_scale is {}, expected f32 [>= {}, {}]",
                            describe(scale.dtype, scale.shape), ceil_div(n, kTile), ceil_div(k, kTile));
  }
  QSWAP_RETURN_IF_ERROR(check_tensor(QuantKind::kFp8Block, "weight_scale_row", t[2], Expected{DType::kI32, {n}}));
  w.scale = scale.data;
  w.scale_row = t[2].as<const int32_t>();
  w.scale_tile_rows = scale.shape[0];
  return {};
}

}  // namespace

Result<LinearWeight> make_linear_weight(QuantKind kind, std::span<const TensorView> kernel_tensors) {
  const size_t want = kind == QuantKind::kNone ? 1 : kind == QuantKind::kFp8Block ? 3 : 2;
  if (kernel_tensors.size() != want) {
    return invalid_argument("{} linear weight: got {} kernel tensors, expected {} ({})", kind_name(kind),
                            kernel_tensors.size(), want,
                            want == 1 ? "weight" : want == 2 ? "weight, weight_scale" : "weight, weight_scale, weight_scale_row");
  }
  const TensorView& weight = kernel_tensors[0];
  if (weight.shape.size() != 2 || weight.shape[0] <= 0 || weight.shape[1] <= 0) {
    return invalid_argument("{} linear weight: weight is {}, expected {} [n, k] with n, k >= 1", kind_name(kind),
                            describe(weight.dtype, weight.shape), dtype_name(code_dtype(kind)));
  }
  const int64_t n = weight.shape[0], k = weight.shape[1];
  QSWAP_RETURN_IF_ERROR(check_tensor(kind, "weight", weight, Expected{code_dtype(kind), {n, k}}));
  LinearWeight w{kind, n, k, weight.data, nullptr};
  if (std::optional<Expected> scale = scale_layout(kind, n, k)) {
    QSWAP_RETURN_IF_ERROR(check_tensor(kind, "weight_scale", kernel_tensors[1], *scale));
    w.scale = kernel_tensors[1].data;
  }
  if (kind == QuantKind::kFp8Block) QSWAP_RETURN_IF_ERROR(check_block_scales(n, k, kernel_tensors, w));
  return w;
}

void linear(const LinearWeight& w, const float* x, int64_t m, float* y, const uint16_t* bias, ThreadPool* pool) {
  if (m <= 0 || w.n <= 0) return;
#ifdef QSWAP_LINEAR_AVX512
  if (cpu_features().avx512) {
    linear_avx512(w, x, m, y, bias, pool);
    return;
  }
#endif
  for_columns(pool, w.n, 16, [&](int64_t b, int64_t e) { reference_columns(w, x, m, y, bias, b, e); });
}

void set_linear_vbmi(bool allowed) {
#ifdef QSWAP_LINEAR_AVX512
  vbmi_allowed().store(allowed, std::memory_order_relaxed);
#else
  (void)allowed;
#endif
}

namespace reference {
void linear(const LinearWeight& w, const float* x, int64_t m, float* y, const uint16_t* bias) {
  if (m <= 0) return;
  reference_columns(w, x, m, y, bias, 0, w.n);
}
}  // namespace reference

size_t linear_weight_bytes(const LinearWeight& w) {
  size_t bytes = static_cast<size_t>(w.n * w.k) * dtype_size(code_dtype(w.kind));
  if (std::optional<Expected> scale = scale_layout(w.kind, w.n, w.k)) {
    bytes += static_cast<size_t>(num_elements(scale->shape)) * dtype_size(scale->dtype);
  }
  if (w.kind == QuantKind::kFp8Block) {
    bytes += static_cast<size_t>(w.scale_tile_rows * ceil_div(w.k, kTile)) * sizeof(float) +
             static_cast<size_t>(w.n) * sizeof(int32_t);
  }
  return bytes;
}

}  // namespace qswap
