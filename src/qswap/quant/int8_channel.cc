// `int8-channel`: symmetric int8 with one f32 scale per output row, scale = amax(row) / 127,
// q = clamp(round_half_even(x / scale), -127, 127) computed as x * (1 / scale).
#include "qswap/quant/row_ops.h"
#include "qswap/quant/scheme_registry.h"

namespace qswap::quant {
namespace {

class Int8ChannelScheme final : public QuantScheme {
 public:
  QuantKind kind() const override { return QuantKind::kInt8Channel; }
  std::string_view name() const override { return "int8-channel"; }
  std::vector<KernelTensorSpec> kernel_tensors(std::span<const int64_t> shard_rows, int64_t k) const override {
    const int64_t n = total_rows(shard_rows);
    return {{"weight", DType::kI8, {n, k}}, {"weight_scale", DType::kF32, {n}}};
  }

  Status quantize(const SourceRows& src, std::span<const TensorView> out, const QuantContext& ctx) const override {
    auto* weight = out[0].as<int8_t>();
    auto* scales = out[1].as<float>();
    return for_each_row_block(ctx, src.rows, 16, [&](int64_t begin, int64_t end) -> Status {
      RowReader row(src, ctx.reference);
      for (int64_t r = begin; r < end; ++r) {
        row.select(r);
        const float m = row.amax(0, src.cols);
        if (!std::isfinite(m)) return non_finite_error(src, r);
        const float scale = scale_for(m, 127.0f);
        scales[src.row0 + r] = scale;
        row.quantize_i8(1.0f / scale, weight + (src.row0 + r) * src.cols);
      }
      return {};
    });
  }
};

}  // namespace

std::unique_ptr<QuantScheme> make_int8_channel_scheme() { return std::make_unique<Int8ChannelScheme>(); }

}  // namespace qswap::quant
