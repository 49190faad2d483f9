// `qswap serve`: an OpenAI-compatible HTTP server over one Engine.
//
//   POST /v1/completions           OpenAI legacy completions (JSON or server-sent events)
//   GET  /v1/models                the served model
//   GET  /health                   200 when the weights can be served, else 503 with the reason
//   GET  /metrics                  Prometheus text format 0.0.4
//   POST /update_weights_from_disk {"path": DIR, "mode": "in-place" | "transactional"}
//
// Every completion reports the weight_version that produced it. Requests are never failed by a
// weight update: see EngineGate.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "qswap/engine/engine.h"

namespace qswap::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                  // 0: any free port (port() tells which)
  std::string model_name = "qswap"; // reported as "model"; requests may name any model
  int64_t max_tokens_limit = 0;     // largest max_tokens accepted; 0: only the context limits it
  int http_threads = 8;             // connections served at once (generation is one at a time)
  std::chrono::milliseconds servable_timeout{60000};  // longest wait for an in-place update
};

class Server {
 public:
  // `engine` must outlive the server.
  Server(Engine& engine, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port, then serves on a background thread until stop().
  Status start();
  // Stops accepting, finishes the requests in flight, and joins the serving thread. Idempotent.
  void stop();
  int port() const;

  // Feeds a weight update made outside the server (e.g. by a weight-stream listener) into the
  // metrics; updates through /update_weights_from_disk are recorded already.
  void record_update(const Result<UpdateStats>& result);
  std::string metrics_text() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qswap::server
