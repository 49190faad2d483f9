// POST /v1/completions: validates the request, then answers with one JSON object or, with
// "stream": true, with server-sent events (sse.h).
#pragma once

#include <atomic>
#include <string>

#include "server/completion.h"
#include "server/engine_gate.h"
#include "server/metrics.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace qswap::server {

class CompletionHandler {
 public:
  CompletionHandler(EngineGate& gate, Metrics& metrics, std::string model_name, int64_t max_tokens_limit);

  void handle(const httplib::Request& req, httplib::Response& res);

 private:
  void respond(const CompletionJob& job, httplib::Response& res);

  EngineGate& gate_;
  Metrics& metrics_;
  std::string model_name_;
  RequestLimits limits_;
  std::atomic<uint64_t> next_id_{0};
};

}  // namespace qswap::server
