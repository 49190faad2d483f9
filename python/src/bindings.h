// Shared pieces of the qswap._core bindings: Status -> Python exception, and the zero-copy view of
// a Python tensor as an IncomingTensor.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>

#include "qswap/base/status.h"
#include "qswap/engine/engine.h"
#include "qswap/load/layerwise_loader.h"

namespace qswap::python {

namespace nb = nanobind;

// Carries a non-OK Status out of a binding; the module's translator raises the matching
// qswap.errors class (QswapError and its subclasses) with the Status's message.
class StatusError : public std::runtime_error {
 public:
  explicit StatusError(Status status) : std::runtime_error(status.message()), status_(std::move(status)) {}
  const Status& status() const { return status_; }

 private:
  Status status_;
};

inline void throw_if_error(const Status& status) {
  if (!status.ok()) throw StatusError(status);
}

template <typename T>
T value_or_throw(Result<T>&& result) {
  if (!result.ok()) throw StatusError(result.status());
  return std::move(result).value();
}

// A Python tensor borrowed for the duration of one add(): `array` holds the producer's buffer
// (DLPack capsule or buffer-protocol view), `incoming` points straight into it.
struct BorrowedTensor {
  nb::ndarray<nb::ro> array;
  IncomingTensor incoming;
};

// Views `tensor` (torch, numpy, anything with __dlpack__ or the buffer protocol) without copying.
// A torch tensor that requires grad is detached (same storage). Rejects, naming `name`, tensors
// that are not in CPU memory, not contiguous, or of a dtype qswap has no name for. `holder` keeps
// a detached tensor alive; `name` must outlive the result.
Result<BorrowedTensor> borrow_tensor(std::string_view name, nb::handle tensor, nb::object& holder);

// Owns the engine. Python threads may share one WeightUpdate and call it without the GIL, so
// begin_update/add/commit/abort take update_mutex; forward passes are guarded by the engine's own
// weight lock, and a stream listener (listener.cc) goes through the thread-safe Engine API.
class PyEngine {
 public:
  explicit PyEngine(std::unique_ptr<Engine> engine) : engine_(std::move(engine)) {}
  Engine& engine() { return *engine_; }
  std::mutex& update_mutex() { return update_mutex_; }

 private:
  std::unique_ptr<Engine> engine_;
  std::mutex update_mutex_;
};

void bind_engine(nb::module_& m);
void bind_listener(nb::module_& m);
void bind_tensor(nb::module_& m);

}  // namespace qswap::python
