// qswap._core.Listener: the weight-stream listener (docs/protocol.md) running inside a Python
// process, so another process can push updates with qswap.client.push. Outcomes are recorded here
// rather than calling back into Python from the listener's thread (no GIL taken on that thread).
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "bindings.h"
#include "qswap/stream/listener.h"

namespace qswap::python {
namespace {

class PyListener {
 public:
  static std::unique_ptr<PyListener> start(PyEngine& engine, const std::string& address,
                                           const std::optional<std::string>& token) {
    auto self = std::unique_ptr<PyListener>(new PyListener());
    ListenOptions options;
    options.address = address;
    options.token = token.value_or("");
    options.on_update = [raw = self.get()](const Result<UpdateStats>& r) { raw->record(r); };
    Result<std::unique_ptr<UpdateListener>> started = [&] {
      nb::gil_scoped_release release;
      return UpdateListener::start(engine.engine(), std::move(options));
    }();
    self->listener_ = value_or_throw(std::move(started));
    return self;
  }

  ~PyListener() { stop(); }

  void stop() {
    nb::gil_scoped_release release;
    if (listener_) listener_->stop();
  }

  std::string address() const { return listener_->address(); }

  nb::dict stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    nb::dict d;
    d["updates"] = updates_;
    d["failures"] = failures_;
    d["last_error"] = last_error_;
    d["last_version"] = last_version_;
    return d;
  }

 private:
  PyListener() = default;

  void record(const Result<UpdateStats>& r) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (r.ok()) {
      ++updates_;
      last_version_ = r->version;
    } else {
      ++failures_;
      last_error_ = r.status().to_string();
    }
  }

  std::unique_ptr<UpdateListener> listener_;
  mutable std::mutex mutex_;
  int64_t updates_ = 0, failures_ = 0;
  std::optional<uint64_t> last_version_;
  std::optional<std::string> last_error_;
};

}  // namespace

void bind_listener(nb::module_& m) {
  nb::class_<PyListener>(m, "Listener", "A weight-stream listener (docs/protocol.md) feeding one Engine.")
      .def_prop_ro("address", &PyListener::address)
      .def("stats", &PyListener::stats)
      .def("stop", &PyListener::stop);
  // The listener keeps its engine alive (keep_alive<0, 1>): it writes into that engine's weights.
  m.def("listen", &PyListener::start, nb::arg("engine"), nb::arg("address"), nb::arg("token").none() = nb::none(),
        nb::keep_alive<0, 1>());
}

}  // namespace qswap::python
