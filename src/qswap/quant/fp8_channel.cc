// `fp8-channel`: one f32 scale per output row, scale = amax(row) / 448.
#include "qswap/quant/row_ops.h"
#include "qswap/quant/scheme_registry.h"

namespace qswap::quant {
namespace {

class Fp8ChannelScheme final : public QuantScheme {
 public:
  QuantKind kind() const override { return QuantKind::kFp8Channel; }
  std::string_view name() const override { return "fp8-channel"; }
  std::vector<KernelTensorSpec> kernel_tensors(std::span<const int64_t> shard_rows, int64_t k) const override {
    const int64_t n = total_rows(shard_rows);
    return {{"weight", DType::kF8E4M3, {n, k}}, {"weight_scale", DType::kF32, {n}}};
  }

  Status quantize(const SourceRows& src, std::span<const TensorView> out, const QuantContext& ctx) const override {
    auto* weight = out[0].as<uint8_t>();
    auto* scales = out[1].as<float>();
    return for_each_row_block(ctx, src.rows, 16, [&](int64_t begin, int64_t end) -> Status {
      float* row = scratch_row(src.cols);
      for (int64_t r = begin; r < end; ++r) {
        load_row_f32(src, r, row, ctx.reference);
        float m = amax(row, src.cols, ctx.reference);
        if (!std::isfinite(m)) return non_finite_error(src, r);
        const float scale = scale_for(m, kE4m3Max);
        scales[src.row0 + r] = scale;
        quantize_e4m3(row, 1.0f / scale, weight + (src.row0 + r) * src.cols, src.cols, ctx.reference);
      }
      return {};
    });
  }
};

}  // namespace

std::unique_ptr<QuantScheme> make_fp8_channel_scheme() { return std::make_unique<Fp8ChannelScheme>(); }

}  // namespace qswap::quant
