#include "server/completion_handler.h"

#include <chrono>
#include <memory>
#include <random>

#include <fmt/format.h>
#include <httplib.h>

#include "server/sse.h"

namespace qswap::server {

CompletionHandler::CompletionHandler(EngineGate& gate, Metrics& metrics, std::string model_name,
                                     int64_t max_tokens_limit)
    : gate_(gate),
      metrics_(metrics),
      model_name_(std::move(model_name)),
      limits_(request_limits(gate.engine(), max_tokens_limit)) {
  next_id_ = std::random_device{}();
}

void CompletionHandler::handle(const httplib::Request& req, httplib::Response& res) {
  auto job = std::make_shared<CompletionJob>();
  if (auto error = parse_completion_request(req.body, gate_.engine(), limits_, &job->request)) {
    send_error(res, *error);
    return;
  }
  job->id = fmt::format("cmpl-{:016x}", next_id_.fetch_add(1));
  job->created = std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch()).count();
  job->model = model_name_;
  if (job->request.stream) {
    // A stream's 200 goes out before generation: refuse first when the weights cannot be served.
    if (Status servable = gate_.wait_until_servable(); !servable.ok()) {
      send_error(res, api_error_from_status(servable, 503));
      return;
    }
    stream_completion(std::move(job), gate_, metrics_, res);
  } else {
    respond(*job, res);
  }
}

void CompletionHandler::respond(const CompletionJob& job, httplib::Response& res) {
  const CompletionRequest& r = job.request;
  nlohmann::json choices = nlohmann::json::array();
  int64_t generated = 0;
  double seconds = 0;
  uint64_t oldest_version = 0;
  for (size_t i = 0; i < r.num_choices(); ++i) {
    Result<GenerateResult> result = gate_.generate(choice_request(r, i));
    if (!result.ok()) {
      send_error(res, api_error_from_status(result.status(), 503));
      return;
    }
    nlohmann::json logprobs = nullptr;
    if (r.logprobs) logprobs = LogprobsBuilder(gate_.engine().tokenizer(), *result, *r.logprobs).all();
    choices.push_back(choice_json(i, result->text, std::move(logprobs), result->finish_reason, result->weight_version));
    generated += static_cast<int64_t>(result->tokens.size());
    seconds += result->prefill_seconds + result->decode_seconds;
    oldest_version = i == 0 ? result->weight_version : std::min(oldest_version, result->weight_version);
  }
  metrics_.record_generation(prompt_tokens(r), generated, seconds);
  // Each choice names the weights that produced it; the top level names the oldest of them.
  nlohmann::json body = completion_envelope(job, oldest_version);
  body["choices"] = std::move(choices);
  body["usage"] = usage_json(prompt_tokens(r), generated);
  send_json(res, 200, body);
}

}  // namespace qswap::server
