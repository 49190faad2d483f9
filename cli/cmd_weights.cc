// qswap load | reload | export: the weight path of the engine, with a progress bar and a summary.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "progress.h"
#include "qswap/engine/engine.h"

namespace qswap::cli {
namespace {

struct WeightsArgs : ModelArgs {
  std::string mode = "transactional";
  bool no_progress = false;
  bool allow_unknown = false;
  std::string from;
  int times = 1;
  std::string export_dir;
};

void add_engine_options(CLI::App* cmd, WeightsArgs& a) {
  add_model_options(cmd, a);
  cmd->add_flag("--no-progress", a.no_progress, "No progress bar");
  cmd->add_flag("--allow-unknown", a.allow_unknown, "Skip unknown checkpoint tensors with a warning");
}

Result<EngineOptions> engine_options(const WeightsArgs& a) {
  EngineOptions o;
  o.quant = a.quant;
  o.threads = a.threads;
  o.allow_unknown = a.allow_unknown;
  QSWAP_ASSIGN_OR_RETURN(o.update_mode, parse_update_mode(a.mode));
  return o;
}

ProgressCallback progress_to(ProgressBar& bar) {
  return [&bar](int done, int total, int64_t bytes) { bar.update(done, total, bytes); };
}

double gb_per_s(const UpdateStats& s) { return s.seconds > 0 ? static_cast<double>(s.bytes_in) / s.seconds / 1e9 : 0; }

nlohmann::json stats_json(const UpdateStats& s) {
  return {{"version", s.version},
          {"mode", std::string(update_mode_name(s.mode))},
          {"tensors", s.tensors},
          {"bytes_in", s.bytes_in},
          {"seconds", s.seconds},
          {"gb_per_s", gb_per_s(s)},
          {"peak_staging_bytes", s.peak_staging_bytes},
          {"max_layers_staging", s.max_units_staging},
          {"peak_rss_bytes", s.peak_rss_bytes},
          {"warnings", s.warnings}};
}

void print_stats_line(const char* what, const UpdateStats& s) {
  fmt::print("{:<8} {} in {:.3f} s ({:.2f} GB/s), peak staging {}, peak RSS {}, version {}\n", what,
             format_bytes(static_cast<double>(s.bytes_in)), s.seconds, gb_per_s(s),
             format_bytes(static_cast<double>(s.peak_staging_bytes)), format_bytes(static_cast<double>(s.peak_rss_bytes)),
             s.version);
  for (const std::string& w : s.warnings) fmt::print("         warning: {}\n", w);
}

Result<std::unique_ptr<Engine>> load_engine(const WeightsArgs& a) {
  QSWAP_ASSIGN_OR_RETURN(EngineOptions options, engine_options(a));
  return open_engine(a, options, !a.no_progress && !a.json);
}

int run(const WeightsArgs& a, const std::string& command) {
  Result<std::unique_ptr<Engine>> loaded = load_engine(a);
  if (!loaded.ok()) return report(loaded.status());
  Engine& engine = **loaded;
  const UpdateStats load_stats = *engine.last_update();

  std::vector<UpdateStats> reloads;
  if (command == "reload") {
    Result<UpdateMode> mode = parse_update_mode(a.mode);
    for (int i = 0; i < a.times; ++i) {
      ProgressBar bar(fmt::format("reload {}/{}", i + 1, a.times), !a.no_progress && !a.json);
      Result<UpdateStats> s = engine.update_weights_from_disk(a.from, *mode, progress_to(bar));
      if (!s.ok()) return report(s.status());
      reloads.push_back(*s);
    }
  }
  if (!a.export_dir.empty()) {
    Status s = engine.export_checkpoint(a.export_dir);
    if (!s.ok()) return report(s);
  }

  const KernelStore& w = engine.weights();
  if (a.json) {
    nlohmann::json j = {{"command", command},
                        {"dir", a.dir},
                        {"architecture", std::string(arch_name(engine.config().arch))},
                        {"quant", std::string(engine.scheme().name())},
                        {"threads", engine.pool().size()},
                        {"kernel_bytes", w.allocated_bytes()},
                        {"load", stats_json(load_stats)},
                        {"version", engine.weight_version()},
                        {"peak_rss_bytes", peak_rss_bytes()}};
    if (command == "reload") {
      j["from"] = a.from;
      nlohmann::json list = nlohmann::json::array();
      for (const UpdateStats& s : reloads) list.push_back(stats_json(s));
      j["reloads"] = list;
      auto best = std::min_element(reloads.begin(), reloads.end(),
                                   [](const auto& x, const auto& y) { return x.seconds < y.seconds; });
      j["best_seconds"] = best->seconds;
      j["best_gb_per_s"] = gb_per_s(*best);
      j["bytes_in"] = best->bytes_in;
      j["peak_staging_bytes"] = best->peak_staging_bytes;
    }
    if (!a.export_dir.empty()) j["export"] = a.export_dir;
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  fmt::print("{} ({}, quant {}, {} threads): kernel tensors {}\n", a.dir, arch_name(engine.config().arch),
             engine.scheme().name(), engine.pool().size(), format_bytes(static_cast<double>(w.allocated_bytes())));
  print_stats_line("load", load_stats);
  for (size_t i = 0; i < reloads.size(); ++i) print_stats_line(fmt::format("reload {}", i + 1).c_str(), reloads[i]);
  if (!a.export_dir.empty()) fmt::print("exported the kernel tensors to {}\n", a.export_dir);
  return 0;
}

}  // namespace

void register_weights(CLI::App& app, int& exit_code) {
  auto load = std::make_shared<WeightsArgs>();
  CLI::App* cmd = app.add_subcommand("load", "Load and quantize a model, print a summary");
  add_engine_options(cmd, *load);
  cmd->callback([load, &exit_code] { exit_code = run(*load, "load"); });

  auto reload = std::make_shared<WeightsArgs>();
  cmd = app.add_subcommand("reload", "Load a model, then reload weights from another checkpoint in place");
  add_engine_options(cmd, *reload);
  cmd->add_option("--from", reload->from, "Checkpoint directory to reload from")->required();
  cmd->add_option("--times,-n", reload->times, "Reload this many times")->capture_default_str()->check(CLI::Range(1, 100000));
  cmd->add_option("--mode", reload->mode, "transactional | in-place")->capture_default_str();
  cmd->add_option("--export", reload->export_dir, "After reloading, export the kernel tensors here");
  cmd->callback([reload, &exit_code] { exit_code = run(*reload, "reload"); });

  auto exp = std::make_shared<WeightsArgs>();
  cmd = app.add_subcommand("export", "Load, quantize and write the kernel tensors as a quantized checkpoint");
  add_engine_options(cmd, *exp);
  cmd->add_option("out_dir", exp->export_dir, "Output directory")->required();
  cmd->callback([exp, &exit_code] { exit_code = run(*exp, "export"); });
}

}  // namespace qswap::cli
