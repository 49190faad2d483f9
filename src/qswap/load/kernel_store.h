// The kernel tensors of a model: what the forward pass reads. A parameter's tensors are allocated
// when its first shard arrives (before that it is only declared: shapes and dtypes), and never
// again: every later update rewrites the same bytes, so pointers held by kernels stay valid.
#pragma once

#include <span>
#include <vector>

#include "qswap/base/thread_pool.h"
#include "qswap/model/weight_map.h"
#include "qswap/quant/scheme.h"

namespace qswap {

class KernelStore {
 public:
  struct Param {
    std::vector<KernelTensorSpec> specs;
    std::vector<Buffer> buffers;    // empty until allocated
    std::vector<TensorView> views;  // data == nullptr until allocated
    bool allocated() const { return !buffers.empty(); }
  };

  // Declares (does not allocate) the kernel tensors of every parameter of `map` under `scheme`.
  KernelStore(const WeightMap& map, const QuantScheme& scheme);

  void ensure_allocated(int param);
  const Param& param(int index) const { return params_[static_cast<size_t>(index)]; }
  std::span<const TensorView> views(int index) const { return params_[static_cast<size_t>(index)].views; }
  int num_params() const { return static_cast<int>(params_.size()); }

  size_t allocated_bytes() const { return allocated_bytes_; }

  // Copies every tensor of `other` (same declarations, all allocated) into this store's buffers.
  void copy_from(const KernelStore& other, ThreadPool* pool = nullptr);

 private:
  std::vector<Param> params_;
  size_t allocated_bytes_ = 0;
};

}  // namespace qswap
