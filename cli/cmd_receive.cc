// qswap receive: load a model, then take weight updates pushed by a trainer over the weight-stream
// protocol (docs/protocol.md) — a rollout worker without HTTP. stdout: the bound address first (one
// line), then one line per update (one JSON object per line with --json), and the greedy
// completion of --prompt under the new weights.
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <mutex>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "progress.h"
#include "qswap/engine/engine.h"
#include "qswap/stream/listener.h"

namespace qswap::cli {
namespace {

struct ReceiveArgs : ModelArgs {
  std::string listen;
  std::string token;
  std::string mode = "transactional";
  int updates = 0;
  std::string prompt;
  int64_t max_tokens = 8;
  double max_payload_mb = 0;
  bool allow_unknown = false;
};

volatile std::sig_atomic_t g_signal = 0;
void on_signal(int sig) { g_signal = sig; }

// Lines on stdout from the listener's thread and from main, whole and in order.
std::mutex g_out_mutex;

void print_line(const std::string& line) {
  std::lock_guard<std::mutex> lock(g_out_mutex);
  fmt::print("{}\n", line);
  std::fflush(stdout);
}

class Receiver {
 public:
  Receiver(Engine& engine, const ReceiveArgs& args) : engine_(engine), args_(args) {}

  // Runs on the listener's thread, before the sender gets its reply: a sender that has its reply
  // can read this update's line.
  void on_update(const Result<UpdateStats>& result) {
    nlohmann::json j;
    std::string text;
    if (result.ok()) {
      const UpdateStats& s = *result;
      j = {{"ok", true},           {"version", s.version},   {"mode", std::string(update_mode_name(s.mode))},
           {"tensors", s.tensors}, {"bytes", s.bytes_in},    {"seconds", s.seconds}};
      text = fmt::format("update ok: version {}, {} tensors, {} in {:.3f} s ({})", s.version, s.tensors,
                         format_bytes(static_cast<double>(s.bytes_in)), s.seconds, update_mode_name(s.mode));
      if (!args_.prompt.empty()) {
        Result<std::string> completion = complete();
        if (completion.ok()) {
          j["completion"] = *completion;
          text += fmt::format("\n{}{}", args_.prompt, *completion);
        } else {
          j["completion_error"] = completion.status().to_string();
          text += fmt::format("\ncompletion failed: {}", completion.status().to_string());
        }
      }
    } else {
      j = {{"ok", false}, {"error", result.status().to_string()}, {"version", engine_.weight_version()}};
      text = fmt::format("update failed: {} (serving version {})", result.status().to_string(),
                         engine_.weight_version());
    }
    print_line(args_.json ? j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) : text);
    if (result.ok()) {
      std::lock_guard<std::mutex> lock(mutex_);
      ++committed_;
      cv_.notify_all();
    }
  }

  // Until `updates` commits (0: forever) or a signal.
  void wait(int updates) {
    std::unique_lock<std::mutex> lock(mutex_);
    while (g_signal == 0 && (updates <= 0 || committed_ < updates)) {
      cv_.wait_for(lock, std::chrono::milliseconds(200));
    }
  }

 private:
  Result<std::string> complete() {
    QSWAP_ASSIGN_OR_RETURN(std::vector<int32_t> ids, engine_.tokenize(args_.prompt));
    GenerateRequest request;
    request.prompt = std::move(ids);
    request.sampling.max_tokens = args_.max_tokens;
    QSWAP_ASSIGN_OR_RETURN(GenerateResult r, engine_.generate(request));
    return r.text;
  }

  Engine& engine_;
  const ReceiveArgs& args_;
  std::mutex mutex_;
  std::condition_variable cv_;
  int committed_ = 0;
};

int run_receive(const ReceiveArgs& a) {
  EngineOptions options;
  options.allow_unknown = a.allow_unknown;
  Result<UpdateMode> mode = parse_update_mode(a.mode);
  if (!mode.ok()) return report(mode.status());
  options.update_mode = *mode;
  Result<std::unique_ptr<Engine>> loaded = open_engine(a, options, !a.json);
  if (!loaded.ok()) return report(loaded.status());
  Engine& engine = **loaded;

  Receiver receiver(engine, a);
  ListenOptions listen;
  listen.address = a.listen;
  listen.token = a.token;
  if (a.max_payload_mb > 0) listen.max_payload_bytes = static_cast<uint64_t>(a.max_payload_mb * 1e6);
  listen.on_update = [&receiver](const Result<UpdateStats>& r) { receiver.on_update(r); };

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::unique_ptr<UpdateListener> listener;
  {
    // The address line comes first, even if an update lands before it is printed.
    std::lock_guard<std::mutex> lock(g_out_mutex);
    Result<std::unique_ptr<UpdateListener>> started = UpdateListener::start(engine, std::move(listen));
    if (!started.ok()) return report(started.status());
    listener = std::move(started).value();
    const std::string address = listener->address();
    fmt::print("{}\n", a.json ? nlohmann::json{{"address", address}}.dump() : address);
    std::fflush(stdout);
  }
  receiver.wait(a.updates);
  listener->stop();
  return g_signal != 0 && a.updates > 0 ? 1 : 0;
}

}  // namespace

void register_receive(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ReceiveArgs>();
  CLI::App* cmd = app.add_subcommand("receive", "Load a model and take weight updates streamed by a trainer");
  add_model_options(cmd, *args);
  cmd->add_option("--listen,-l", args->listen, "unix:/PATH or tcp://HOST:PORT (port 0: any free port)")->required();
  cmd->add_option("--token", args->token, "Shared secret the sender must present")->envname("QSWAP_STREAM_TOKEN");
  cmd->add_option("--mode", args->mode, "transactional | in-place (a sender's BEGIN may choose)")->capture_default_str();
  cmd->add_option("--updates,-n", args->updates, "Exit after this many committed updates (0: run until signalled)")
      ->capture_default_str();
  cmd->add_option("--prompt,-p", args->prompt, "After each update, print the greedy completion of this prompt");
  cmd->add_option("--max-tokens", args->max_tokens, "Tokens of the completion")->capture_default_str();
  cmd->add_option("--max-payload-mb", args->max_payload_mb, "Largest tensor accepted, in MB (0: 16 GiB)");
  cmd->add_flag("--allow-unknown", args->allow_unknown, "Skip unknown checkpoint tensors with a warning");
  cmd->callback([args, &exit_code] { exit_code = run_receive(*args); });
}

}  // namespace qswap::cli
