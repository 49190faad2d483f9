// Synthetic Hugging Face checkpoints with real architecture shapes and random bf16 weights of
// realistic scale, for benchmarks and tests on models too large to commit.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string_view>

#include "qswap/io/model_config.h"

namespace qswap {

// Presets: "tiny" (a few MB), "0.6b" and "1.7b" (the dimensions of Qwen3-0.6B / Qwen3-1.7B).
Result<ModelConfig> synth_preset(Arch arch, std::string_view preset);
Result<Arch> parse_arch(std::string_view name);  // "qwen3", "qwen2", "llama"

struct SynthOptions {
  uint64_t seed = 0;
  uint64_t max_shard_bytes = 512ull << 20;  // splits 0.6b into several shards + an index
};

// Writes OUT_DIR/config.json and the safetensors shards (+ index). Weights: N(0, 0.02) for
// matrices and embeddings, 1 + N(0, 0.02) for norms, N(0, 0.02) for biases.
Status write_synthetic_checkpoint(const ModelConfig& config, const std::filesystem::path& out_dir,
                                  const SynthOptions& options);

}  // namespace qswap
