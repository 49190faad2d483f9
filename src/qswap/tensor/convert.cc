#include "qswap/tensor/convert.h"

#include <array>
#include <cstring>
#include <string>

#include "qswap/base/cpu.h"

#if defined(__x86_64__) || defined(_M_X64)
#define QSWAP_CONVERT_AVX512 1
#endif

namespace qswap {
namespace {

template <float (*kDecode)(uint8_t)>
std::array<float, 256> make_table() {
  std::array<float, 256> table{};
  for (int c = 0; c < 256; ++c) table[c] = kDecode(static_cast<uint8_t>(c));
  return table;
}

// The *_scaled functions' NaN inv_scale case (see f32_to_e4m3_scaled): fills out, returns true.
bool fill_if_nan_scale(float inv_scale, uint8_t* out, size_t n) {
  if ((std::bit_cast<uint32_t>(inv_scale) & 0x7FFFFFFF) <= convert_detail::kF32Inf) return false;
  if (n != 0) std::memset(out, f32_to_e4m3(inv_scale), n);
  return true;
}

bool use_avx512() {
#ifdef QSWAP_CONVERT_AVX512
  return isa_level() >= IsaLevel::kAvx512;
#else
  return false;
#endif
}

// Runs the AVX-512 path when it is in force, else the scalar reference.
#ifdef QSWAP_CONVERT_AVX512
#define QSWAP_DISPATCH(fn, ...) \
  return use_avx512() ? avx512::fn(__VA_ARGS__) : scalar::fn(__VA_ARGS__)
#else
#define QSWAP_DISPATCH(fn, ...) return scalar::fn(__VA_ARGS__)
#endif

}  // namespace

std::span<const float, 256> e4m3_decode_table() {
  static const std::array<float, 256> table = make_table<qswap::e4m3_to_f32>();
  return table;
}
std::span<const float, 256> e5m2_decode_table() {
  static const std::array<float, 256> table = make_table<qswap::e5m2_to_f32>();
  return table;
}
std::span<const float, 256> e8m0_decode_table() {
  static const std::array<float, 256> table = make_table<qswap::e8m0_to_f32>();
  return table;
}

// ---- scalar reference loops ----
namespace scalar {

void bf16_to_f32(const uint16_t* in, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = qswap::bf16_to_f32(in[i]);
}
void f32_to_bf16(const float* in, uint16_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = qswap::f32_to_bf16(in[i]);
}
void f16_to_f32(const uint16_t* in, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = qswap::f16_to_f32(in[i]);
}
void f32_to_f16(const float* in, uint16_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = qswap::f32_to_f16(in[i]);
}
void e4m3_to_f32(const uint8_t* in, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = qswap::e4m3_to_f32(in[i]);
}
void f32_to_e4m3(const float* in, uint8_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = qswap::f32_to_e4m3(in[i]);
}
void e5m2_to_f32(const uint8_t* in, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = qswap::e5m2_to_f32(in[i]);
}
void f32_to_e5m2(const float* in, uint8_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = qswap::f32_to_e5m2(in[i]);
}
void e8m0_to_f32(const uint8_t* in, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = qswap::e8m0_to_f32(in[i]);
}
void f32_to_e8m0(const float* in, uint8_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = qswap::f32_to_e8m0(in[i]);
}
void f32_to_e4m3_scaled(const float* in, float inv_scale, uint8_t* out, size_t n) {
  if (fill_if_nan_scale(inv_scale, out, n)) return;
  for (size_t i = 0; i < n; ++i) out[i] = qswap::f32_to_e4m3(in[i] * inv_scale);
}
void bf16_to_e4m3_scaled(const uint16_t* in, float inv_scale, uint8_t* out, size_t n) {
  if (fill_if_nan_scale(inv_scale, out, n)) return;
  for (size_t i = 0; i < n; ++i) out[i] = qswap::f32_to_e4m3(qswap::bf16_to_f32(in[i]) * inv_scale);
}

// On sign-cleared bits, integer order is value order, and every NaN is above inf. Comparing bits
// rather than floats also keeps the result independent of MXCSR.DAZ.
float amax_f32(const float* in, size_t n) {
  uint32_t max_abs = 0;
  for (size_t i = 0; i < n; ++i) {
    uint32_t abs = std::bit_cast<uint32_t>(in[i]) & 0x7FFFFFFF;
    if (abs > max_abs) max_abs = abs;
  }
  if (max_abs > convert_detail::kF32Inf) return std::bit_cast<float>(convert_detail::kF32QuietNan);
  return std::bit_cast<float>(max_abs);
}
float amax_bf16(const uint16_t* in, size_t n) {
  uint16_t max_abs = 0;
  for (size_t i = 0; i < n; ++i) {
    uint16_t abs = in[i] & 0x7FFF;
    if (abs > max_abs) max_abs = abs;
  }
  if (max_abs > 0x7F80) return std::bit_cast<float>(convert_detail::kF32QuietNan);
  return qswap::bf16_to_f32(max_abs);
}

}  // namespace scalar

// ---- dispatch ----

void bf16_to_f32(const uint16_t* in, float* out, size_t n) {
  QSWAP_DISPATCH(bf16_to_f32, in, out, n);
}
void f32_to_bf16(const float* in, uint16_t* out, size_t n) {
  QSWAP_DISPATCH(f32_to_bf16, in, out, n);
}
void f16_to_f32(const uint16_t* in, float* out, size_t n) {
  QSWAP_DISPATCH(f16_to_f32, in, out, n);
}
void f32_to_f16(const float* in, uint16_t* out, size_t n) {
  QSWAP_DISPATCH(f32_to_f16, in, out, n);
}
void e4m3_to_f32(const uint8_t* in, float* out, size_t n) {
  QSWAP_DISPATCH(e4m3_to_f32, in, out, n);
}
void f32_to_e4m3(const float* in, uint8_t* out, size_t n) {
  QSWAP_DISPATCH(f32_to_e4m3, in, out, n);
}
void e5m2_to_f32(const uint8_t* in, float* out, size_t n) {
  QSWAP_DISPATCH(e5m2_to_f32, in, out, n);
}
void f32_to_e5m2(const float* in, uint8_t* out, size_t n) {
  QSWAP_DISPATCH(f32_to_e5m2, in, out, n);
}
void e8m0_to_f32(const uint8_t* in, float* out, size_t n) { scalar::e8m0_to_f32(in, out, n); }
void f32_to_e8m0(const float* in, uint8_t* out, size_t n) { scalar::f32_to_e8m0(in, out, n); }
void f32_to_e4m3_scaled(const float* in, float inv_scale, uint8_t* out, size_t n) {
  QSWAP_DISPATCH(f32_to_e4m3_scaled, in, inv_scale, out, n);
}
void bf16_to_e4m3_scaled(const uint16_t* in, float inv_scale, uint8_t* out, size_t n) {
  QSWAP_DISPATCH(bf16_to_e4m3_scaled, in, inv_scale, out, n);
}
float amax_f32(const float* in, size_t n) { QSWAP_DISPATCH(amax_f32, in, n); }
float amax_bf16(const uint16_t* in, size_t n) { QSWAP_DISPATCH(amax_bf16, in, n); }

#undef QSWAP_DISPATCH

// ---- convert(): any pair, through f32 ----
namespace {

using DecodeFn = void (*)(const void* in, float* out, size_t n);
using EncodeFn = void (*)(const float* in, void* out, size_t n);

template <typename T, void (*kFn)(const T*, float*, size_t)>
void decode_as(const void* in, float* out, size_t n) {
  kFn(static_cast<const T*>(in), out, n);
}
template <typename T, void (*kFn)(const float*, T*, size_t)>
void encode_as(const float* in, void* out, size_t n) {
  kFn(in, static_cast<T*>(out), n);
}

DecodeFn decoder(DType dtype) {
  switch (dtype) {
    case DType::kBF16: return decode_as<uint16_t, qswap::bf16_to_f32>;
    case DType::kF16: return decode_as<uint16_t, qswap::f16_to_f32>;
    case DType::kF8E4M3: return decode_as<uint8_t, qswap::e4m3_to_f32>;
    case DType::kF8E5M2: return decode_as<uint8_t, qswap::e5m2_to_f32>;
    case DType::kF8E8M0: return decode_as<uint8_t, qswap::e8m0_to_f32>;
    default: return nullptr;
  }
}

EncodeFn encoder(DType dtype) {
  switch (dtype) {
    case DType::kBF16: return encode_as<uint16_t, qswap::f32_to_bf16>;
    case DType::kF16: return encode_as<uint16_t, qswap::f32_to_f16>;
    case DType::kF8E4M3: return encode_as<uint8_t, qswap::f32_to_e4m3>;
    case DType::kF8E5M2: return encode_as<uint8_t, qswap::f32_to_e5m2>;
    case DType::kF8E8M0: return encode_as<uint8_t, qswap::f32_to_e8m0>;
    default: return nullptr;
  }
}

std::string describe(DType dtype) {
  auto value = static_cast<int>(dtype);
  if (value >= kNumDTypes) return fmt::format("dtype #{}", value);
  return std::string(dtype_name(dtype));
}

bool aligned(const void* p, size_t alignment) {
  return reinterpret_cast<uintptr_t>(p) % alignment == 0;
}

}  // namespace

bool is_convertible(DType dtype) {
  return dtype == DType::kF32 || decoder(dtype) != nullptr;
}

Status convert(DType src_type, const void* src, DType dst_type, void* dst, size_t n) {
  if (!is_convertible(src_type) || !is_convertible(dst_type)) {
    return invalid_argument(
        "no conversion from {} to {} (supported: f32, bf16, f16, f8_e4m3, f8_e5m2, f8_e8m0)",
        describe(src_type), describe(dst_type));
  }
  if (n == 0) return {};
  if (src == nullptr || dst == nullptr) {
    return invalid_argument("conversion of {} elements from {} to {} with a null {} pointer", n,
                            describe(src_type), describe(dst_type),
                            src == nullptr ? "source" : "destination");
  }
  const size_t src_size = dtype_size(src_type);
  const size_t dst_size = dtype_size(dst_type);
  if (src_type == dst_type) {
    std::memmove(dst, src, n * src_size);
    return {};
  }
  // Chunks through an f32 buffer; misaligned ends are bounced through aligned buffers.
  constexpr size_t kChunk = 512;
  alignas(64) float f32_buf[kChunk];
  alignas(64) std::byte src_buf[kChunk * sizeof(float)];
  alignas(64) std::byte dst_buf[kChunk * sizeof(float)];
  const DecodeFn decode = decoder(src_type);  // null for f32
  const EncodeFn encode = encoder(dst_type);  // null for f32
  const auto* src_bytes = static_cast<const std::byte*>(src);
  auto* dst_bytes = static_cast<std::byte*>(dst);
  const bool src_aligned = aligned(src, src_size);
  const bool dst_aligned = aligned(dst, dst_size);
  for (size_t done = 0; done < n; done += kChunk) {
    const size_t count = n - done < kChunk ? n - done : kChunk;
    const void* in = src_bytes + done * src_size;
    if (!src_aligned) {
      std::memcpy(src_buf, in, count * src_size);
      in = src_buf;
    }
    void* out = dst_aligned ? static_cast<void*>(dst_bytes + done * dst_size) : dst_buf;
    const float* values = static_cast<const float*>(in);
    if (decode != nullptr) {
      float* decoded = encode != nullptr ? f32_buf : static_cast<float*>(out);
      decode(in, decoded, count);
      values = decoded;
    }
    if (encode != nullptr) encode(values, out, count);
    if (!dst_aligned) std::memcpy(dst_bytes + done * dst_size, dst_buf, count * dst_size);
  }
  return {};
}

}  // namespace qswap
