#include "server/sse.h"

#include <algorithm>

#include <httplib.h>

#include "qswap/base/log.h"
#include "server/api_error.h"

namespace qswap::server {
namespace {

class EventWriter {
 public:
  explicit EventWriter(httplib::DataSink& sink) : sink_(sink) {}

  // False once the client has gone: nothing more is sent.
  bool send(const nlohmann::json& chunk) { return write("data: " + dump_json(chunk) + "\n\n"); }
  bool done() { return write("data: [DONE]\n\n"); }
  bool ok() const { return ok_; }

 private:
  bool write(const std::string& event) {
    ok_ = ok_ && sink_.write(event.data(), event.size());
    return ok_;
  }

  httplib::DataSink& sink_;
  bool ok_ = true;
};

nlohmann::json chunk(const CompletionJob& job, size_t index, std::string_view text, nlohmann::json logprobs,
                     nlohmann::json finish_reason, uint64_t version) {
  nlohmann::json c = completion_envelope(job, version);
  c["choices"].push_back(choice_json(index, text, std::move(logprobs), std::move(finish_reason), version));
  return c;
}

// Streams every choice; returns false when the client went away.
bool run_stream(const CompletionJob& job, EngineGate& gate, Metrics& metrics, httplib::DataSink& sink) {
  const CompletionRequest& r = job.request;
  EventWriter out(sink);
  int64_t generated = 0;
  double seconds = 0;
  uint64_t oldest_version = 0;
  for (size_t i = 0; i < r.num_choices() && out.ok(); ++i) {
    size_t streamed = 0;              // bytes of the choice's text sent so far
    std::vector<std::string> pieces;  // with logprobs: the text of each token, sent after generation
    uint64_t version = 0;
    Result<GenerateResult> result = gate.generate(choice_request(r, i), [&](int32_t, std::string_view piece) {
      // Generation holds the weights: the version read at the first token is the one producing it.
      if (version == 0) version = gate.engine().weight_version();
      if (r.logprobs) {
        pieces.emplace_back(piece);
        return true;
      }
      if (piece.empty()) return true;
      streamed += piece.size();
      return out.send(chunk(job, i, piece, nullptr, nullptr, version));
    });
    if (!result.ok()) {
      out.send(error_json(api_error_from_status(result.status(), 503)));
      break;
    }
    version = result->weight_version;
    if (r.logprobs) {
      // The engine reports logprobs with the result, so each token's chunk follows generation.
      LogprobsBuilder logprobs(gate.engine().tokenizer(), *result, *r.logprobs);
      for (size_t t = 0; t < pieces.size() && out.ok(); ++t) {
        streamed += pieces[t].size();
        out.send(chunk(job, i, pieces[t], logprobs.slice(t, t + 1), nullptr, version));
      }
    }
    // Text held back while it could still become a stop string, or an incomplete UTF-8 tail.
    const std::string_view rest =
        streamed < result->text.size() ? std::string_view(result->text).substr(streamed) : std::string_view();
    out.send(chunk(job, i, rest, nullptr, result->finish_reason, version));
    generated += static_cast<int64_t>(result->tokens.size());
    seconds += result->prefill_seconds + result->decode_seconds;
    oldest_version = i == 0 ? version : std::min(oldest_version, version);
  }
  metrics.record_generation(prompt_tokens(r), generated, seconds);
  if (r.include_usage) {
    nlohmann::json usage = completion_envelope(job, oldest_version);
    usage["usage"] = usage_json(prompt_tokens(r), generated);
    out.send(usage);
  }
  out.done();
  if (out.ok()) sink.done();
  return out.ok();
}

}  // namespace

void stream_completion(std::shared_ptr<const CompletionJob> job, EngineGate& gate, Metrics& metrics,
                       httplib::Response& res) {
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider("text/event-stream", [job, &gate, &metrics](size_t, httplib::DataSink& sink) {
    try {
      return run_stream(*job, gate, metrics, sink);
    } catch (const std::exception& e) {  // httplib does not catch exceptions of content providers
      QSWAP_LOG_ERROR("completion stream {} failed: {}", job->id, e.what());
      return false;
    }
  });
}

}  // namespace qswap::server
