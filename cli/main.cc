#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
  CLI::App app{"qswap: LLM inference with online-quantized, in-place reloadable weights"};
  app.require_subcommand(1);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
