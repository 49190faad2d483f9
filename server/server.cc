#include "server/server.h"

#include <atomic>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>

#include "qswap/base/log.h"
#include "server/api_error.h"
#include "server/completion_handler.h"
#include "server/engine_gate.h"
#include "server/metrics.h"

namespace qswap::server {
namespace {

constexpr size_t kMaxBodyBytes = size_t{64} << 20;

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

nlohmann::json update_stats_json(const UpdateStats& s) {
  return {{"success", true},
          {"weight_version", s.version},
          {"mode", update_mode_name(s.mode)},
          {"tensors", s.tensors},
          {"bytes_in", s.bytes_in},
          {"seconds", s.seconds},
          {"peak_staging_bytes", s.peak_staging_bytes},
          {"max_units_staging", s.max_units_staging},
          {"units_completed", s.units_completed},
          {"peak_rss_bytes", s.peak_rss_bytes},
          {"warnings", s.warnings}};
}

// {"path": DIR, "mode": optional}
std::optional<ApiError> parse_update_request(const std::string& body, std::string* path,
                                             std::optional<UpdateMode>* mode) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return invalid_request("", "the request body must be a JSON object {\"path\": DIR, \"mode\": optional}",
                           "invalid_json");
  }
  for (const auto& [key, value] : j.items()) {
    if (key != "path" && key != "mode") {
      return invalid_request(key, fmt::format("unrecognized request argument supplied: '{}'", key),
                             "unknown_parameter");
    }
  }
  auto p = j.find("path");
  if (p == j.end() || !p->is_string() || p->get_ref<const std::string&>().empty()) {
    return invalid_request("path", "'path' must be a non-empty string naming a model directory");
  }
  *path = p->get<std::string>();
  auto m = j.find("mode");
  if (m != j.end() && !m->is_null()) {
    if (!m->is_string()) return invalid_request("mode", "'mode' must be \"in-place\" or \"transactional\"");
    Result<UpdateMode> parsed = parse_update_mode(m->get<std::string>());
    if (!parsed.ok()) return invalid_request("mode", parsed.status().message());
    *mode = *parsed;
  }
  return std::nullopt;
}

}  // namespace

struct Server::Impl {
  Impl(Engine& e, ServerOptions o)
      : engine(e),
        options(std::move(o)),
        gate(e, options.servable_timeout),
        completions(gate, metrics, options.model_name, options.max_tokens_limit),
        started_at(unix_seconds()) {}

  void routes();
  void models(httplib::Response& res);
  void health(httplib::Response& res);
  void update(const httplib::Request& req, httplib::Response& res);

  Engine& engine;
  ServerOptions options;
  Metrics metrics;
  EngineGate gate;
  CompletionHandler completions;
  int64_t started_at;
  httplib::Server http;
  std::thread thread;
  std::atomic<bool> listen_returned{false};
  int port = -1;
};

void Server::Impl::routes() {
  http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    completions.handle(req, res);
  });
  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) { models(res); });
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) { health(res); });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.render(engine.weight_version()), "text/plain; version=0.0.4; charset=utf-8");
  });
  http.Post("/update_weights_from_disk",
            [this](const httplib::Request& req, httplib::Response& res) { update(req, res); });

  // Unknown paths (and httplib's own errors) answer in OpenAI's error shape too.
  http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string message = fmt::format("HTTP {} for {} {}", res.status, req.method, req.path);
    if (res.status == 404) message = fmt::format("unknown endpoint: {} {}", req.method, req.path);
    if (res.status == 413) {
      message = fmt::format("the request body is too large (at most {} MiB as application/json)", kMaxBodyBytes >> 20);
    }
    res.set_content(dump_json(error_json(ApiError{res.status, message, "", ""})), "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    QSWAP_LOG_ERROR("{} {} failed: {}", req.method, req.path, what);
    send_error(res, ApiError{500, fmt::format("internal error: {}", what), "", "internal_error"});
  });
  // Counted as the response goes out (httplib's logger runs only after it has been sent, when the
  // client may already have asked for /metrics).
  http.set_post_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    metrics.record_request(endpoint_label(req.path), res.status);
  });
  http.set_payload_max_length(kMaxBodyBytes);
  const size_t threads = static_cast<size_t>(std::max(1, options.http_threads));
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
}

void Server::Impl::models(httplib::Response& res) {
  nlohmann::json model = {{"id", options.model_name},
                          {"object", "model"},
                          {"created", started_at},
                          {"owned_by", "qswap"},
                          {"max_model_len", engine.config().max_position_embeddings},
                          {"quant", engine.options().quant},
                          {"weight_version", engine.weight_version()}};
  send_json(res, 200, {{"object", "list"}, {"data", nlohmann::json::array({model})}});
}

void Server::Impl::health(httplib::Response& res) {
  const Status servable = engine.check_servable();
  nlohmann::json body = {{"status", servable.ok() ? "ok" : "unavailable"},
                         {"weight_version", engine.weight_version()},
                         {"update_running", engine.update_in_progress()}};
  if (!servable.ok()) body["reason"] = servable.message();
  send_json(res, servable.ok() ? 200 : 503, body);
}

void Server::Impl::update(const httplib::Request& req, httplib::Response& res) {
  std::string path;
  std::optional<UpdateMode> mode;
  if (auto error = parse_update_request(req.body, &path, &mode)) {
    send_error(res, *error);
    return;
  }
  Result<UpdateStats> result = engine.update_weights_from_disk(path, mode);
  // A refusal to start (another update runs) is not an update that failed.
  if (result.ok() || result.status().code() != StatusCode::kFailedPrecondition) metrics.record_update(result);
  if (!result.ok()) {
    send_error(res, api_error_from_status(result.status(), 409));
    return;
  }
  send_json(res, 200, update_stats_json(*result));
}

Server::Server(Engine& engine, ServerOptions options) : impl_(std::make_unique<Impl>(engine, std::move(options))) {
  if (std::optional<UpdateStats> load = engine.last_update()) impl_->metrics.set_peak_staging_bytes(load->peak_staging_bytes);
  impl_->routes();
}

Server::~Server() { stop(); }

Status Server::start() {
  if (impl_->thread.joinable()) return failed_precondition("the server is already running");
  const ServerOptions& o = impl_->options;
  if (o.port == 0) {
    impl_->port = impl_->http.bind_to_any_port(o.host);
  } else {
    impl_->port = impl_->http.bind_to_port(o.host, o.port) ? o.port : -1;
  }
  if (impl_->port < 0) return io_error("cannot listen on {}:{} (address in use or not available)", o.host, o.port);
  impl_->listen_returned = false;
  impl_->thread = std::thread([this] {
    impl_->http.listen_after_bind();
    impl_->listen_returned = true;
  });
  // httplib's stop() does nothing until listening has begun: make sure it has.
  while (!impl_->http.is_running() && !impl_->listen_returned) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!impl_->http.is_running()) {
    impl_->thread.join();
    return io_error("the server on {}:{} stopped as it started", o.host, impl_->port);
  }
  QSWAP_LOG_INFO("serving {} on http://{}:{}", o.model_name, o.host, impl_->port);
  return Status();
}

void Server::stop() {
  impl_->http.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int Server::port() const { return impl_->port; }

void Server::record_update(const Result<UpdateStats>& result) { impl_->metrics.record_update(result); }

std::string Server::metrics_text() const { return impl_->metrics.render(impl_->engine.weight_version()); }

}  // namespace qswap::server
