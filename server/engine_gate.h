// How HTTP requests share one Engine: one generation at a time (the engine's compute pool is
// shared and requests are not batched), at most one weight update at a time, and no request
// failing because of an update: a transactional update lets requests run on the old weights until
// its commit; while an in-place update runs, requests wait for it to end.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <optional>

#include "qswap/engine/engine.h"

namespace qswap::server {

class EngineGate {
 public:
  // A request waits at most `servable_timeout` for the weights to become servable.
  EngineGate(Engine& engine, std::chrono::milliseconds servable_timeout);

  Engine& engine() { return engine_; }
  const Engine& engine() const { return engine_; }

  // Engine::generate, serialized with other requests and with this gate's in-place updates.
  // Failed precondition when the weights cannot be served (no weights, a failed in-place update).
  Result<GenerateResult> generate(const GenerateRequest& request, const TokenCallback& on_token = {});

  // Engine::update_weights_from_disk; failed precondition when another update runs.
  Result<UpdateStats> update_from_disk(const std::filesystem::path& dir, std::optional<UpdateMode> mode);

  bool update_running() const { return updating_.load(); }

 private:
  // OK once no in-place update runs and the weights are servable, or why not by `deadline`.
  Status wait_until_servable(std::chrono::steady_clock::time_point deadline) const;

  Engine& engine_;
  std::chrono::milliseconds servable_timeout_;
  std::mutex generate_mutex_;  // held by each generation, and by an in-place update throughout
  std::atomic<bool> updating_{false};
};

}  // namespace qswap::server
