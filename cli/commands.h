// Subcommands of the `qswap` CLI. Each registers itself on the app and, when chosen, stores its
// exit code: 0 success, 1 a failed operation (message on stderr), 2 bad usage (CLI11).
#pragma once

#include <CLI/CLI.hpp>

#include <memory>

#include "qswap/base/status.h"
#include "qswap/engine/engine.h"

namespace qswap::cli {

void register_inspect(CLI::App& app, int& exit_code);
void register_synth(CLI::App& app, int& exit_code);
void register_weights(CLI::App& app, int& exit_code);   // load, reload, export
void register_generate(CLI::App& app, int& exit_code);  // generate, ppl, bench
void register_serve(CLI::App& app, int& exit_code);     // OpenAI-compatible HTTP server
void register_receive(CLI::App& app, int& exit_code);   // weight updates from a trainer

// Prints "error: <message>" to stderr and returns the exit code for `status`.
int report(const Status& status);

// The options every command that opens a model takes.
struct ModelArgs {
  std::string dir;
  std::string quant = "none";
  int threads = 0;
  bool json = false;
};
void add_model_options(CLI::App* cmd, ModelArgs& args);
// Loads args.dir with args' quant and threads (the other fields from `options`), drawing a
// progress bar on stderr when `progress` is set.
Result<std::unique_ptr<Engine>> open_engine(const ModelArgs& args, EngineOptions options, bool progress);

}  // namespace qswap::cli
