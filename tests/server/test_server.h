// A qswap::server::Server on an ephemeral port over a fixture model, and an HTTP client for it.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "qswap/engine/engine.h"
#include "server/server.h"

namespace qswap::testing {

inline std::filesystem::path data_dir() { return QSWAP_TEST_DATA_DIR; }

struct HttpReply {
  int status = 0;  // 0: no reply
  std::string body;
  nlohmann::json json;  // discarded when the body is not JSON
};

class TestServer {
 public:
  explicit TestServer(const std::string& model = "arith-mul", server::ServerOptions options = {},
                      EngineOptions engine_options = {}) {
    engine_options.threads = 2;
    auto loaded = Engine::load(data_dir() / model, engine_options);
    EXPECT_TRUE(loaded.ok()) << loaded.status().to_string();
    if (!loaded.ok()) return;
    engine_ = std::move(loaded).value();
    start(options);
  }
  // Serves an engine made elsewhere (e.g. one without weights).
  TestServer(std::unique_ptr<Engine> engine, server::ServerOptions options) : engine_(std::move(engine)) {
    start(options);
  }

  bool ok() const { return server_ != nullptr; }
  Engine& engine() { return *engine_; }
  server::Server& server() { return *server_; }
  int port() const { return server_->port(); }

  HttpReply post(const std::string& path, const std::string& body) const {
    httplib::Client client("127.0.0.1", port());
    client.set_read_timeout(60, 0);
    return reply(client.Post(path.c_str(), body, "application/json"));
  }
  HttpReply post(const std::string& path, const nlohmann::json& body) const { return post(path, body.dump()); }
  HttpReply get(const std::string& path) const {
    httplib::Client client("127.0.0.1", port());
    return reply(client.Get(path.c_str()));
  }

 private:
  void start(server::ServerOptions options) {
    options.host = "127.0.0.1";
    options.port = 0;
    if (options.model_name == "qswap") options.model_name = "test-model";
    server_ = std::make_unique<server::Server>(*engine_, options);
    Status s = server_->start();
    EXPECT_TRUE(s.ok()) << s.to_string();
    if (!s.ok()) server_.reset();
  }

  static HttpReply reply(const httplib::Result& r) {
    HttpReply out;
    if (!r) return out;
    out.status = r->status;
    out.body = r->body;
    out.json = nlohmann::json::parse(r->body, nullptr, /*allow_exceptions=*/false);
    return out;
  }

  std::unique_ptr<Engine> engine_;
  std::unique_ptr<server::Server> server_;  // declared after the engine: stopped first
};

// Completion request body for greedy decoding of `prompt`.
inline nlohmann::json greedy(const nlohmann::json& prompt, int max_tokens = 4) {
  return {{"model", "test-model"}, {"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}};
}

}  // namespace qswap::testing
