// Rotary position embeddings as Hugging Face computes them (rotate_half convention), including
// the llama3 and linear frequency scalings. Frequencies are f32, like the reference.
#pragma once

#include <vector>

#include "qswap/io/model_config.h"

namespace qswap {

class Rope {
 public:
  explicit Rope(const ModelConfig& config);
  // Rotates `heads` vectors of head_dim (consecutive in x) for position `pos`, in place.
  void apply(float* x, int64_t heads, int64_t pos) const;

 private:
  int64_t head_dim_;
  std::vector<float> inv_freq_;  // [head_dim / 2]
};

}  // namespace qswap
