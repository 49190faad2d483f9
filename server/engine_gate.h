// How HTTP requests share one Engine for generation: one at a time (the engine's compute pool is
// shared and requests are not batched), and none failing because of a weight update: during a
// transactional update requests run on the old weights until its commit (the engine sees to
// that); while an in-place update writes the live weights, requests wait for it to end.
#pragma once

#include <chrono>
#include <mutex>

#include "qswap/engine/engine.h"

namespace qswap::server {

class EngineGate {
 public:
  // A request waits at most `servable_timeout` for the weights to become servable.
  EngineGate(Engine& engine, std::chrono::milliseconds servable_timeout);

  Engine& engine() { return engine_; }
  const Engine& engine() const { return engine_; }

  // Engine::generate, one at a time, after waiting out an in-place update. Fails (failed
  // precondition or unavailable) when the weights cannot be served: none loaded, the last
  // in-place update failed, or an update still runs after the timeout.
  Result<GenerateResult> generate(const GenerateRequest& request, const TokenCallback& on_token = {});

  // OK once no in-place update runs and the weights are servable; else why not, at the latest
  // after the servable timeout.
  Status wait_until_servable() const;

 private:
  Status wait_until_servable(std::chrono::steady_clock::time_point deadline) const;

  Engine& engine_;
  std::chrono::milliseconds servable_timeout_;
  std::mutex generate_mutex_;
};

}  // namespace qswap::server
