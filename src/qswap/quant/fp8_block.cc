// `fp8-block`: one f32 scale per 128x128 tile, amax clamped to >= 1e-4 as the reference engine
// does. Tiles are cut per checkpoint tensor (shard): q_proj's last tile never holds k_proj rows, so
// each shard quantizes on arrival. Edge tiles cover only the rows/columns that exist (the same as
// padding them with zeros).
//
// Kernel tensors: weight e4m3 [n, k]; weight_scale f32 [tile rows, ceil(k/128)], tile rows counted
// shard after shard; weight_scale_row i32 [n], the tile row of each output row, so a kernel needs
// no knowledge of the shards.
#include <algorithm>
#include <cmath>
#include <vector>

#include "qswap/quant/row_ops.h"
#include "qswap/quant/scheme_registry.h"

namespace qswap::quant {
namespace {

constexpr int64_t kTile = RowReader::kTile;
constexpr float kMinAmax = 1e-4f;

int64_t tiles(int64_t x) { return (x + kTile - 1) / kTile; }

// The error for a tile row [r0, r1) known to hold a NaN or Inf: names its first such row.
Status first_non_finite_row(const SourceRows& src, RowReader& row, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    row.select(r);
    if (!std::isfinite(row.amax(0, src.cols))) return non_finite_error(src, r);
  }
  return internal_error("rows {}..{}: a non-finite value vanished", src.row0 + r0, src.row0 + r1);
}

class Fp8BlockScheme final : public QuantScheme {
 public:
  QuantKind kind() const override { return QuantKind::kFp8Block; }
  std::string_view name() const override { return "fp8-block"; }
  int64_t row_group() const override { return kTile; }
  std::vector<KernelTensorSpec> kernel_tensors(std::span<const int64_t> shard_rows, int64_t k) const override {
    int64_t tile_rows = 0;
    for (int64_t rows : shard_rows) tile_rows += tiles(rows);
    const int64_t n = total_rows(shard_rows);
    return {{"weight", DType::kF8E4M3, {n, k}},
            {"weight_scale", DType::kF32, {tile_rows, tiles(k)}},
            {"weight_scale_row", DType::kI32, {n}}};
  }

  Status quantize(const SourceRows& src, std::span<const TensorView> out, const QuantContext& ctx) const override {
    auto* weight = out[0].as<uint8_t>();
    auto* scales = out[1].as<float>();
    auto* scale_row = out[2].as<int32_t>();
    const int64_t col_tiles = tiles(src.cols);
    return for_each_row_block(ctx, tiles(src.rows), 1, [&](int64_t g_begin, int64_t g_end) -> Status {
      RowReader row(src, ctx.reference);
      std::vector<float> tile_amax(static_cast<size_t>(col_tiles)), inv_scales(static_cast<size_t>(col_tiles));
      for (int64_t g = g_begin; g < g_end; ++g) {
        const int64_t r0 = g * kTile, r1 = std::min(src.rows, r0 + kTile);
        row.tile_amax(r0, r1, tile_amax.data());
        for (float m : tile_amax) {
          if (!std::isfinite(m)) return first_non_finite_row(src, row, r0, r1);
        }
        const int64_t tile_row = src.group0 + g;
        float* tile_scales = scales + tile_row * col_tiles;
        for (int64_t t = 0; t < col_tiles; ++t) {
          tile_scales[t] = std::max(tile_amax[static_cast<size_t>(t)], kMinAmax) / kE4m3Max;
          inv_scales[static_cast<size_t>(t)] = 1.0f / tile_scales[t];
        }
        for (int64_t r = r0; r < r1; ++r) {
          row.select(r);
          row.quantize_e4m3_tiles(inv_scales.data(), weight + (src.row0 + r) * src.cols);
          scale_row[src.row0 + r] = static_cast<int32_t>(tile_row);
        }
      }
      return {};
    });
  }
};

}  // namespace

std::unique_ptr<QuantScheme> make_fp8_block_scheme() { return std::make_unique<Fp8BlockScheme>(); }

}  // namespace qswap::quant
