// Shapes, non-owning tensor views and owning aligned buffers.
// A view never owns memory: a reload rewrites the bytes behind it, and every view a kernel
// holds stays valid (DESIGN.md, "Addresses are stable").
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "qswap/base/status.h"
#include "qswap/tensor/dtype.h"

namespace qswap {

using Shape = std::vector<int64_t>;

// Product of dims; nullopt if a dim is negative or the product overflows int64.
std::optional<int64_t> checked_num_elements(std::span<const int64_t> shape);
int64_t num_elements(std::span<const int64_t> shape);  // requires a valid shape
std::string format_shape(std::span<const int64_t> shape);  // "[896, 128]"

struct TensorView {
  DType dtype = DType::kF32;
  Shape shape;
  std::byte* data = nullptr;

  int64_t numel() const { return num_elements(shape); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  std::span<std::byte> bytes() const { return {data, nbytes()}; }
  template <typename T>
  T* as() const { return reinterpret_cast<T*>(data); }
};

// Owning, 64-byte aligned (one cache line, one ZMM register), zero-initialised storage.
class Buffer {
 public:
  static constexpr size_t kAlignment = 64;
  static constexpr size_t kHugePageBytes = size_t{2} << 20;

  Buffer() = default;
  explicit Buffer(size_t size);  // zero-filled
  // Contents undefined: for buffers that are overwritten before they are read (staging).
  static Buffer uninitialized(size_t size);
  Buffer(Buffer&& other) noexcept : data_(std::move(other.data_)), size_(std::exchange(other.size_, 0)) {}
  Buffer& operator=(Buffer&& other) noexcept {
    data_ = std::move(other.data_);
    size_ = std::exchange(other.size_, 0);
    return *this;
  }

  std::byte* data() { return data_.get(); }
  const std::byte* data() const { return data_.get(); }
  size_t size() const { return size_; }
  std::span<std::byte> bytes() { return {data_.get(), size_}; }
  std::span<const std::byte> bytes() const { return {data_.get(), size_}; }
  template <typename T>
  T* as() { return reinterpret_cast<T*>(data_.get()); }
  template <typename T>
  const T* as() const { return reinterpret_cast<const T*>(data_.get()); }

 private:
  struct Free {
    void operator()(std::byte* p) const;
  };
  std::unique_ptr<std::byte, Free> data_;
  size_t size_ = 0;
};

}  // namespace qswap
