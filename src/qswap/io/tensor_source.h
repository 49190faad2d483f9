// TensorSource: where named tensors come from (safetensors files, in-memory buffers, a trainer's
// stream). Downstream code (WeightMap, LayerwiseLoader) sees only this interface.
#pragma once

#include <cstddef>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "qswap/base/status.h"
#include "qswap/tensor/dtype.h"
#include "qswap/tensor/tensor.h"

namespace qswap {

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  size_t nbytes = 0;     // num_elements(shape) * dtype_size(dtype)
  std::string location;  // where the bytes live (a shard's file name), for errors and `inspect`
};

// A read-only listing of named tensors plus access to their bytes. All const member functions are
// safe to call concurrently. The listing is fixed when the source is built: tensors() never
// changes afterwards and the pointers find() returns stay valid for the source's lifetime.
class TensorSource {
 public:
  virtual ~TensorSource() = default;
  TensorSource(const TensorSource&) = delete;
  TensorSource& operator=(const TensorSource&) = delete;

  // Every tensor, in storage order (for safetensors: shard by shard, by data offset).
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // nullptr if there is no tensor of that name.
  const TensorInfo* find(std::string_view name) const;
  // String metadata (safetensors `__metadata__`, the index's `metadata`).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Sum of nbytes over tensors().
  size_t total_bytes() const { return total_bytes_; }

  // Copies bytes [offset, offset + out.size()) of `t` into `out`. `t` is an element of tensors()
  // or a copy of one (looked up by name; dtype and shape must match). Out-of-range is an error.
  virtual Status read(const TensorInfo& t, size_t offset, std::span<std::byte> out) const = 0;
  // A zero-copy view of all of `t`'s bytes, valid while the source lives. Sources that cannot
  // lend memory return kUnimplemented; callers then fall back to read().
  virtual Result<std::span<const std::byte>> borrow(const TensorInfo& t) const = 0;
  // Human-readable origin, e.g. the file or directory path.
  virtual std::string describe() const = 0;

 protected:
  TensorSource() = default;

  // Installs the listing and metadata (once, from the constructor or factory of a subclass).
  // Fails on a repeated tensor name, naming both locations.
  Status set_tensors(std::vector<TensorInfo> tensors, std::map<std::string, std::string> metadata);
  // Position of `t` in tensors(): `t` itself, or the tensor of the same name, if dtype, shape and
  // nbytes agree.
  Result<size_t> index_of(const TensorInfo& t) const;
  // Checks that [offset, offset + size) lies within tensors()[index].
  Status check_range(size_t index, size_t offset, size_t size) const;

 private:
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string_view, size_t> by_name_;  // views into tensors_[i].name
  std::map<std::string, std::string> metadata_;
  size_t total_bytes_ = 0;
};

}  // namespace qswap
