#include "server/metrics.h"

#include <array>

#include <fmt/format.h>

namespace qswap::server {
namespace {

constexpr std::array<std::string_view, 5> kEndpoints = {"/v1/completions", "/v1/models", "/health", "/metrics",
                                                        "/update_weights_from_disk"};

// "# HELP name text\n# TYPE name type\n"
void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void sample(std::string& out, std::string_view name, double value) {
  fmt::format_to(std::back_inserter(out), "{} {}\n", name, value);
}

void sample(std::string& out, std::string_view name, uint64_t value) {
  fmt::format_to(std::back_inserter(out), "{} {}\n", name, value);
}

// A metric with one unlabelled sample: its header, then its value.
template <typename T>
void metric(std::string& out, std::string_view name, std::string_view type, std::string_view help, T value) {
  header(out, name, type, help);
  sample(out, name, value);
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

std::string_view endpoint_label(std::string_view path) {
  for (std::string_view e : kEndpoints) {
    if (path == e) return e;
  }
  return "other";
}

void Metrics::record_request(std::string_view endpoint, int http_status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{std::string(endpoint), http_status}];
}

void Metrics::record_generation(int64_t prompt_tokens, int64_t generated_tokens, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++generation_requests_;
  prompt_tokens_ += static_cast<uint64_t>(prompt_tokens);
  generated_tokens_ += static_cast<uint64_t>(generated_tokens);
  generation_seconds_ += seconds;
  last_tokens_per_second_ = seconds > 0 ? static_cast<double>(generated_tokens) / seconds : 0.0;
}

void Metrics::record_update(const Result<UpdateStats>& result) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++updates_;
  if (!result.ok()) {
    ++updates_failed_;
    last_update_error_ = result.status().to_string();
    return;
  }
  last_update_error_.reset();
  update_seconds_last_ = result->seconds;
  update_seconds_total_ += result->seconds;
  peak_staging_bytes_ = result->peak_staging_bytes;
}

void Metrics::set_peak_staging_bytes(size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  peak_staging_bytes_ = bytes;
}

std::string Metrics::render(uint64_t weight_version) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  header(out, "qswap_http_requests_total", "counter", "HTTP requests answered, by endpoint and status code.");
  for (const auto& [key, count] : requests_) {
    fmt::format_to(std::back_inserter(out), "qswap_http_requests_total{{endpoint=\"{}\",code=\"{}\"}} {}\n",
                   escape_label_value(key.first), key.second, count);
  }
  metric(out, "qswap_completion_requests_total", "counter",
         "Completion requests that generated.", generation_requests_);
  metric(out, "qswap_prompt_tokens_total", "counter",
         "Prompt tokens processed (each prompt once per request).", prompt_tokens_);
  metric(out, "qswap_generation_tokens_total", "counter", "Tokens generated.", generated_tokens_);
  metric(out, "qswap_generation_seconds_total", "counter",
         "Seconds spent generating (prefill and decode); tokens/s = rate of tokens over rate of seconds.",
         generation_seconds_);
  metric(out, "qswap_last_request_tokens_per_second", "gauge",
         "Generated tokens per generation second of the last completion request.", last_tokens_per_second_);
  metric(out, "qswap_weight_updates_total", "counter", "Weight updates attempted after the initial load.", updates_);
  metric(out, "qswap_weight_updates_failed_total", "counter", "Weight updates that failed.", updates_failed_);
  metric(out, "qswap_weight_update_seconds_last", "gauge",
         "Seconds the last successful weight update took.", update_seconds_last_);
  metric(out, "qswap_weight_update_seconds_total", "counter",
         "Seconds spent in successful weight updates.", update_seconds_total_);
  metric(out, "qswap_weight_version", "gauge",
         "Version of the weights being served (1: the initial load).", weight_version);
  metric(out, "qswap_weight_update_peak_staging_bytes", "gauge",
         "Peak staging memory of the last successful load or update, in bytes.",
         static_cast<uint64_t>(peak_staging_bytes_));
  header(out, "qswap_weight_update_last_error_info", "gauge",
         "1 with the error as a label while the last weight update failed; absent after a success.");
  if (last_update_error_) {
    fmt::format_to(std::back_inserter(out), "qswap_weight_update_last_error_info{{message=\"{}\"}} 1\n",
                   escape_label_value(*last_update_error_));
  }
  return out;
}

}  // namespace qswap::server
