#include "qswap/engine/inspect.h"

#include <set>

#include "qswap/io/safetensors.h"
#include "qswap/model/weight_map.h"

namespace qswap {

Result<InspectReport> inspect_checkpoint(const std::filesystem::path& dir) {
  InspectReport r;
  r.dir = dir;
  QSWAP_ASSIGN_OR_RETURN(r.config, load_model_config(dir));
  QSWAP_ASSIGN_OR_RETURN(WeightMap map, WeightMap::build(r.config));
  QSWAP_ASSIGN_OR_RETURN(std::unique_ptr<TensorSource> source, open_safetensors_dir(dir));
  r.tensors = source->tensors();
  std::set<std::string_view> present;
  for (const TensorInfo& t : r.tensors) {
    present.insert(t.name);
    r.dtype_bytes[std::string(dtype_name(t.dtype))] += static_cast<int64_t>(t.nbytes);
    const CheckpointTensor* expected = map.find(t.name);
    if (expected == nullptr) {
      (map.classify(t.name) == NameKind::kIgnored ? r.ignored : r.unexpected).push_back(t.name);
      continue;
    }
    r.num_parameters += num_elements(t.shape);
    if (t.shape != expected->shape) {
      r.mismatched.push_back(fmt::format("{}: expected {}, got {}", t.name, format_shape(expected->shape),
                                         format_shape(t.shape)));
    }
  }
  for (const CheckpointTensor& t : map.tensors()) {
    if (t.required && !present.contains(t.name)) r.missing.push_back(t.name);
  }
  return r;
}

}  // namespace qswap
