// LayerwiseLoader: takes checkpoint tensors in any order and quantizes them into kernel tensors
// as soon as the math allows (DESIGN.md, "The flow of a weight"). Loading and reloading are this
// one path; only the target store differs (live in-place, or a shadow for transactions).
//
// A scheme's scales are local to a checkpoint tensor (per row, per tile, per MX block), so each
// arriving tensor is quantized at once, straight from its bytes into its rows of the kernel tensors
// — whatever the arrival order, nothing is staged. Only per-tensor FP8 of a fused parameter (one
// scale over q|k|v) must see every shard first: those are copied into staging until the last one
// arrives, then quantized and freed. Each checkpoint tensor is accepted once: a repeat is an
// error, never counted twice.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qswap/load/kernel_store.h"
#include "qswap/quant/row_ops.h"

namespace qswap {

struct LoaderOptions {
  bool allow_unknown = false;  // unknown tensor names: warn and skip instead of failing
  QuantContext quant;          // reference path / thread pool
};

struct LoadStats {
  int64_t tensors = 0;
  int64_t bytes_in = 0;
  int units_completed = 0;
  size_t staging_bytes = 0;       // now
  size_t peak_staging_bytes = 0;
  int max_units_staging = 0;      // units holding staging at the same time (1 in layer order)
  std::vector<std::string> warnings;
};

// One checkpoint tensor as it arrives; `data` must stay valid only during add().
struct IncomingTensor {
  std::string_view name;
  DType dtype;
  std::span<const int64_t> shape;
  std::span<const std::byte> data;
};

class LayerwiseLoader {
 public:
  using UnitDone = std::function<void(int unit)>;

  LayerwiseLoader(const WeightMap& map, const QuantScheme& scheme, KernelStore& target, LoaderOptions options);

  Status add(const IncomingTensor& tensor);
  // Fails, naming every required tensor that never arrived. Safe to call once.
  Status finalize();

  const LoadStats& stats() const { return stats_; }
  void on_unit_done(UnitDone callback) { unit_done_ = std::move(callback); }

 private:
  struct Staging {
    Buffer buffer;
    int64_t rows_present = 0;
  };
  struct ParamState {
    DType dtype = DType::kBF16;       // dtype of the first shard; staging mixes no dtypes
    bool any_shard = false;
    Staging staging;                  // per-tensor FP8 of a fused parameter only
  };

  Status add_linear(const CheckpointTensor& t, const IncomingTensor& in);
  Status add_passthrough(const CheckpointTensor& t, const IncomingTensor& in);
  Status quantize_rows(int param, DType dtype, const std::byte* data, int64_t row0, int64_t rows, int64_t group0);
  void finish_tensor(const CheckpointTensor& t);
  void update_staging_stats(std::ptrdiff_t delta, int unit);
  Buffer take_staging(size_t bytes);
  std::string tensors_in_rows(int param, int64_t row0, int64_t row1) const;

  const WeightMap& map_;
  const QuantScheme& scheme_;
  KernelStore& target_;
  LoaderOptions options_;
  std::vector<uint8_t> seen_;           // by checkpoint tensor index
  std::vector<ParamState> params_;
  std::vector<Buffer> spare_staging_;   // freed staging, reused by the next fused parameter
  std::vector<int> unit_missing_;       // tensors not yet arrived, by unit
  std::vector<int> unit_staging_groups_;
  int units_staging_ = 0;
  bool warned_out_of_order_ = false;
  LoadStats stats_;
  UnitDone unit_done_;
};

}  // namespace qswap
