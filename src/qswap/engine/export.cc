// Engine::export_checkpoint: the kernel tensors as a safetensors checkpoint a user can keep and
// inspect, with a quantization_config in config.json that says how to read them.
#include <nlohmann/json.hpp>

#include "qswap/base/mapped_file.h"
#include "qswap/engine/engine.h"
#include "qswap/io/safetensors_writer.h"

namespace qswap {
namespace {

nlohmann::json quantization_config(const QuantScheme& scheme) {
  nlohmann::json q = {
      {"quant_method", "qswap"},
      {"format_version", 1},
      {"scheme", std::string(scheme.name())},
      {"activation_dtype", "bfloat16"},
      {"fused_parameters",
       {{"qkv_proj", {"q_proj", "k_proj", "v_proj"}}, {"gate_up_proj", {"gate_proj", "up_proj"}}}},
      {"scaled_tensors", "linear projections; embeddings, norms and biases are bfloat16"},
  };
  switch (scheme.kind()) {
    case QuantKind::kNone: break;
    case QuantKind::kFp8Tensor: q["weight_scale"] = "float32 [1]: dequantized = e4m3 * scale"; break;
    case QuantKind::kFp8Channel: q["weight_scale"] = "float32 [out]: one scale per output row"; break;
    case QuantKind::kFp8Block:
      q["weight_block_size"] = {128, 128};
      q["weight_scale"] = "float32 [ceil(out/128), ceil(in/128)]";
      break;
    case QuantKind::kMxfp8:
      q["group_size"] = 32;
      q["weight_scale"] = "float8_e8m0fnu [out, ceil(in/32)]: OCP MX v1.0";
      break;
    case QuantKind::kInt8Channel: q["weight_scale"] = "float32 [out]: dequantized = int8 * scale"; break;
  }
  return q;
}

std::string kernel_tensor_name(const ParamSpec& param, const KernelTensorSpec& spec) {
  return fmt::format("model.{}.{}", param.name, spec.suffix);
}

}  // namespace

Status Engine::export_checkpoint(const std::filesystem::path& out_dir) const {
  QSWAP_RETURN_IF_ERROR(check_servable().with_context("cannot export"));
  std::vector<TensorDecl> decls;
  std::vector<std::span<const std::byte>> data;
  for (int p = 0; p < live_.num_params(); ++p) {
    const ParamSpec& param = map_.params()[static_cast<size_t>(p)];
    const KernelStore::Param& kp = live_.param(p);
    for (size_t t = 0; t < kp.specs.size(); ++t) {
      decls.push_back({kernel_tensor_name(param, kp.specs[t]), kp.specs[t].dtype, kp.specs[t].shape});
      data.push_back(std::span<const std::byte>(kp.views[t].data, kp.views[t].nbytes()));
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return io_error("cannot create '{}': {}", out_dir.string(), ec.message());
  QSWAP_ASSIGN_OR_RETURN(ShardedSafetensorsWriter writer,
                         ShardedSafetensorsWriter::create(out_dir, decls, 2ull << 30,
                                                          {{"format", "qswap"}, {"scheme", std::string(scheme_->name())},
                                                           {"weight_version", std::to_string(weight_version())}}));
  for (size_t i = 0; i < decls.size(); ++i) QSWAP_RETURN_IF_ERROR(writer.write(decls[i].name, data[i]));
  QSWAP_RETURN_IF_ERROR(writer.finish());

  nlohmann::json config = nlohmann::json::parse(model_config_to_json(map_.config()));
  config["quantization_config"] = quantization_config(*scheme_);
  std::string text = config.dump(2) + "\n";
  return write_file_atomic(out_dir / "config.json", std::as_bytes(std::span(text.data(), text.size())));
}

}  // namespace qswap
