#include "qswap/engine/synth.h"

#include <cmath>
#include <fstream>
#include <vector>

#include "qswap/base/mapped_file.h"
#include "qswap/io/safetensors_writer.h"
#include "qswap/model/weight_map.h"
#include "qswap/tensor/convert.h"

namespace qswap {
namespace {

struct Preset {
  std::string_view name;
  int64_t hidden, layers, heads, kv_heads, head_dim, intermediate, vocab, max_positions;
  double rope_theta;
};
constexpr Preset kPresets[] = {
    {"tiny", 64, 2, 4, 2, 16, 128, 512, 2048, 10000.0},
    {"0.6b", 1024, 28, 16, 8, 128, 3072, 151936, 40960, 1e6},
    {"1.7b", 2048, 28, 16, 8, 128, 6144, 151936, 40960, 1e6},
};

// splitmix64: fast, and the same stream on every platform.
struct Rng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Irwin-Hall of four 16-bit uniforms: unit variance, bell-shaped, 4x cheaper than Box-Muller.
  float normal() {
    uint64_t r = next();
    float sum = static_cast<float>((r & 0xFFFF) + ((r >> 16) & 0xFFFF) + ((r >> 32) & 0xFFFF) + (r >> 48));
    constexpr float kMean = 4 * 32767.5f, kStd = 65536.0f * 0.5773503f;  // sqrt(4/12)
    return (sum - kMean) / kStd;
  }
};

bool is_norm(ParamKind kind) {
  return kind == ParamKind::kInputNorm || kind == ParamKind::kPostAttnNorm || kind == ParamKind::kFinalNorm ||
         kind == ParamKind::kQNorm || kind == ParamKind::kKNorm;
}

}  // namespace

Result<Arch> parse_arch(std::string_view name) {
  if (name == "qwen3") return Arch::kQwen3;
  if (name == "qwen2") return Arch::kQwen2;
  if (name == "llama") return Arch::kLlama;
  return invalid_argument("unknown architecture '{}' (expected qwen3, qwen2 or llama)", name);
}

Result<ModelConfig> synth_preset(Arch arch, std::string_view preset) {
  for (const Preset& p : kPresets) {
    if (p.name != preset) continue;
    ModelConfig c;
    c.arch = arch;
    c.hidden_size = p.hidden;
    c.num_hidden_layers = p.layers;
    c.num_attention_heads = p.heads;
    c.num_key_value_heads = p.kv_heads;
    c.head_dim = p.head_dim;
    c.intermediate_size = p.intermediate;
    c.vocab_size = p.vocab;
    c.max_position_embeddings = p.max_positions;
    c.rope_theta = p.rope_theta;
    c.tie_word_embeddings = arch != Arch::kLlama;  // Llama checkpoints mostly carry their own lm_head
    c.eos_token_ids = {p.vocab - 1};
    return c;
  }
  return invalid_argument("unknown preset '{}' (expected tiny, 0.6b or 1.7b)", preset);
}

Status write_synthetic_checkpoint(const ModelConfig& config, const std::filesystem::path& out_dir,
                                  const SynthOptions& options) {
  QSWAP_ASSIGN_OR_RETURN(WeightMap map, WeightMap::build(config));
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return io_error("cannot create '{}': {}", out_dir.string(), ec.message());

  std::vector<TensorDecl> decls;
  for (const CheckpointTensor& t : map.tensors()) decls.push_back({t.name, DType::kBF16, t.shape});
  QSWAP_ASSIGN_OR_RETURN(ShardedSafetensorsWriter writer,
                         ShardedSafetensorsWriter::create(out_dir, decls, options.max_shard_bytes, {{"format", "pt"}}));
  Rng rng{options.seed * 0x2545F4914F6CDD1Dull + 1};
  constexpr int64_t kChunk = 1 << 20;
  std::vector<uint16_t> chunk(kChunk);
  for (const CheckpointTensor& t : map.tensors()) {
    const bool norm = is_norm(map.params()[static_cast<size_t>(t.param)].kind);
    const int64_t n = num_elements(t.shape);
    for (int64_t done = 0; done < n; done += kChunk) {
      const int64_t m = std::min(kChunk, n - done);
      for (int64_t i = 0; i < m; ++i) {
        float v = 0.02f * rng.normal();
        chunk[static_cast<size_t>(i)] = f32_to_bf16(norm ? 1.0f + v : v);
      }
      QSWAP_RETURN_IF_ERROR(writer.write(t.name, std::as_bytes(std::span(chunk.data(), static_cast<size_t>(m)))));
    }
  }
  QSWAP_RETURN_IF_ERROR(writer.finish());
  std::string json = model_config_to_json(config);
  return write_file_atomic(out_dir / "config.json", std::as_bytes(std::span(json.data(), json.size())));
}

}  // namespace qswap
