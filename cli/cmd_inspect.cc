#include <nlohmann/json.hpp>

#include "commands.h"
#include "progress.h"
#include "qswap/engine/inspect.h"

namespace qswap::cli {
namespace {

struct InspectArgs {
  std::string dir;
  bool json = false;
  bool all = false;
};

void print_json(const InspectReport& r) {
  nlohmann::json j;
  j["dir"] = r.dir.string();
  j["architecture"] = std::string(arch_name(r.config.arch));
  j["num_parameters"] = r.num_parameters;
  j["dtype_bytes"] = r.dtype_bytes;
  j["num_layers"] = r.config.num_hidden_layers;
  j["tie_word_embeddings"] = r.config.tie_word_embeddings;
  nlohmann::json tensors = nlohmann::json::array();
  for (const TensorInfo& t : r.tensors) {
    tensors.push_back({{"name", t.name}, {"dtype", std::string(dtype_name(t.dtype))}, {"shape", t.shape},
                       {"bytes", t.nbytes}, {"shard", t.location}});
  }
  j["tensors"] = tensors;
  j["missing"] = r.missing;
  j["unexpected"] = r.unexpected;
  j["ignored"] = r.ignored;
  j["shape_mismatches"] = r.mismatched;
  fmt::print("{}\n", j.dump(2));
}

void print_text(const InspectReport& r, bool all) {
  const ModelConfig& c = r.config;
  fmt::print("{}\n", r.dir.string());
  fmt::print("  architecture  {}  ({} layers, hidden {}, heads {}/{} kv, head_dim {}, ffn {}, vocab {}{})\n",
             arch_name(c.arch), c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.num_key_value_heads,
             c.head_dim, c.intermediate_size, c.vocab_size, c.tie_word_embeddings ? ", tied embeddings" : "");
  fmt::print("  parameters    {} ({:.1f}M)\n", r.num_parameters, static_cast<double>(r.num_parameters) / 1e6);
  for (const auto& [dtype, bytes] : r.dtype_bytes) {
    fmt::print("  {:<13} {}\n", dtype, format_bytes(static_cast<double>(bytes)));
  }
  fmt::print("\n  {:<56} {:<8} {:<16} {}\n", "tensor", "dtype", "shape", "shard");
  constexpr size_t kHead = 24;
  for (size_t i = 0; i < r.tensors.size(); ++i) {
    if (!all && i == kHead && r.tensors.size() > kHead + 1) {
      fmt::print("  ... {} more (--all lists every tensor)\n", r.tensors.size() - kHead);
      break;
    }
    const TensorInfo& t = r.tensors[i];
    fmt::print("  {:<56} {:<8} {:<16} {}\n", t.name, dtype_name(t.dtype), format_shape(t.shape), t.location);
  }
  auto list = [](const char* title, const std::vector<std::string>& names) {
    if (names.empty()) return;
    fmt::print("\n  {} ({}):\n", title, names.size());
    for (const std::string& n : names) fmt::print("    {}\n", n);
  };
  list("missing (required by the architecture)", r.missing);
  list("unexpected (unknown to the architecture)", r.unexpected);
  list("ignored", r.ignored);
  list("wrong shape", r.mismatched);
  if (r.missing.empty() && r.unexpected.empty() && r.mismatched.empty()) {
    fmt::print("\n  all {} tensors the architecture expects are present\n", r.tensors.size() - r.ignored.size());
  }
}

}  // namespace

void register_inspect(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<InspectArgs>();
  CLI::App* cmd = app.add_subcommand("inspect", "Describe a model directory and check it against its architecture");
  cmd->add_option("dir", args->dir, "Model directory (config.json + safetensors)")->required();
  cmd->add_flag("--json", args->json, "Print one JSON object");
  cmd->add_flag("--all", args->all, "List every tensor");
  cmd->callback([args, &exit_code] {
    Result<InspectReport> r = inspect_checkpoint(args->dir);
    if (!r.ok()) {
      exit_code = report(r.status());
      return;
    }
    if (args->json) {
      print_json(*r);
    } else {
      print_text(*r, args->all);
    }
    exit_code = r->missing.empty() && r->mismatched.empty() ? 0 : 1;
  });
}

}  // namespace qswap::cli
