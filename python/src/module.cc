// qswap._core: the extension module. Engine errors (a qswap::Status) become the Python classes of
// qswap.errors, chosen by status code, carrying the engine's message.
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <string>
#include <string_view>
#include <vector>

#include "bindings.h"
#include "qswap/quant/scheme.h"

namespace qswap::python {
namespace {

std::string_view code_key(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid_argument";
    case StatusCode::kNotFound: return "not_found";
    case StatusCode::kOutOfRange: return "out_of_range";
    case StatusCode::kDataLoss: return "data_loss";
    case StatusCode::kFailedPrecondition: return "failed_precondition";
    case StatusCode::kIoError: return "io_error";
    case StatusCode::kUnimplemented: return "unimplemented";
    case StatusCode::kAborted: return "aborted";
    case StatusCode::kUnavailable: return "unavailable";
    case StatusCode::kInternal: return "internal";
  }
  return "unknown";
}

void raise_status(const Status& status) {
  try {
    nb::object make = nb::module_::import_("qswap.errors").attr("_from_status");
    nb::object exc = make(nb::str(code_key(status.code()).data(), code_key(status.code()).size()),
                          nb::str(status.message().data(), status.message().size()));
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
  } catch (const nb::python_error&) {
    // qswap.errors unusable (the extension imported on its own): still report the engine's message.
    PyErr_SetString(PyExc_RuntimeError, status.to_string().c_str());
  }
}

}  // namespace
}  // namespace qswap::python

NB_MODULE(_core, m) {
  using namespace qswap::python;
  m.doc() = "qswap's C++ engine (use the qswap package, not this module)";
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const StatusError& e) {
      raise_status(e.status());
    }
  });
  m.def("quant_schemes", [] {
    std::vector<std::string> names;
    for (std::string_view name : qswap::quant_scheme_names()) names.emplace_back(name);
    return names;
  });
  bind_tensor(m);
  bind_engine(m);
  bind_listener(m);
}
