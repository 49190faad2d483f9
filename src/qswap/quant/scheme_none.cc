// `none`: linear weights stay bf16; f16/f32 sources are rounded to bf16 (RNE).
#include "qswap/quant/row_ops.h"
#include "qswap/quant/scheme_registry.h"

namespace qswap::quant {
namespace {

class NoneScheme final : public QuantScheme {
 public:
  QuantKind kind() const override { return QuantKind::kNone; }
  std::string_view name() const override { return "none"; }
  std::vector<KernelTensorSpec> kernel_tensors(std::span<const int64_t> shard_rows, int64_t k) const override {
    return {{"weight", DType::kBF16, {total_rows(shard_rows), k}}};
  }
  Status quantize(const SourceRows& src, std::span<const TensorView> out, const QuantContext& ctx) const override {
    auto* weight = out[0].as<uint16_t>();
    return for_each_row_block(ctx, src.rows, 64, [&](int64_t begin, int64_t end) -> Status {
      // The rows of a block at once (one pass, one fence); row by row only to name a bad row.
      if (src.contiguous(begin, end) &&
          copy_to_bf16(src.dtype, src.row(begin), weight + (src.row0 + begin) * src.cols, (end - begin) * src.cols,
                       ctx.reference).ok()) {
        return {};
      }
      for (int64_t r = begin; r < end; ++r) {
        if (!copy_to_bf16(src.dtype, src.row(r), weight + (src.row0 + r) * src.cols, src.cols, ctx.reference).ok()) {
          return non_finite_error(src, r);
        }
      }
      return {};
    });
  }
};

}  // namespace

std::unique_ptr<QuantScheme> make_none_scheme() { return std::make_unique<NoneScheme>(); }

}  // namespace qswap::quant
