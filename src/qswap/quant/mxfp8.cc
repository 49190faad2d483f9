// `mxfp8` (OCP MX v1.0): e4m3 elements with one E8M0 scale per 32 consecutive elements along K.
// Shared exponent e = floor(log2(amax)) - 8 (8 = emax of e4m3), clamped to [-127, 127]; an all-zero
// block gets e = 0. Elements are x * 2^-e, saturated to ±448: multiplying by a power of two is
// exact, so this equals dividing by the scale.
#include <algorithm>
#include <cmath>

#include "qswap/quant/row_ops.h"
#include "qswap/quant/row_ops_avx512.h"
#include "qswap/quant/scheme_registry.h"

namespace qswap::quant {
namespace {

constexpr int64_t kBlock = 32;
constexpr int kE4m3Emax = 8;

int64_t blocks(int64_t k) { return (k + kBlock - 1) / kBlock; }

// floor(log2(amax)) - emax, read off the float's exponent (log2() may round up near powers of 2).
int shared_exponent(float amax_value) {
  if (amax_value == 0.0f) return 0;
  int exp = 0;
  std::frexp(amax_value, &exp);  // amax = m * 2^exp, m in [0.5, 1)
  return std::clamp(exp - 1 - kE4m3Emax, -127, 127);
}

class Mxfp8Scheme final : public QuantScheme {
 public:
  QuantKind kind() const override { return QuantKind::kMxfp8; }
  std::string_view name() const override { return "mxfp8"; }
  std::vector<KernelTensorSpec> kernel_tensors(std::span<const int64_t> shard_rows, int64_t k) const override {
    const int64_t n = total_rows(shard_rows);
    return {{"weight", DType::kF8E4M3, {n, k}}, {"weight_scale", DType::kF8E8M0, {n, blocks(k)}}};
  }

  Status quantize(const SourceRows& src, std::span<const TensorView> out, const QuantContext& ctx) const override {
    auto* weight = out[0].as<uint8_t>();
    auto* scales = out[1].as<uint8_t>();
    const int64_t nb = blocks(src.cols);
    return for_each_row_block(ctx, src.rows, 16, [&](int64_t begin, int64_t end) -> Status {
      RowReader row(src, ctx.reference);
      for (int64_t r = begin; r < end; ++r) {
        uint8_t* dst = weight + (src.row0 + r) * src.cols;
        uint8_t* row_scales = scales + (src.row0 + r) * nb;
        row.select(r);
        if (const uint16_t* in = row.avx512_bf16()) {
          if (!avx512::bf16_to_mxfp8(in, src.cols, dst, row_scales)) return non_finite_error(src, r);
          continue;
        }
        for (int64_t b = 0; b < nb; ++b) {
          const int64_t c0 = b * kBlock, width = std::min(kBlock, src.cols - c0);
          const float m = row.amax(c0, width);
          if (!std::isfinite(m)) return non_finite_error(src, r);
          const int e = shared_exponent(m);
          row_scales[b] = static_cast<uint8_t>(e + 127);
          row.quantize_e4m3(c0, width, std::ldexp(1.0f, -e), dst + c0);
        }
      }
      return {};
    });
  }
};

}  // namespace

std::unique_ptr<QuantScheme> make_mxfp8_scheme() { return std::make_unique<Mxfp8Scheme>(); }

}  // namespace qswap::quant
