// Status and Result<T>: the core's only error channel. No exception escapes the library;
// front ends turn a Status into an exit code, an HTTP error or a Python exception.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace qswap {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // the caller asked for something malformed
  kNotFound,            // a file, tensor or key that does not exist
  kOutOfRange,          // an index or offset past the end
  kDataLoss,            // malformed or corrupt input data (headers, offsets, NaN weights)
  kFailedPrecondition,  // the object is not in a state that allows this call
  kIoError,             // the OS refused (open, read, mmap, write)
  kUnimplemented,       // valid request that this build does not support
  kAborted,             // an update was abandoned (transactional rollback)
  kUnavailable,         // transient: the engine cannot serve right now (retry later)
  kInternal,            // a bug: an invariant of qswap itself was broken
};

std::string_view status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "data loss: model.safetensors: tensor 'x' ..."
  std::string to_string() const;

  // Prepends "context: " to the message (no-op on OK), e.g. the file being read.
  Status with_context(std::string_view context) &&;
  Status with_context(std::string_view context) const&;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename... Args>
Status make_status(StatusCode code, fmt::format_string<Args...> format, Args&&... args) {
  return Status(code, fmt::format(format, std::forward<Args>(args)...));
}

#define QSWAP_DEFINE_STATUS_MAKER(fn, code)                                   \
  template <typename... Args>                                                 \
  Status fn(fmt::format_string<Args...> format, Args&&... args) {             \
    return Status(code, fmt::format(format, std::forward<Args>(args)...));    \
  }
QSWAP_DEFINE_STATUS_MAKER(invalid_argument, StatusCode::kInvalidArgument)
QSWAP_DEFINE_STATUS_MAKER(not_found, StatusCode::kNotFound)
QSWAP_DEFINE_STATUS_MAKER(out_of_range, StatusCode::kOutOfRange)
QSWAP_DEFINE_STATUS_MAKER(data_loss, StatusCode::kDataLoss)
QSWAP_DEFINE_STATUS_MAKER(failed_precondition, StatusCode::kFailedPrecondition)
QSWAP_DEFINE_STATUS_MAKER(io_error, StatusCode::kIoError)
QSWAP_DEFINE_STATUS_MAKER(unimplemented, StatusCode::kUnimplemented)
QSWAP_DEFINE_STATUS_MAKER(aborted, StatusCode::kAborted)
QSWAP_DEFINE_STATUS_MAKER(unavailable, StatusCode::kUnavailable)
QSWAP_DEFINE_STATUS_MAKER(internal_error, StatusCode::kInternal)
#undef QSWAP_DEFINE_STATUS_MAKER

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : data_(std::in_place_index<1>, std::move(status)) {  // NOLINT
    assert(!std::get<1>(data_).ok() && "Result built from an OK status");
  }

  bool ok() const { return data_.index() == 0; }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<1>(data_);
  }

  T& value() & { return std::get<0>(data_); }
  const T& value() const& { return std::get<0>(data_); }
  T&& value() && { return std::get<0>(std::move(data_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> data_;
};

}  // namespace qswap

#define QSWAP_CONCAT_INNER(a, b) a##b
#define QSWAP_CONCAT(a, b) QSWAP_CONCAT_INNER(a, b)

// Returns the Status of `expr` from the enclosing function if it is not OK.
#define QSWAP_RETURN_IF_ERROR(expr)                          \
  do {                                                       \
    ::qswap::Status qswap_status_ = (expr);                  \
    if (!qswap_status_.ok()) return qswap_status_;           \
  } while (0)

// `QSWAP_ASSIGN_OR_RETURN(auto x, make_x());` — binds the value or returns the error.
#define QSWAP_ASSIGN_OR_RETURN(lhs, expr) \
  QSWAP_ASSIGN_OR_RETURN_IMPL(QSWAP_CONCAT(qswap_result_, __LINE__), lhs, expr)
#define QSWAP_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
