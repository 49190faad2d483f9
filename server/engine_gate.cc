#include "server/engine_gate.h"

#include <algorithm>

namespace qswap::server {

EngineGate::EngineGate(Engine& engine, std::chrono::milliseconds servable_timeout)
    : engine_(engine), servable_timeout_(servable_timeout) {}

Status EngineGate::wait_until_servable(std::chrono::steady_clock::time_point deadline) const {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return engine_.wait_until_servable(std::max(left, std::chrono::milliseconds(0)));
}

Status EngineGate::wait_until_servable() const {
  return wait_until_servable(std::chrono::steady_clock::now() + servable_timeout_);
}

Result<GenerateResult> EngineGate::generate(const GenerateRequest& request, const TokenCallback& on_token) {
  const auto deadline = std::chrono::steady_clock::now() + servable_timeout_;
  bool started = false;  // a token went out: the request can no longer be retried
  const TokenCallback callback = [&](int32_t token, std::string_view text) {
    started = true;
    return on_token ? on_token(token, text) : true;
  };
  std::lock_guard<std::mutex> lock(generate_mutex_);
  for (;;) {
    QSWAP_RETURN_IF_ERROR(wait_until_servable(deadline).with_context("cannot generate"));
    Result<GenerateResult> result = engine_.generate(request, callback);
    // An in-place update that began between the wait and the generation makes the engine refuse
    // before the first token: wait for it again.
    if (result.ok() || started || engine_.check_servable().ok() || std::chrono::steady_clock::now() >= deadline) {
      return result;
    }
  }
}

}  // namespace qswap::server
