#include "qswap/io/tensor_source.h"

#include <functional>

namespace qswap {

const TensorInfo* TensorSource::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

Status TensorSource::set_tensors(std::vector<TensorInfo> tensors,
                                 std::map<std::string, std::string> metadata) {
  tensors_ = std::move(tensors);
  metadata_ = std::move(metadata);
  by_name_.clear();
  by_name_.reserve(tensors_.size());
  total_bytes_ = 0;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    auto [it, inserted] = by_name_.emplace(tensors_[i].name, i);
    if (!inserted) {
      const TensorInfo& first = tensors_[it->second];
      return data_loss("{}: tensor '{}' appears twice (in {} and in {})", describe(), first.name,
                       first.location, tensors_[i].location);
    }
    total_bytes_ += tensors_[i].nbytes;
  }
  return {};
}

Result<size_t> TensorSource::index_of(const TensorInfo& t) const {
  // Pointer comparison through std::less: well defined even for unrelated objects.
  std::less<const TensorInfo*> less;
  if (!tensors_.empty() && !less(&t, tensors_.data()) &&
      less(&t, tensors_.data() + tensors_.size())) {
    return static_cast<size_t>(&t - tensors_.data());
  }
  const TensorInfo* found = find(t.name);
  if (found == nullptr) return not_found("{}: no tensor named '{}'", describe(), t.name);
  if (found->dtype != t.dtype || found->shape != t.shape || found->nbytes != t.nbytes) {
    return invalid_argument("{}: tensor '{}' is {} {} here, but the caller's description says {} {}",
                            describe(), t.name, dtype_name(found->dtype), format_shape(found->shape),
                            dtype_name(t.dtype), format_shape(t.shape));
  }
  return static_cast<size_t>(found - tensors_.data());
}

Status TensorSource::check_range(size_t index, size_t offset, size_t size) const {
  const TensorInfo& t = tensors_[index];
  if (offset > t.nbytes || size > t.nbytes - offset) {
    return out_of_range("{}: bytes [{}, {}+{}) are outside tensor '{}' ({} bytes)", describe(), offset,
                        offset, size, t.name, t.nbytes);
  }
  return {};
}

}  // namespace qswap
