#include "qswap/quant/scheme.h"

#include <cmath>
#include <cstring>

#include <fmt/ranges.h>

#include "qswap/base/cpu.h"
#include "qswap/quant/row_ops_avx512.h"
#include "qswap/quant/scheme_registry.h"
#include "qswap/tensor/convert.h"

namespace qswap {
namespace {

struct SchemeEntry {
  std::string_view name;
  std::unique_ptr<QuantScheme> (*make)();
};
constexpr SchemeEntry kSchemes[] = {
    {"none", quant::make_none_scheme},
    {"fp8", quant::make_fp8_tensor_scheme},
    {"fp8-channel", quant::make_fp8_channel_scheme},
    {"fp8-block", quant::make_fp8_block_scheme},
    {"mxfp8", quant::make_mxfp8_scheme},
    {"int8-channel", quant::make_int8_channel_scheme},
};

bool bf16_is_finite(uint16_t v) { return (v & 0x7F80u) != 0x7F80u; }

}  // namespace

Result<std::unique_ptr<QuantScheme>> make_quant_scheme(std::string_view name) {
  for (const SchemeEntry& e : kSchemes) {
    if (e.name == name) return e.make();
  }
  return invalid_argument("unknown quantization scheme '{}' (expected one of: {})", name,
                          fmt::join(quant_scheme_names(), ", "));
}

std::vector<std::string_view> quant_scheme_names() {
  std::vector<std::string_view> names;
  for (const SchemeEntry& e : kSchemes) names.push_back(e.name);
  return names;
}

std::vector<KernelTensorSpec> passthrough_kernel_tensors(const Shape& shape) {
  return {{"weight", DType::kBF16, shape}};
}

Status copy_to_bf16(DType src_dtype, const std::byte* src, uint16_t* dst, int64_t n, bool reference) {
  const size_t count = static_cast<size_t>(n);
  switch (src_dtype) {
    case DType::kBF16:
      // One pass: the check reads the source in registers, and the copy streams past the cache.
      if (!reference && cpu_features().avx512) {
        if (quant::avx512::copy_bf16_finite(reinterpret_cast<const uint16_t*>(src), dst, n)) return {};
        break;  // the scan below names the element
      }
      std::memcpy(dst, src, count * sizeof(uint16_t));
      break;
    case DType::kF16: {
      const auto* in = reinterpret_cast<const uint16_t*>(src);
      for (size_t i = 0; i < count; ++i) dst[i] = f32_to_bf16(f16_to_f32(in[i]));
      break;
    }
    case DType::kF32: {
      const auto* in = reinterpret_cast<const float*>(src);
      if (reference) {
        for (size_t i = 0; i < count; ++i) dst[i] = f32_to_bf16(in[i]);
      } else {
        f32_to_bf16(in, dst, count);
      }
      break;
    }
    default:
      return invalid_argument("source dtype {} cannot be converted to bf16", dtype_name(src_dtype));
  }
  // A separate pass keeps the copy a plain memcpy; callers pass a row, which is still in cache.
  // No early exit: a branch-free reduction vectorizes; the index is searched only on failure.
  uint32_t non_finite = 0;
  for (size_t i = 0; i < count; ++i) non_finite |= bf16_is_finite(dst[i]) ? 0u : 1u;
  if (non_finite == 0) return {};
  for (size_t i = 0; i < count; ++i) {
    if (!bf16_is_finite(dst[i])) return data_loss("element {} is NaN or Inf", i);
  }
  return internal_error("non-finite element vanished");
}

}  // namespace qswap
