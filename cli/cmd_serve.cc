// qswap serve: the OpenAI-compatible HTTP server (server/server.h) until SIGINT or SIGTERM.
#include <csignal>
#include <filesystem>

#include <fmt/format.h>

#include "commands.h"
#include "qswap/engine/engine.h"
#include "qswap/stream/listener.h"
#include "server/server.h"

namespace qswap::cli {
namespace {

struct ServeArgs : ModelArgs {
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string mode = "transactional";
  int64_t max_tokens_limit = 0;
  std::string model_name;
  int http_threads = 8;
  std::string listen;  // weight-stream listener (docs/protocol.md), off when empty
  std::string token;
  double max_payload_mb = 0;
};

int run_serve(const ServeArgs& a) {
  EngineOptions options;
  Result<UpdateMode> mode = parse_update_mode(a.mode);
  if (!mode.ok()) return report(mode.status());
  options.update_mode = *mode;

  // Signals go to sigwait() below, not to whichever thread the kernel picks: block them before
  // any thread starts so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto engine = open_engine(a, options, true);
  if (!engine.ok()) return report(engine.status());

  server::ServerOptions so;
  so.host = a.host;
  so.port = a.port;
  so.max_tokens_limit = a.max_tokens_limit;
  so.http_threads = a.http_threads;
  std::filesystem::path dir = std::filesystem::path(a.dir).lexically_normal();
  if (!dir.has_filename()) dir = dir.parent_path();  // "models/x/"
  so.model_name = !a.model_name.empty() ? a.model_name : dir.filename().string();
  if (so.model_name.empty()) so.model_name = "qswap";
  server::Server server(**engine, so);
  Status started = server.start();
  if (!started.ok()) return report(started);
  fmt::print(stderr, "qswap serve: {} (quant {}, {} updates) on http://{}:{}\n", so.model_name, a.quant, a.mode,
             a.host, server.port());

  // Trainer pushes arrive on the listener's thread; their outcome feeds /metrics like any update.
  std::unique_ptr<UpdateListener> listener;
  if (!a.listen.empty()) {
    ListenOptions listen;
    listen.address = a.listen;
    listen.token = a.token;
    if (a.max_payload_mb > 0) listen.max_payload_bytes = static_cast<uint64_t>(a.max_payload_mb * 1e6);
    listen.on_update = [&server](const Result<UpdateStats>& r) { server.record_update(r); };
    Result<std::unique_ptr<UpdateListener>> listening = UpdateListener::start(**engine, std::move(listen));
    if (!listening.ok()) {
      server.stop();
      return report(listening.status());
    }
    listener = std::move(listening).value();
    fmt::print(stderr, "qswap serve: weight stream on {}\n", listener->address());
  }

  int signal = 0;
  sigwait(&signals, &signal);
  fmt::print(stderr, "qswap serve: signal {}, stopping\n", signal);
  if (listener) listener->stop();
  server.stop();
  return 0;
}

}  // namespace

void register_serve(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server (/v1/completions, /metrics, ...)");
  add_model_options(cmd, *args);
  cmd->add_option("--host", args->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port,-p", args->port, "Port (0: any free port)")->required();
  cmd->add_option("--mode", args->mode, "Default weight-update mode: in-place | transactional")
      ->check(CLI::IsMember({"in-place", "transactional"}))
      ->capture_default_str();
  cmd->add_option("--max-tokens-limit", args->max_tokens_limit, "Largest max_tokens accepted (0: the context)")
      ->capture_default_str();
  cmd->add_option("--served-model-name", args->model_name, "Model name reported (default: the directory's name)");
  cmd->add_option("--http-threads", args->http_threads, "Connections served at once")->capture_default_str();
  cmd->add_option("--listen", args->listen, "Weight-stream listener: unix:/PATH or tcp://HOST:PORT (docs/protocol.md)");
  cmd->add_option("--token", args->token, "Shared secret a weight sender must present")->envname("QSWAP_STREAM_TOKEN");
  cmd->add_option("--max-payload-mb", args->max_payload_mb, "Largest streamed tensor accepted, in MB (0: 16 GiB)");
  cmd->callback([args, &exit_code] { exit_code = run_serve(*args); });
}

}  // namespace qswap::cli
