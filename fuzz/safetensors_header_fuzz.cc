// Fuzz target: bytes -> safetensors parser -> every tensor read and borrowed. Besides the
// sanitizers, it checks the reader's own promises: a source that opens covers at most the input,
// every listed tensor can be found, read and borrowed, and a borrowed view lies inside the input.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <span>
#include <vector>

#include "fuzz_target.h"
#include "qswap/io/safetensors.h"

namespace {

[[noreturn]] void broken(const char* what, const qswap::Status& status) {
  std::fprintf(stderr, "safetensors_header_fuzz: %s: %s\n", what, status.to_string().c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
  auto source = qswap::open_safetensors_memory(input, "fuzz.safetensors");
  if (!source.ok()) {
    if (source.status().message().empty()) broken("error without a message", source.status());
    return 0;
  }
  const qswap::TensorSource& s = **source;
  if (s.total_bytes() > size) broken("tensors larger than the input", {});
  std::less_equal<const std::byte*> le;
  std::vector<std::byte> buf;
  for (const qswap::TensorInfo& t : s.tensors()) {
    if (s.find(t.name) != &t) broken("find() does not return the listed tensor", {});
    buf.assign(t.nbytes, std::byte{0});
    if (qswap::Status st = s.read(t, 0, buf); !st.ok()) broken("read of a listed tensor failed", st);
    auto view = s.borrow(t);
    if (!view.ok()) broken("borrow of a listed tensor failed", view.status());
    bool inside = t.nbytes == 0 || (le(input.data(), view->data()) &&
                                    le(view->data() + view->size(), input.data() + size));
    if (view->size() != t.nbytes || !inside) broken("borrowed view outside the input", {});
    if (t.nbytes > 0 && std::memcmp(view->data(), buf.data(), t.nbytes) != 0) {
      broken("read != borrow", {});
    }
    size_t half = t.nbytes / 2;
    if (!s.read(t, half, std::span(buf).subspan(half)).ok()) broken("tail read failed", {});
    if (s.read(t, t.nbytes, std::span(buf).first(t.nbytes > 0 ? 1 : 0)).ok() && t.nbytes > 0) {
      broken("read past the end succeeded", {});
    }
  }
  return 0;
}
