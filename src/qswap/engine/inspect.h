// `qswap inspect`: what a checkpoint directory holds, checked against what its architecture needs.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "qswap/io/model_config.h"
#include "qswap/io/tensor_source.h"

namespace qswap {

struct InspectReport {
  std::filesystem::path dir;
  ModelConfig config;
  std::vector<TensorInfo> tensors;           // as stored, with their shard
  int64_t num_parameters = 0;                // elements of the weights the architecture uses
  std::map<std::string, int64_t> dtype_bytes;  // per dtype name
  std::vector<std::string> missing;          // required by the architecture, absent
  std::vector<std::string> unexpected;       // present, unknown to the architecture
  std::vector<std::string> ignored;          // present, known and not needed (tied lm_head, inv_freq)
  std::vector<std::string> mismatched;       // present with the wrong shape: "name: expected [..], got [..]"
};

Result<InspectReport> inspect_checkpoint(const std::filesystem::path& dir);

}  // namespace qswap
