// In-memory checkpoints for loader tests: every tensor of a WeightMap, random bf16 values of
// realistic scale, reproducible from a seed.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "qswap/engine/engine.h"
#include "qswap/tensor/convert.h"

namespace qswap::testing {

struct CheckpointTensorData {
  std::string name;
  DType dtype;
  Shape shape;
  std::vector<std::byte> bytes;
};

inline ModelConfig tiny_config(Arch arch) {
  ModelConfig c;
  c.arch = arch;
  // Odd dimensions on purpose: shards are not multiples of 128 rows (partial tiles at every shard
  // edge), K is not a multiple of 32 (partial MX blocks) and down_proj has a partial column tile.
  c.hidden_size = 72;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 16;
  c.intermediate_size = 200;
  c.vocab_size = 50;
  c.tie_word_embeddings = arch != Arch::kLlama;
  c.attention_bias = arch == Arch::kLlama;  // Llama with biases on q/k/v/o
  return c;
}

inline std::vector<CheckpointTensorData> make_checkpoint(const WeightMap& map, uint64_t seed,
                                                         DType dtype = DType::kBF16) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<CheckpointTensorData> out;
  for (const CheckpointTensor& t : map.tensors()) {
    CheckpointTensorData d{t.name, dtype, t.shape, {}};
    const int64_t n = num_elements(t.shape);
    d.bytes.resize(static_cast<size_t>(n) * dtype_size(dtype));
    for (int64_t i = 0; i < n; ++i) {
      float v = normal(rng);
      if (i % 97 == 0) v *= 40.0f;  // outliers, so scales differ between rows and tiles
      if (dtype == DType::kBF16) {
        reinterpret_cast<uint16_t*>(d.bytes.data())[i] = f32_to_bf16(v);
      } else if (dtype == DType::kF16) {
        reinterpret_cast<uint16_t*>(d.bytes.data())[i] = f32_to_f16(v);
      } else {
        reinterpret_cast<float*>(d.bytes.data())[i] = v;
      }
    }
    out.push_back(std::move(d));
  }
  return out;
}

inline IncomingTensor incoming(const CheckpointTensorData& d) {
  return IncomingTensor{d.name, d.dtype, d.shape, d.bytes};
}

}  // namespace qswap::testing
