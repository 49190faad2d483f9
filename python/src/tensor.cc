// Python tensors as IncomingTensors, zero-copy: nanobind imports the producer's DLPack capsule (or
// buffer-protocol view) with no dtype or layout constraint, so it never converts or copies; qswap
// then reads the producer's memory during add().
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <optional>
#include <string>
#include <vector>

#include "bindings.h"
#include "qswap/tensor/tensor.h"

namespace qswap::python {
namespace {

using nb::dlpack::dtype_code;

std::optional<DType> dtype_from_dlpack(nb::dlpack::dtype t) {
  if (t.lanes != 1) return std::nullopt;
  switch (static_cast<dtype_code>(t.code)) {
    case dtype_code::Float:
      if (t.bits == 16) return DType::kF16;
      if (t.bits == 32) return DType::kF32;
      if (t.bits == 64) return DType::kF64;
      break;
    case dtype_code::Bfloat:
      if (t.bits == 16) return DType::kBF16;
      break;
    case dtype_code::Int:
      if (t.bits == 8) return DType::kI8;
      if (t.bits == 16) return DType::kI16;
      if (t.bits == 32) return DType::kI32;
      if (t.bits == 64) return DType::kI64;
      break;
    case dtype_code::UInt:
      if (t.bits == 8) return DType::kU8;
      if (t.bits == 16) return DType::kU16;
      if (t.bits == 32) return DType::kU32;
      if (t.bits == 64) return DType::kU64;
      break;
    case dtype_code::Bool:
      if (t.bits == 8) return DType::kBool;
      break;
    default:
      break;
  }
  return std::nullopt;
}

std::string python_type_name(nb::handle h) { return nb::type_name(h.type()).c_str(); }

// Why `tensor` could not be viewed: a torch tensor's device (meta, cuda) is the usual cause.
Status not_viewable(std::string_view name, nb::handle tensor) {
  if (nb::hasattr(tensor, "device")) {
    nb::object device = tensor.attr("device");
    std::string where = nb::str(device).c_str();
    if (where != "cpu") {
      return invalid_argument("tensor '{}' is on device '{}'; qswap reads CPU memory (move it with .cpu() first)",
                              name, where);
    }
  }
  return invalid_argument(
      "tensor '{}' is a {} that qswap cannot view without copying; expected a CPU tensor: torch, numpy, "
      "or an object with __dlpack__ or the buffer protocol",
      name, python_type_name(tensor));
}

// DLPack strides count elements; a dimension of extent 1 may carry any stride.
bool is_row_major(const nb::ndarray<nb::ro>& a) {
  int64_t expected = 1;
  for (size_t i = a.ndim(); i-- > 0;) {
    if (a.shape(i) != 1 && a.stride(i) != expected) return false;
    expected *= a.shape(i);
  }
  return true;
}

}  // namespace

Result<BorrowedTensor> borrow_tensor(std::string_view name, nb::handle tensor, nb::object& holder) {
  holder = nb::borrow(tensor);
  // Torch refuses to export a tensor that requires grad (an nn.Parameter); detach() shares storage.
  if (nb::hasattr(tensor, "requires_grad") && nb::hasattr(tensor, "detach") &&
      nb::cast<bool>(tensor.attr("requires_grad"))) {
    holder = tensor.attr("detach")();
  }
  BorrowedTensor out;
  if (!nb::try_cast(holder, out.array, /*convert=*/false)) return not_viewable(name, holder);
  const nb::ndarray<nb::ro>& a = out.array;
  const int device = a.device_type();
  if (device != nb::device::cpu::value && device != nb::device::cuda_host::value) {
    return invalid_argument("tensor '{}' is in the memory of DLPack device type {}; qswap reads CPU memory", name,
                            device);
  }
  std::optional<DType> dtype = dtype_from_dlpack(a.dtype());
  if (!dtype) {
    return invalid_argument("tensor '{}' has DLPack dtype code {} with {} bits x {} lanes, which qswap cannot read",
                            name, a.dtype().code, a.dtype().bits, a.dtype().lanes);
  }
  std::span<const int64_t> shape(a.shape_ptr(), a.ndim());
  if (a.size() > 1 && !is_row_major(a)) {
    std::vector<int64_t> strides(a.stride_ptr(), a.stride_ptr() + a.ndim());
    return invalid_argument(
        "tensor '{}' is not contiguous (shape {}, strides {}); qswap reads tensors in place: pass "
        "tensor.contiguous()",
        name, format_shape(shape), format_shape(strides));
  }
  out.incoming = IncomingTensor{name, *dtype, shape,
                                std::span<const std::byte>(static_cast<const std::byte*>(a.data()), a.nbytes())};
  return out;
}

void bind_tensor(nb::module_& m) {
  m.def(
      "borrow_info",
      [](nb::handle tensor, std::string name) {
        nb::object holder;
        BorrowedTensor t = value_or_throw(borrow_tensor(name, tensor, holder));
        nb::dict d;
        d["dtype"] = std::string(dtype_name(t.incoming.dtype));
        d["shape"] = std::vector<int64_t>(t.incoming.shape.begin(), t.incoming.shape.end());
        d["data_ptr"] = reinterpret_cast<uintptr_t>(t.incoming.data.data());
        d["nbytes"] = t.incoming.data.size();
        return d;
      },
      nb::arg("tensor"), nb::arg("name") = "tensor",
      "What WeightUpdate.add would hand the engine for `tensor` (dtype, shape, data_ptr, nbytes), through "
      "the same zero-copy view; data_ptr is the address qswap reads.");
}

}  // namespace qswap::python
