#include "qswap/load/kernel_store.h"

#include <algorithm>
#include <cstring>

#include "qswap/base/cpu.h"
#include "qswap/quant/row_ops_avx512.h"

namespace qswap {

KernelStore::KernelStore(const WeightMap& map, const QuantScheme& scheme) {
  params_.reserve(map.params().size());
  for (const ParamSpec& p : map.params()) {
    Param param;
    param.specs = p.is_linear ? scheme.kernel_tensors(p.shard_rows, p.shape[1]) : passthrough_kernel_tensors(p.shape);
    for (const KernelTensorSpec& spec : param.specs) param.views.push_back(TensorView{spec.dtype, spec.shape, nullptr});
    params_.push_back(std::move(param));
  }
}

void KernelStore::ensure_allocated(int index) {
  Param& p = params_[static_cast<size_t>(index)];
  if (p.allocated()) return;
  for (size_t i = 0; i < p.specs.size(); ++i) {
    p.buffers.emplace_back(p.views[i].nbytes());
    p.views[i].data = p.buffers.back().data();
    allocated_bytes_ += p.buffers.back().size();
  }
}

void KernelStore::copy_from(const KernelStore& other, ThreadPool* pool) {
  for (int i = 0; i < num_params(); ++i) ensure_allocated(i);
  // In 1 MB pieces, so two threads share even a model of one huge embedding.
  constexpr size_t kPiece = 1 << 20;
  struct Piece {
    std::byte* dst;
    const std::byte* src;
    size_t size;
  };
  std::vector<Piece> pieces;
  for (size_t i = 0; i < params_.size(); ++i) {
    for (size_t t = 0; t < params_[i].buffers.size(); ++t) {
      const size_t size = params_[i].buffers[t].size();
      for (size_t off = 0; off < size; off += kPiece) {
        pieces.push_back({params_[i].buffers[t].data() + off, other.params_[i].buffers[t].data() + off,
                          std::min(kPiece, size - off)});
      }
    }
  }
  // Streamed on AVX-512: the live tensors are written once per commit and not read by this thread.
  const bool streaming = cpu_features().avx512;
  auto copy = [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const Piece& piece = pieces[static_cast<size_t>(p)];
      if (streaming) {
        quant::avx512::copy_streaming(piece.src, piece.dst, static_cast<int64_t>(piece.size));
      } else {
        std::memcpy(piece.dst, piece.src, piece.size);
      }
    }
  };
  if (pool != nullptr) {
    pool->parallel_for(static_cast<int64_t>(pieces.size()), 4, copy);
  } else {
    copy(0, static_cast<int64_t>(pieces.size()));
  }
}

}  // namespace qswap
