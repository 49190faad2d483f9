#include "qswap/engine/engine.h"

#include <fstream>
#include <string>

#include "qswap/base/log.h"
#include "qswap/io/safetensors.h"
#include "qswap/io/tensor_source.h"

namespace qswap {

std::string_view update_mode_name(UpdateMode mode) {
  return mode == UpdateMode::kInPlace ? "in-place" : "transactional";
}

Result<UpdateMode> parse_update_mode(std::string_view name) {
  if (name == "in-place") return UpdateMode::kInPlace;
  if (name == "transactional") return UpdateMode::kTransactional;
  return invalid_argument("unknown update mode '{}' (expected in-place or transactional)", name);
}

size_t peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;  // "VmHWM:  1234 kB"
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// WeightUpdate

WeightUpdate::WeightUpdate(Engine& engine, UpdateMode mode, ProgressCallback progress)
    : engine_(engine), mode_(mode), start_(std::chrono::steady_clock::now()) {
  if (mode == UpdateMode::kTransactional) {
    if (!engine.shadow_) engine.shadow_ = std::make_unique<KernelStore>(engine.map_, *engine.scheme_);
    target_ = engine.shadow_.get();
  } else {
    target_ = &engine.live_;
    std::lock_guard<std::mutex> state(engine.state_mutex_);
    engine.in_place_running_ = true;
    engine.serving_error_ = failed_precondition("an in-place weight update is in progress");
  }
  LoaderOptions options;
  options.allow_unknown = engine.options_.allow_unknown;
  options.quant = QuantContext{engine.options_.reference_kernels, &engine.pool_};
  loader_ = std::make_unique<LayerwiseLoader>(engine.map_, *engine.scheme_, *target_, options);
  if (progress) {
    const int total = engine.map_.num_units();
    loader_->on_unit_done([this, progress, total](int) {
      progress(loader_->stats().units_completed, total, loader_->stats().bytes_in);
    });
  }
}

WeightUpdate::~WeightUpdate() {
  if (!done_) abort(aborted("weight update abandoned before commit"));
}

Status WeightUpdate::add(const IncomingTensor& tensor) {
  if (done_) return failed_precondition("weight update already ended");
  // In-place writes the live tensors: no forward pass may read them meanwhile.
  std::unique_lock<std::shared_mutex> lock;
  if (mode_ == UpdateMode::kInPlace) lock = engine_.lock_for_writing();
  Status s = loader_->add(tensor);
  if (!s.ok()) abort(s);
  return s;
}

void WeightUpdate::abort(const Status& reason) {
  if (done_) return;
  done_ = true;
  {
    std::lock_guard<std::mutex> state(engine_.state_mutex_);
    engine_.update_running_ = false;
    engine_.in_place_running_ = false;
    if (mode_ == UpdateMode::kInPlace) {
      engine_.serving_error_ = failed_precondition(
          "the last in-place weight update failed ({}); generation is refused until a complete update arrives",
          reason.message());
    }
  }
  engine_.state_changed_.notify_all();
  QSWAP_LOG_WARN("update aborted mode={} reason=\"{}\"", update_mode_name(mode_), reason.message());
}

Result<UpdateStats> WeightUpdate::commit() {
  if (done_) return failed_precondition("weight update already ended");
  Status s = loader_->finalize();
  if (!s.ok()) {
    abort(s);
    return s;
  }
  {
    std::unique_lock<std::shared_mutex> lock = engine_.lock_for_writing();
    if (mode_ == UpdateMode::kTransactional) engine_.live_.copy_from(*target_, &engine_.pool_);
    if (!engine_.model_) {
      // Addresses never change after this: bind the forward pass to them once.
      Result<ModelWeights> weights = bind_model_weights(engine_.map_, engine_.live_, engine_.scheme_->kind());
      if (!weights.ok()) {
        abort(weights.status());
        return weights.status();
      }
      engine_.model_ = std::make_unique<Transformer>(engine_.map_.config(), std::move(weights).value());
    }
  }
  done_ = true;
  const LoadStats& ls = loader_->stats();
  UpdateStats stats;
  stats.version = engine_.version_ + 1;
  stats.mode = mode_;
  stats.tensors = ls.tensors;
  stats.bytes_in = ls.bytes_in;
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  stats.peak_staging_bytes = ls.peak_staging_bytes;
  stats.max_units_staging = ls.max_units_staging;
  stats.units_completed = ls.units_completed;
  stats.peak_rss_bytes = peak_rss_bytes();
  stats.warnings = ls.warnings;
  {
    std::lock_guard<std::mutex> state(engine_.state_mutex_);
    engine_.version_ = stats.version;
    engine_.update_running_ = false;
    engine_.in_place_running_ = false;
    engine_.serving_error_ = Status();
    engine_.last_update_ = stats;
  }
  engine_.state_changed_.notify_all();
  QSWAP_LOG_INFO("update committed version={} mode={} tensors={} bytes_in={} seconds={:.3f} peak_staging={}",
                 stats.version, update_mode_name(mode_), stats.tensors, stats.bytes_in, stats.seconds,
                 stats.peak_staging_bytes);
  return stats;
}

// ---------------------------------------------------------------------------------------------
// Engine

Engine::Engine(WeightMap map, std::unique_ptr<QuantScheme> scheme, const EngineOptions& options)
    : map_(std::move(map)),
      scheme_(std::move(scheme)),
      options_(options),
      pool_(options.threads),
      live_(map_, *scheme_),
      serving_error_(failed_precondition("no weights have been loaded")) {}

Result<std::unique_ptr<Engine>> Engine::create(const ModelConfig& config, const EngineOptions& options) {
  QSWAP_ASSIGN_OR_RETURN(WeightMap map, WeightMap::build(config));
  QSWAP_ASSIGN_OR_RETURN(std::unique_ptr<QuantScheme> scheme, make_quant_scheme(options.quant));
  return std::unique_ptr<Engine>(new Engine(std::move(map), std::move(scheme), options));
}

Result<std::unique_ptr<Engine>> Engine::load(const std::filesystem::path& dir, const EngineOptions& options,
                                             ProgressCallback progress) {
  QSWAP_ASSIGN_OR_RETURN(ModelConfig config, load_model_config(dir));
  QSWAP_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, create(config, options));
  if (std::filesystem::exists(dir / "tokenizer.json")) {
    QSWAP_ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::load(dir / "tokenizer.json"));
    engine->tokenizer_ = std::make_unique<Tokenizer>(std::move(tokenizer));
  }
  // The first load is an update into kernel tensors that do not exist yet: nothing to protect.
  QSWAP_RETURN_IF_ERROR(
      engine->update_weights_from_disk(dir, UpdateMode::kInPlace, std::move(progress)).status());
  return engine;
}

Result<std::unique_ptr<WeightUpdate>> Engine::begin_update(std::optional<UpdateMode> mode, ProgressCallback progress) {
  {
    std::lock_guard<std::mutex> state(state_mutex_);
    if (update_running_) return failed_precondition("another weight update is in progress");
    update_running_ = true;
  }
  return std::unique_ptr<WeightUpdate>(new WeightUpdate(*this, mode.value_or(options_.update_mode), std::move(progress)));
}

Result<UpdateStats> Engine::update_weights(const TensorSource& source, std::optional<UpdateMode> mode,
                                           ProgressCallback progress, std::span<const size_t> order) {
  const std::vector<TensorInfo>& infos = source.tensors();
  if (!order.empty() && order.size() != infos.size()) {
    return invalid_argument("order lists {} of the {} tensors of {}", order.size(), infos.size(), source.describe());
  }
  QSWAP_ASSIGN_OR_RETURN(std::unique_ptr<WeightUpdate> update, begin_update(mode, std::move(progress)));
  Buffer copy;  // for sources that cannot lend their bytes
  for (size_t i = 0; i < infos.size(); ++i) {
    const TensorInfo& info = infos[order.empty() ? i : order[i]];
    std::span<const std::byte> bytes;
    Result<std::span<const std::byte>> borrowed = source.borrow(info);
    if (borrowed.ok()) {
      bytes = *borrowed;
    } else {
      if (copy.size() < info.nbytes) copy = Buffer(info.nbytes);
      Status s = source.read(info, 0, std::span<std::byte>(copy.data(), info.nbytes));
      if (!s.ok()) {
        update->abort(s);
        return std::move(s).with_context(source.describe());
      }
      bytes = std::span<const std::byte>(copy.data(), info.nbytes);
    }
    QSWAP_RETURN_IF_ERROR(update->add(IncomingTensor{info.name, info.dtype, info.shape, bytes})
                              .with_context(source.describe()));
  }
  return update->commit();
}

Result<UpdateStats> Engine::update_weights_from_disk(const std::filesystem::path& dir, std::optional<UpdateMode> mode,
                                                     ProgressCallback progress) {
  QSWAP_ASSIGN_OR_RETURN(std::unique_ptr<TensorSource> source, open_safetensors_dir(dir));
  return update_weights(*source, mode, std::move(progress));
}

Status Engine::check_servable() const {
  std::lock_guard<std::mutex> state(state_mutex_);
  return serving_error_;
}

Status Engine::wait_until_servable(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> state(state_mutex_);
  if (!state_changed_.wait_for(state, timeout, [this] { return !in_place_running_; })) {
    return unavailable("an in-place weight update is still running after {} ms", timeout.count());
  }
  return serving_error_;
}

bool Engine::update_in_progress() const {
  std::lock_guard<std::mutex> state(state_mutex_);
  return update_running_;
}

std::optional<UpdateStats> Engine::last_update() const {
  std::lock_guard<std::mutex> state(state_mutex_);
  return last_update_;
}

std::shared_lock<std::shared_mutex> Engine::lock_for_reading() const {
  std::lock_guard<std::mutex> turn(turnstile_);
  return std::shared_lock<std::shared_mutex>(weights_mutex_);
}

std::unique_lock<std::shared_mutex> Engine::lock_for_writing() const {
  std::lock_guard<std::mutex> turn(turnstile_);
  return std::unique_lock<std::shared_mutex>(weights_mutex_);
}

}  // namespace qswap
