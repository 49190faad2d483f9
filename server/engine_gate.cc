#include "server/engine_gate.h"

namespace qswap::server {

EngineGate::EngineGate(Engine& engine, std::chrono::milliseconds servable_timeout)
    : engine_(engine), servable_timeout_(servable_timeout) {}

Status EngineGate::wait_until_servable(std::chrono::steady_clock::time_point deadline) const {
  (void)deadline;
  return engine_.check_servable();
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
    // An update that began outside this gate (a weight stream) between the wait and the
    // generation makes the engine refuse before the first token: wait again.
    if (result.ok() || started || engine_.check_servable().ok() || std::chrono::steady_clock::now() >= deadline) {
      return result;
    }
  }
}

Result<UpdateStats> EngineGate::update_from_disk(const std::filesystem::path& dir, std::optional<UpdateMode> mode) {
  if (updating_.exchange(true)) return failed_precondition("another weight update is in progress");
  const UpdateMode effective = mode.value_or(engine_.options().update_mode);
  Result<UpdateStats> result = [&]() -> Result<UpdateStats> {
    if (effective == UpdateMode::kInPlace) {
      // Requests wait here rather than fail on half-written weights.
      std::lock_guard<std::mutex> lock(generate_mutex_);
      return engine_.update_weights_from_disk(dir, effective);
    }
    return engine_.update_weights_from_disk(dir, effective);
  }();
  updating_.store(false);
  return result;
}

}  // namespace qswap::server
