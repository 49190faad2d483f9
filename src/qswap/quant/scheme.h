// Quantization schemes: how a linear layer's full-precision weight [N out, K in] becomes its
// kernel tensors. Every FP8 scheme is e4m3 data under a different scale layout (DESIGN.md,
// "Numerics"); int8-channel is the one integer layout; `none` keeps bf16.
//
// A scheme quantizes *row groups*: the rows that share scales. Groups never cross the checkpoint
// tensors (shards) of a fused parameter — a 128x128 tile of q_proj holds no row of k_proj — so every
// arriving tensor is quantized at once, straight into its rows of the kernel tensors. The one
// exception is per-tensor FP8, whose single scale spans the whole fused parameter: only it needs
// the loader to stage.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qswap/base/status.h"
#include "qswap/base/thread_pool.h"
#include "qswap/tensor/tensor.h"

namespace qswap {

enum class QuantKind { kNone, kFp8Tensor, kFp8Channel, kFp8Block, kMxfp8, kInt8Channel };

// A kernel tensor's declaration: known before any weight data exists, so it can be allocated once.
struct KernelTensorSpec {
  std::string suffix;  // "weight", "weight_scale"
  DType dtype;
  Shape shape;
};

// Rows [row0, row0 + rows) of a parameter in the checkpoint's dtype (bf16, f16 or f32), row-major
// with `cols` elements per row. They start a row group; `group0` is that group's index, with the
// groups of a fused parameter numbered shard after shard.
//
// Rows [patch_row0, patch_row0 + patch_rows) (relative to row0) may lie elsewhere, at `patch`:
// the loader stages a per-tensor FP8 parameter's shards but reads the last one in place.
struct SourceRows {
  DType dtype;
  const std::byte* data;
  int64_t row0;
  int64_t rows;
  int64_t cols;
  int64_t group0 = 0;
  const std::byte* patch = nullptr;
  int64_t patch_row0 = 0;
  int64_t patch_rows = 0;
  // Max |x| over the rows outside the patch when the loader measured it while staging them (>= 0),
  // negative when unknown: per-tensor FP8 then has only the patch to read before its scale is known.
  float staged_amax = -1.0f;

  // Row r, relative to row0.
  const std::byte* row(int64_t r) const {
    const size_t row_bytes = static_cast<size_t>(cols) * dtype_size(dtype);
    if (r >= patch_row0 && r - patch_row0 < patch_rows) return patch + static_cast<size_t>(r - patch_row0) * row_bytes;
    return data + static_cast<size_t>(r) * row_bytes;
  }
  // Whether rows [r0, r1) are contiguous from row(r0) on.
  bool contiguous(int64_t r0, int64_t r1) const {
    return patch_rows == 0 || r1 <= patch_row0 || r0 >= patch_row0 + patch_rows ||
           (r0 >= patch_row0 && r1 <= patch_row0 + patch_rows);
  }
};

struct QuantContext {
  bool reference = false;       // scalar per-element path (the fast path must equal it bit for bit)
  ThreadPool* pool = nullptr;   // split rows across threads when set
};

class QuantScheme {
 public:
  virtual ~QuantScheme() = default;

  virtual QuantKind kind() const = 0;
  virtual std::string_view name() const = 0;  // "fp8-block"
  // Rows of a shard that share scales: 1 or a tile height.
  virtual int64_t row_group() const { return 1; }
  // True when one scale covers the whole fused parameter (per-tensor FP8): then the loader stages.
  virtual bool scale_spans_shards() const { return false; }
  // Declarations for a [sum(shard_rows), k] parameter made of shards of those row counts.
  virtual std::vector<KernelTensorSpec> kernel_tensors(std::span<const int64_t> shard_rows, int64_t k) const = 0;
  // Quantizes whole row groups [src.row0, src.row0 + src.rows) into `out` (the tensors
  // kernel_tensors() declared, in order). Returns data_loss naming a non-finite row.
  virtual Status quantize(const SourceRows& src, std::span<const TensorView> out, const QuantContext& ctx) const = 0;
};

Result<std::unique_ptr<QuantScheme>> make_quant_scheme(std::string_view name);
std::vector<std::string_view> quant_scheme_names();

// Declarations of a non-linear parameter (norms, biases, embeddings), kept in bf16 by every scheme.
std::vector<KernelTensorSpec> passthrough_kernel_tensors(const Shape& shape);
// Converts `n` elements of `src_dtype` to bf16 (RNE), failing on NaN/Inf with the element index.
Status copy_to_bf16(DType src_dtype, const std::byte* src, uint16_t* dst, int64_t n, bool reference);

}  // namespace qswap
