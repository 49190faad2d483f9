#include <cstdio>

#include <fmt/format.h>

#include "commands.h"

namespace qswap::cli {

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
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
