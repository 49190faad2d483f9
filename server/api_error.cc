#include "server/api_error.h"

#include <httplib.h>

namespace qswap::server {

ApiError invalid_request(std::string param, std::string message, std::string code) {
  return ApiError{400, std::move(message), std::move(param), std::move(code)};
}

ApiError api_error_from_status(const Status& status, int refused_status) {
  int http = 500;
  std::string code = "internal_error";
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
    case StatusCode::kNotFound:
    case StatusCode::kDataLoss:
      http = 400;
      code = "invalid_value";
      break;
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAborted:
      http = refused_status;
      code = refused_status == 503 ? "unavailable" : "conflict";
      break;
    case StatusCode::kUnimplemented:
      http = 501;
      code = "unimplemented";
      break;
    case StatusCode::kUnavailable:
      http = 503;
      code = "unavailable";
      break;
    case StatusCode::kIoError:
      code = "io_error";
      break;
    default:
      break;
  }
  return ApiError{http, status.message(), "", code};
}

std::string_view error_type(int http_status) {
  switch (http_status) {
    case 400: return "invalid_request_error";
    case 404: return "not_found_error";
    case 409: return "conflict_error";
    case 413: return "invalid_request_error";
    case 501: return "not_implemented_error";
    case 503: return "service_unavailable_error";
    default: return http_status < 500 ? "invalid_request_error" : "server_error";
  }
}

nlohmann::json error_json(const ApiError& error) {
  auto or_null = [](const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); };
  return {{"error",
           {{"message", error.message},
            {"type", error_type(error.http_status)},
            {"param", or_null(error.param)},
            {"code", or_null(error.code)}}}};
}

std::string dump_json(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void send_json(httplib::Response& res, int http_status, const nlohmann::json& body) {
  res.status = http_status;
  res.set_content(dump_json(body), "application/json");
}

void send_error(httplib::Response& res, const ApiError& error) {
  send_json(res, error.http_status, error_json(error));
}

}  // namespace qswap::server
