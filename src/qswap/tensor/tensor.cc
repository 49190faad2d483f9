#include "qswap/tensor/tensor.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include <fmt/ranges.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

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
  // Buffers of a huge page or more (kernel tensors, the embedding, staging) start on a huge
  // page and ask for transparent huge pages (the default THP mode, `madvise`, gives none
  // otherwise): a decode step streams every weight byte once, and with 4 KB pages it takes a TLB
  // miss every 4 KB. Only whole 2 MiB pages inside the buffer become huge; nothing is rounded up.
  const size_t alignment = size >= kHugePageBytes ? kHugePageBytes : kAlignment;
  const size_t rounded = (size + kAlignment - 1) / kAlignment * kAlignment;
  void* p = nullptr;
  if (posix_memalign(&p, alignment, rounded) != 0 || p == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (alignment == kHugePageBytes) (void)madvise(p, size, MADV_HUGEPAGE);  // advice only: ignore failures
#endif
  b.data_.reset(static_cast<std::byte*>(p));
  return b;
}

Buffer::Buffer(size_t size) : Buffer(uninitialized(size)) {
  if (size_ != 0) std::memset(data_.get(), 0, size_);
}

void Buffer::Free::operator()(std::byte* p) const { std::free(p); }

}  // namespace qswap
