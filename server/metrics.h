// Server metrics in Prometheus' text exposition format 0.0.4: requests, tokens and generation
// time (tokens/s derive from them), and weight updates (count, failures, time, staging memory,
// the last error). Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "qswap/engine/engine.h"

namespace qswap::server {

class Metrics {
 public:
  // `endpoint` is a known route or "other" (label values stay few).
  void record_request(std::string_view endpoint, int http_status);
  // One completion request: its prompt tokens (each prompt once), generated tokens, and the
  // seconds spent generating them (prefill and decode).
  void record_generation(int64_t prompt_tokens, int64_t generated_tokens, double seconds);
  // A weight update, successful or not (a success clears the last error).
  void record_update(const Result<UpdateStats>& result);
  // Staging memory of a load that is not counted as an update (the initial load).
  void set_peak_staging_bytes(size_t bytes);

  std::string render(uint64_t weight_version) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  uint64_t prompt_tokens_ = 0, generated_tokens_ = 0, generation_requests_ = 0;
  double generation_seconds_ = 0, last_tokens_per_second_ = 0;
  uint64_t updates_ = 0, updates_failed_ = 0;
  double update_seconds_total_ = 0, update_seconds_last_ = 0;
  size_t peak_staging_bytes_ = 0;
  std::optional<std::string> last_update_error_;
};

// A label value as the text format writes it: backslash, double quote and newline escaped.
std::string escape_label_value(std::string_view value);

// The route a request path is counted under.
std::string_view endpoint_label(std::string_view path);

}  // namespace qswap::server
