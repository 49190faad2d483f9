#include "commands.h"
#include "qswap/engine/synth.h"

namespace qswap::cli {
namespace {

struct SynthArgs {
  std::string arch = "qwen3";
  std::string preset = "tiny";
  uint64_t seed = 0;
  double max_shard_mb = 512;
  std::string out;
};

}  // namespace

void register_synth(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<SynthArgs>();
  CLI::App* cmd = app.add_subcommand("synth", "Write a synthetic HF checkpoint with real shapes and random bf16 weights");
  cmd->add_option("--arch", args->arch, "qwen3 | qwen2 | llama")->capture_default_str();
  cmd->add_option("--preset", args->preset, "tiny | 0.6b | 1.7b")->capture_default_str();
  cmd->add_option("--seed", args->seed, "Random seed")->capture_default_str();
  cmd->add_option("--max-shard-mb", args->max_shard_mb, "Split into shards of at most this size")->capture_default_str();
  cmd->add_option("out_dir", args->out, "Output directory")->required();
  cmd->callback([args, &exit_code] {
    Result<Arch> arch = parse_arch(args->arch);
    if (!arch.ok()) {
      exit_code = report(arch.status());
      return;
    }
    Result<ModelConfig> config = synth_preset(*arch, args->preset);
    if (!config.ok()) {
      exit_code = report(config.status());
      return;
    }
    SynthOptions options;
    options.seed = args->seed;
    options.max_shard_bytes = static_cast<uint64_t>(args->max_shard_mb * 1024 * 1024);
    exit_code = report(write_synthetic_checkpoint(*config, args->out, options));
  });
}

}  // namespace qswap::cli
