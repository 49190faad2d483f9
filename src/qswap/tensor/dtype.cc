#include "qswap/tensor/dtype.h"

#include <array>

namespace qswap {
namespace {

constexpr std::array<DTypeInfo, kNumDTypes> kTable = {{
    {DType::kF32, "f32", "F32", 32, true},
    {DType::kF16, "f16", "F16", 16, true},
    {DType::kBF16, "bf16", "BF16", 16, true},
    {DType::kF8E4M3, "f8_e4m3", "F8_E4M3", 8, true},
    {DType::kF8E5M2, "f8_e5m2", "F8_E5M2", 8, true},
    {DType::kF8E8M0, "f8_e8m0", "F8_E8M0", 8, true},
    {DType::kI8, "i8", "I8", 8, false},
    {DType::kU8, "u8", "U8", 8, false},
    {DType::kI32, "i32", "I32", 32, false},
    {DType::kI64, "i64", "I64", 64, false},
    {DType::kBool, "bool", "BOOL", 8, false},
    {DType::kF64, "f64", "F64", 64, true},
    {DType::kI16, "i16", "I16", 16, false},
    {DType::kU16, "u16", "U16", 16, false},
    {DType::kU32, "u32", "U32", 32, false},
    {DType::kU64, "u64", "U64", 64, false},
}};

constexpr bool table_is_indexed_by_enum() {
  for (size_t i = 0; i < kTable.size(); ++i) {
    if (static_cast<size_t>(kTable[i].dtype) != i) return false;
  }
  return true;
}
static_assert(table_is_indexed_by_enum(), "kTable rows must follow the DType values");

struct Alias {
  std::string_view name;
  DType dtype;
};
constexpr Alias kAliases[] = {
    {"float32", DType::kF32},        {"float", DType::kF32},          {"float16", DType::kF16},
    {"half", DType::kF16},           {"bfloat16", DType::kBF16},      {"float8_e4m3fn", DType::kF8E4M3},
    {"float8_e5m2", DType::kF8E5M2}, {"float8_e8m0fnu", DType::kF8E8M0}, {"int8", DType::kI8},
    {"uint8", DType::kU8},           {"int32", DType::kI32},          {"int64", DType::kI64},
    {"float64", DType::kF64},        {"int16", DType::kI16},          {"uint16", DType::kU16},
    {"uint32", DType::kU32},         {"uint64", DType::kU64},
};

}  // namespace

const DTypeInfo& dtype_info(DType dtype) { return kTable[static_cast<size_t>(dtype)]; }

std::optional<DType> dtype_from_safetensors(std::string_view spelling) {
  for (const DTypeInfo& info : kTable) {
    if (info.safetensors == spelling) return info.dtype;
  }
  return std::nullopt;
}

std::optional<DType> dtype_from_name(std::string_view name) {
  if (name.starts_with("torch.")) name.remove_prefix(6);
  for (const DTypeInfo& info : kTable) {
    if (info.name == name) return info.dtype;
  }
  for (const Alias& alias : kAliases) {
    if (alias.name == name) return alias.dtype;
  }
  return std::nullopt;
}

}  // namespace qswap
