// `fp8`: one f32 scale for the whole (fused) parameter, scale = amax / 448. Its row group is the
// whole parameter, so it is the one scheme for which the loader must stage a fused parameter.
#include <algorithm>
#include <mutex>

#include "qswap/quant/row_ops.h"
#include "qswap/quant/scheme_registry.h"

namespace qswap::quant {
namespace {

class Fp8TensorScheme final : public QuantScheme {
 public:
  QuantKind kind() const override { return QuantKind::kFp8Tensor; }
  std::string_view name() const override { return "fp8"; }
  bool scale_spans_shards() const override { return true; }
  std::vector<KernelTensorSpec> kernel_tensors(std::span<const int64_t> shard_rows, int64_t k) const override {
    return {{"weight", DType::kF8E4M3, {total_rows(shard_rows), k}}, {"weight_scale", DType::kF32, {1}}};
  }

  Status quantize(const SourceRows& src, std::span<const TensorView> out, const QuantContext& ctx) const override {
    // Pass 1: amax over every row (over the patch only when the staged rows' is known). max() is
    // order-independent, so threads cannot change it.
    const bool staged_known = src.staged_amax >= 0.0f;
    const int64_t first = staged_known ? src.patch_row0 : 0;
    const int64_t count = staged_known ? src.patch_rows : src.rows;
    std::mutex mutex;
    float total = staged_known ? src.staged_amax : 0.0f;
    QSWAP_RETURN_IF_ERROR(for_each_row_block(ctx, count, 16, [&](int64_t begin, int64_t end) -> Status {
      RowReader row(src, ctx.reference);
      float local = 0.0f;
      for (int64_t r = first + begin; r < first + end; ++r) {
        row.select(r);
        const float m = row.amax(0, src.cols, /*streaming=*/true);
        if (!std::isfinite(m)) return non_finite_error(src, r);
        local = std::max(local, m);
      }
      std::lock_guard<std::mutex> lock(mutex);
      total = std::max(total, local);
      return {};
    }));
    const float scale = scale_for(total, kE4m3Max);
    const float inv_scale = 1.0f / scale;
    *out[1].as<float>() = scale;
    auto* weight = out[0].as<uint8_t>();
    // Pass 2: quantize.
    return for_each_row_block(ctx, src.rows, 16, [&](int64_t begin, int64_t end) -> Status {
      RowReader row(src, ctx.reference);
      for (int64_t r = begin; r < end; ++r) {
        row.select(r);
        row.quantize_e4m3(0, src.cols, inv_scale, weight + (src.row0 + r) * src.cols);
      }
      return {};
    });
  }
};

}  // namespace

std::unique_ptr<QuantScheme> make_fp8_tensor_scheme() { return std::make_unique<Fp8TensorScheme>(); }

}  // namespace qswap::quant
