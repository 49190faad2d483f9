#include "qswap/tensor/tensor.h"

#include <cstdlib>

#include <fmt/ranges.h>
#include <cstring>
#include <new>

namespace qswap {

std::optional<int64_t> checked_num_elements(std::span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return std::nullopt;
    if (__builtin_mul_overflow(n, d, &n)) return std::nullopt;
  }
  return n;
}

int64_t num_elements(std::span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string format_shape(std::span<const int64_t> shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

Buffer Buffer::uninitialized(size_t size) {
  Buffer b;
  b.size_ = size;
  if (size == 0) return b;
  size_t rounded = (size + kAlignment - 1) / kAlignment * kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (p == nullptr) throw std::bad_alloc();
  b.data_.reset(static_cast<std::byte*>(p));
  return b;
}

Buffer::Buffer(size_t size) : Buffer(uninitialized(size)) {
  if (size_ != 0) std::memset(data_.get(), 0, size_);
}

void Buffer::Free::operator()(std::byte* p) const { std::free(p); }

}  // namespace qswap
