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
      RowReader row(src, ctx.reference);
      for (int64_t r = begin; r < end; ++r) {
        row.select(r);
        const float m = row.amax(0, src.cols);
        if (!std::isfinite(m)) return non_finite_error(src, r);
        const float scale = scale_for(m, kE4m3Max);
        scales[src.row0 + r] = scale;
        row.quantize_e4m3(0, src.cols, 1.0f / scale, weight + (src.row0 + r) * src.cols);
      }
      return {};
    });
  }
};

}  // namespace

std::unique_ptr<QuantScheme> make_fp8_channel_scheme() { return std::make_unique<Fp8ChannelScheme>(); }

}  // namespace qswap::quant
