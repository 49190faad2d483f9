// The public facade: load a model directory, update its weights in place (from files, memory or a
// stream), and tell front ends what happened. Front ends (CLI, server, Python) use only this.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "qswap/base/thread_pool.h"
#include "qswap/io/model_config.h"
#include "qswap/load/kernel_store.h"
#include "qswap/load/layerwise_loader.h"
#include "qswap/model/sampler.h"
#include "qswap/model/tokenizer.h"
#include "qswap/model/transformer.h"
#include "qswap/model/weight_map.h"
#include "qswap/quant/scheme.h"

namespace qswap {

class TensorSource;

// in-place: writes the live kernel tensors as data arrives; serving is refused until the update
//   completes (and after one fails, until a complete update arrives).
// transactional: quantizes into a shadow copy, validates everything, then copies it into the live
//   tensors; on any failure the live weights are untouched.
enum class UpdateMode { kInPlace, kTransactional };
std::string_view update_mode_name(UpdateMode mode);
Result<UpdateMode> parse_update_mode(std::string_view name);

struct EngineOptions {
  std::string quant = "none";
  UpdateMode update_mode = UpdateMode::kTransactional;
  int threads = 0;             // 0: all hardware threads
  bool allow_unknown = false;  // skip unknown checkpoint tensors with a warning
  bool reference_kernels = false;
};

struct UpdateStats {
  uint64_t version = 0;          // weight version after the update
  UpdateMode mode = UpdateMode::kTransactional;
  int64_t tensors = 0;
  int64_t bytes_in = 0;
  double seconds = 0;
  size_t peak_staging_bytes = 0;
  int max_units_staging = 0;
  int units_completed = 0;
  size_t peak_rss_bytes = 0;
  std::vector<std::string> warnings;
};

struct GenerateRequest {
  std::vector<int32_t> prompt;     // token ids
  SamplingParams sampling;
  std::vector<std::string> stop;   // stop strings (matched in the decoded text, excluded from it)
  bool ignore_eos = false;
};

struct GenerateResult {
  std::vector<int32_t> tokens;     // generated ids, without the prompt
  std::vector<float> logprobs;     // log p(token) under the weights that produced it
  // Per generated token, the sampling.top_logprobs most likely tokens at that step (else empty).
  std::vector<std::vector<TokenLogprob>> top_logprobs;
  std::string text;
  std::string finish_reason;       // "stop" (EOS or stop string) or "length"
  uint64_t weight_version = 0;     // every token came from this version
  int64_t prompt_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0;
};

struct PerplexityResult {
  double perplexity = 0;
  double nll_sum = 0;
  int64_t tokens_scored = 0;
  uint64_t weight_version = 0;
  double seconds = 0;
};

// Called with each generated token and the text it completes (possibly empty while a UTF-8
// sequence is open); return false to stop early.
using TokenCallback = std::function<bool(int32_t token, std::string_view text)>;

// Progress of a running update: units (layers) completed out of the total.
using ProgressCallback = std::function<void(int units_done, int units_total, int64_t bytes_in)>;

class Engine;

// One weight update in progress. Feed tensors in any order, then commit() (or let it go out of
// scope to abort). Only one update runs at a time.
class WeightUpdate {
 public:
  WeightUpdate(WeightUpdate&&) = delete;
  ~WeightUpdate();

  Status add(const IncomingTensor& tensor);
  Result<UpdateStats> commit();  // completes the update; a failed commit leaves it aborted
  void abort(const Status& reason);
  const LoadStats& stats() const { return loader_->stats(); }

 private:
  friend class Engine;
  WeightUpdate(Engine& engine, UpdateMode mode, ProgressCallback progress);

  Engine& engine_;
  UpdateMode mode_;
  KernelStore* target_;
  std::unique_ptr<LayerwiseLoader> loader_;
  std::chrono::steady_clock::time_point start_;
  bool done_ = false;
};

class Engine {
 public:
  // Reads DIR/config.json, declares the kernel tensors, and loads DIR's safetensors through the
  // same path every update takes.
  static Result<std::unique_ptr<Engine>> load(const std::filesystem::path& dir, const EngineOptions& options,
                                              ProgressCallback progress = {});
  // Declares the model without loading any weight (every parameter in the meta state).
  static Result<std::unique_ptr<Engine>> create(const ModelConfig& config, const EngineOptions& options);

  Result<std::unique_ptr<WeightUpdate>> begin_update(std::optional<UpdateMode> mode = std::nullopt,
                                                     ProgressCallback progress = {});
  // Every tensor of `source`, in `order` (indices into source.tensors(); empty: file order).
  Result<UpdateStats> update_weights(const TensorSource& source, std::optional<UpdateMode> mode = std::nullopt,
                                     ProgressCallback progress = {}, std::span<const size_t> order = {});
  Result<UpdateStats> update_weights_from_disk(const std::filesystem::path& dir,
                                               std::optional<UpdateMode> mode = std::nullopt,
                                               ProgressCallback progress = {});

  // OK when the live weights are complete and consistent; else why generation must wait.
  Status check_servable() const;
  // Waits up to `timeout` while an in-place update is writing the live weights, then returns
  // check_servable(). Front ends use it to hold requests during an update instead of failing them.
  Status wait_until_servable(std::chrono::milliseconds timeout) const;
  bool update_in_progress() const;
  uint64_t weight_version() const { return version_.load(); }
  std::optional<UpdateStats> last_update() const;

  const ModelConfig& config() const { return map_.config(); }
  const WeightMap& weight_map() const { return map_; }
  const QuantScheme& scheme() const { return *scheme_; }
  const KernelStore& weights() const { return live_; }
  const EngineOptions& options() const { return options_; }
  ThreadPool& pool() { return pool_; }

  // Writes the kernel tensors as safetensors plus a config.json with a quantization_config.
  Status export_checkpoint(const std::filesystem::path& out_dir) const;

  // Generation and scoring (generate.cc). Each call runs entirely on one weight version: a
  // transactional commit waits for calls in flight; during an in-place update they fail.
  const Tokenizer* tokenizer() const { return tokenizer_.get(); }
  Result<std::vector<int32_t>> tokenize(std::string_view text) const;
  Result<GenerateResult> generate(const GenerateRequest& request, const TokenCallback& on_token = {});
  // Sliding windows of `context` tokens advancing by `stride`, as in Hugging Face's perplexity
  // guide: each token after the first is scored once, with up to context - 1 tokens before it.
  Result<PerplexityResult> perplexity(std::span<const int32_t> tokens, int64_t context, int64_t stride,
                                      const std::function<void(int64_t done, int64_t total)>& progress = {});
  // Logits [positions, vocab] of one forward pass from an empty cache (tests, debugging).
  Result<std::vector<float>> logits(std::span<const int32_t> tokens, bool all_positions);

 private:
  friend class WeightUpdate;
  Engine(WeightMap map, std::unique_ptr<QuantScheme> scheme, const EngineOptions& options);

  WeightMap map_;
  std::unique_ptr<QuantScheme> scheme_;
  EngineOptions options_;
  ThreadPool pool_;
  KernelStore live_;
  std::unique_ptr<KernelStore> shadow_;  // transactional updates; allocated on first use, kept
  std::atomic<uint64_t> version_{0};
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Transformer> model_;     // bound to live_ once its tensors exist

  // Update state, guarded by state_mutex_; state_changed_ is notified whenever an update ends.
  mutable std::mutex state_mutex_;
  mutable std::condition_variable state_changed_;
  bool update_running_ = false;
  bool in_place_running_ = false;
  Status serving_error_;                 // why the live weights cannot be served (in-place mode)
  std::optional<UpdateStats> last_update_;

  // Shared: forward passes (one whole generation); exclusive: writes to live_. A writer holds
  // turnstile_ while it waits, so a steady stream of requests cannot starve a commit (glibc's
  // rwlock prefers readers).
  std::shared_lock<std::shared_mutex> lock_for_reading() const;
  std::unique_lock<std::shared_mutex> lock_for_writing() const;
  mutable std::mutex turnstile_;
  mutable std::shared_mutex weights_mutex_;
};

size_t peak_rss_bytes();  // VmHWM of this process

}  // namespace qswap
