// "stream": true — a completion as server-sent events in OpenAI's format: `data: {chunk}\n\n` per
// piece of text, a last chunk per choice with its finish_reason, optionally a usage chunk, then
// `data: [DONE]\n\n`. Every chunk carries the weight_version of the weights producing it.
#pragma once

#include <memory>

#include "server/completion.h"
#include "server/engine_gate.h"
#include "server/metrics.h"

namespace httplib {
struct Response;
}

namespace qswap::server {

// Sets `res` up to stream `job`; generation runs when httplib pulls the content, on the same
// connection thread. `gate` and `metrics` must outlive the response.
void stream_completion(std::shared_ptr<const CompletionJob> job, EngineGate& gate, Metrics& metrics,
                       httplib::Response& res);

}  // namespace qswap::server
