// Errors as OpenAI's API reports them: {"error": {"message", "type", "param", "code"}}, and the
// JSON helpers every handler uses to answer.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "qswap/base/status.h"

namespace httplib {
struct Response;
}

namespace qswap::server {

struct ApiError {
  int http_status = 400;
  std::string message;
  std::string param;  // the request field at fault; empty: null
  std::string code;   // a short machine-readable reason; empty: null
};

// A 400 naming the field: invalid_request("max_tokens", "max_tokens must be ...").
ApiError invalid_request(std::string param, std::string message, std::string code = "invalid_value");

// An engine Status as an HTTP error: bad input 400, a refused state (failed precondition, aborted)
// `refused_status` (409 for an update that collides with another, 503 for generation on weights
// that cannot be served), unavailable 503, the rest 5xx.
ApiError api_error_from_status(const Status& status, int refused_status = 409);

// OpenAI's error type for an HTTP status ("invalid_request_error", "server_error", ...).
std::string_view error_type(int http_status);

nlohmann::json error_json(const ApiError& error);

// JSON text; invalid UTF-8 in a string is replaced (U+FFFD), never thrown.
std::string dump_json(const nlohmann::json& j);

void send_json(httplib::Response& res, int http_status, const nlohmann::json& body);
void send_error(httplib::Response& res, const ApiError& error);

}  // namespace qswap::server
