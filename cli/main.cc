#include <cstdio>

#include <fmt/format.h>

#include "commands.h"
#include "progress.h"

namespace qswap::cli {

void add_model_options(CLI::App* cmd, ModelArgs& args) {
  cmd->add_option("dir", args.dir, "Model directory (config.json, safetensors, tokenizer.json)")->required();
  cmd->add_option("--quant,-q", args.quant, "none | fp8 | fp8-channel | fp8-block | mxfp8 | int8-channel")
      ->capture_default_str();
  cmd->add_option("--threads,-t", args.threads, "Worker threads (0: all)")->capture_default_str();
  cmd->add_flag("--json", args.json, "Print one JSON object");
}

Result<std::unique_ptr<Engine>> open_engine(const ModelArgs& args, EngineOptions options, bool progress) {
  options.quant = args.quant;
  options.threads = args.threads;
  ProgressBar bar("load", progress);
  return Engine::load(args.dir, options, [&bar](int done, int total, int64_t bytes) { bar.update(done, total, bytes); });
}

int report(const Status& status) {
  if (status.ok()) return 0;
  fmt::print(stderr, "error: {}\n", status.to_string());
  return 1;
}

}  // namespace qswap::cli

int main(int argc, char** argv) {
  CLI::App app{"qswap: LLM inference with online-quantized, in-place reloadable weights"};
  app.require_subcommand(1);
  int exit_code = 0;
  qswap::cli::register_inspect(app, exit_code);
  qswap::cli::register_synth(app, exit_code);
  qswap::cli::register_weights(app, exit_code);
  qswap::cli::register_generate(app, exit_code);
  qswap::cli::register_serve(app, exit_code);
  qswap::cli::register_receive(app, exit_code);
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
