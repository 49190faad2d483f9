// convert(): every pair of supported dtypes equals decode-to-f32 then encode with the one-value
// reference; unsupported dtypes and bad pointers are errors that name the dtypes.
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "convert_test_util.h"
#include "test_util.h"
#include "qswap/base/cpu.h"
#include "qswap/tensor/convert.h"

namespace qswap {
namespace {

using test::bits;
using test::from_bits;

constexpr DType kConvertible[] = {DType::kF32, DType::kBF16, DType::kF16,
                                  DType::kF8E4M3, DType::kF8E5M2, DType::kF8E8M0};

// One element of `dtype` at p (little-endian bytes) as exact f32 bits, via the references.
uint32_t decode_one(DType dtype, const std::byte* p) {
  uint32_t raw = 0;
  std::memcpy(&raw, p, dtype_size(dtype));
  switch (dtype) {
    case DType::kF32: return raw;
    case DType::kBF16: return bits(bf16_to_f32(static_cast<uint16_t>(raw)));
    case DType::kF16: return bits(f16_to_f32(static_cast<uint16_t>(raw)));
    case DType::kF8E4M3: return bits(e4m3_to_f32(static_cast<uint8_t>(raw)));
    case DType::kF8E5M2: return bits(e5m2_to_f32(static_cast<uint8_t>(raw)));
    case DType::kF8E8M0: return bits(e8m0_to_f32(static_cast<uint8_t>(raw)));
    default: ADD_FAILURE() << "unexpected dtype"; return 0;
  }
}

uint32_t encode_one(DType dtype, uint32_t f32) {
  float x = from_bits(f32);
  switch (dtype) {
    case DType::kF32: return f32;
    case DType::kBF16: return f32_to_bf16(x);
    case DType::kF16: return f32_to_f16(x);
    case DType::kF8E4M3: return f32_to_e4m3(x);
    case DType::kF8E5M2: return f32_to_e5m2(x);
    case DType::kF8E8M0: return f32_to_e8m0(x);
    default: ADD_FAILURE() << "unexpected dtype"; return 0;
  }
}

class ConvertTest : public test::IsaTest {};

// Every pair, n crossing the internal chunking, with src/dst aligned and misaligned by one byte.
TEST_P(ConvertTest, EveryPairMatchesDecodeThenEncode) {
  uint64_t seed = test::run_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  const size_t n = 1537;
  std::vector<uint32_t> f32_bits = test::random_f32_bits(rng, n, test::golden_input_pool());
  for (DType src_type : kConvertible) {
    const size_t ss = dtype_size(src_type);
    // Source bytes: random f32 patterns for f32, random codes otherwise.
    std::vector<std::byte> src(n * ss + 1);
    for (size_t i = 0; i < n; ++i) {
      uint32_t v = src_type == DType::kF32 ? f32_bits[i] : static_cast<uint32_t>(rng());
      std::memcpy(&src[1 + i * ss], &v, ss);  // little-endian host
    }
    for (DType dst_type : kConvertible) {
      const size_t ds = dtype_size(dst_type);
      for (size_t shift : {size_t{0}, size_t{1}}) {
        SCOPED_TRACE(::testing::Message() << dtype_name(src_type) << " -> " << dtype_name(dst_type)
                                          << (shift != 0 ? " (misaligned)" : ""));
        std::vector<std::byte> aligned_src(src.begin() + 1, src.end());
        const std::byte* in = shift != 0 ? src.data() + 1 : aligned_src.data();
        std::vector<std::byte> dst(n * ds + 2, std::byte{0xA5});
        std::byte* out = dst.data() + (shift != 0 ? 1 : 0);
        Status status = convert(src_type, in, dst_type, out, n);
        ASSERT_TRUE(status.ok()) << status.to_string();
        for (size_t i = 0; i < n; ++i) {
          uint32_t want = encode_one(dst_type, decode_one(src_type, in + i * ss));
          uint32_t got = 0;
          std::memcpy(&got, out + i * ds, ds);
          if (src_type == dst_type) {
            std::memcpy(&want, in + i * ss, ss);  // a copy keeps every bit, NaN payloads too
          }
          ASSERT_EQ(got, want) << "element " << i;
        }
        EXPECT_EQ(dst.back(), std::byte{0xA5}) << "wrote past the end";
        EXPECT_EQ(dst[shift != 0 ? 0 : n * ds], std::byte{0xA5}) << "wrote outside the output";
      }
    }
  }
}

std::string level_name(const ::testing::TestParamInfo<IsaLevel>& info) {
  return info.param == IsaLevel::kScalar ? "Scalar" : "Native";
}

INSTANTIATE_TEST_SUITE_P(Isa, ConvertTest, ::testing::Values(IsaLevel::kScalar, IsaLevel::kAvx512),
                         level_name);

TEST(ConvertErrorsTest, UnsupportedPairNamesBothDtypes) {
  float f = 1.0f;
  int8_t i8 = 1;
  Status s = convert(DType::kI8, &i8, DType::kF32, &f, 1);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("i8"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("f32"), std::string::npos) << s.message();
  int32_t i32 = 0;
  s = convert(DType::kBF16, &f, DType::kI32, &i32, 1);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("bf16"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("i32"), std::string::npos) << s.message();
  s = convert(static_cast<DType>(200), &f, DType::kF32, &f, 1);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("dtype #200"), std::string::npos) << s.message();
  EXPECT_FALSE(convert(DType::kF64, &f, DType::kF64, &f, 0).ok());  // unsupported even when empty
}

TEST(ConvertErrorsTest, NullPointersAreRejectedUnlessEmpty) {
  float f = 1.0f;
  const StatusCode kInvalid = StatusCode::kInvalidArgument;
  EXPECT_EQ(convert(DType::kF32, nullptr, DType::kBF16, &f, 1).code(), kInvalid);
  EXPECT_EQ(convert(DType::kF32, &f, DType::kBF16, nullptr, 1).code(), kInvalid);
  EXPECT_TRUE(convert(DType::kF32, nullptr, DType::kBF16, nullptr, 0).ok());
}

TEST(ConvertCopyTest, SameDtypeIsACopyEvenWhenOverlapping) {
  std::vector<uint16_t> v = {1, 2, 3, 4, 5, 0x7F81, 7};
  ASSERT_TRUE(convert(DType::kBF16, v.data(), DType::kBF16, v.data() + 1, 6).ok());
  EXPECT_EQ(v, (std::vector<uint16_t>{1, 1, 2, 3, 4, 5, 0x7F81}));
}

TEST(ConvertDtypeTest, IsConvertible) {
  for (DType t : kConvertible) EXPECT_TRUE(is_convertible(t)) << dtype_name(t);
  for (DType t : {DType::kI8, DType::kU8, DType::kI32, DType::kI64, DType::kBool, DType::kF64}) {
    EXPECT_FALSE(is_convertible(t)) << dtype_name(t);
  }
}

}  // namespace
}  // namespace qswap
