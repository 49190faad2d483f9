// The dtype table: one enum, one row of traits per value. Values are stable; a retired
// dtype's number is never reused (they may be persisted in exported files and protocols).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace qswap {

enum class DType : uint8_t {
  kF32 = 0,
  kF16 = 1,
  kBF16 = 2,
  kF8E4M3 = 3,  // OCP e4m3fn: bias 7, max 448, no inf, NaN = 0x7F/0xFF
  kF8E5M2 = 4,  // IEEE-like: bias 15, max 57344, inf and NaN
  kF8E8M0 = 5,  // OCP MX scale: 2^(code-127), 0xFF = NaN, no sign, no zero
  kI8 = 6,
  kU8 = 7,
  kI32 = 8,
  kI64 = 9,
  kBool = 10,
  kF64 = 11,
  kI16 = 12,
  kU16 = 13,
  kU32 = 14,
  kU64 = 15,
};
inline constexpr int kNumDTypes = 16;

struct DTypeInfo {
  DType dtype;
  std::string_view name;         // qswap's spelling: "bf16", "f8_e4m3"
  std::string_view safetensors;  // the safetensors header spelling: "BF16", "F8_E4M3"
  uint8_t bits;
  bool is_float;
};

const DTypeInfo& dtype_info(DType dtype);
inline std::string_view dtype_name(DType dtype) { return dtype_info(dtype).name; }
inline size_t dtype_size(DType dtype) { return dtype_info(dtype).bits / 8; }

std::optional<DType> dtype_from_safetensors(std::string_view spelling);
// qswap names ("bf16") and torch/HF names ("bfloat16", "float32", "torch.float16").
std::optional<DType> dtype_from_name(std::string_view name);

}  // namespace qswap
