// The one-value reference conversions against PyTorch 2.13 (tests/data/dtype, written by
// scripts/goldens/make_dtype_goldens.py), and against numbers read off the format specs.
#include <cmath>
#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include "convert_test_util.h"
#include "qswap/tensor/convert.h"

namespace qswap {
namespace {

using test::bits;
using test::f32_is_nan;
using test::Format;
using test::from_bits;

class GoldenTest : public ::testing::TestWithParam<Format> {};

std::string format_name(const ::testing::TestParamInfo<Format>& info) { return info.param.name; }

// Every code decodes to torch's f32, bit for bit; a NaN code to a NaN with the code's sign
// (torch drops the sign of f16 NaNs, so the sign is checked against the spec, not torch).
TEST_P(GoldenTest, DecodesEveryCodeLikeTorch) {
  const Format& f = GetParam();
  const size_t codes = f.code_bytes == 1 ? 256 : 65536;
  std::vector<uint32_t> golden = test::read_decode_golden(f.name, codes);
  ASSERT_EQ(golden.size(), codes);
  size_t nans = 0;
  for (uint32_t c = 0; c < codes; ++c) {
    uint32_t got = f.decode(c);
    if (f32_is_nan(golden[c])) {
      ++nans;
      EXPECT_TRUE(f32_is_nan(got)) << f.name << " code 0x" << std::hex << c << " -> 0x" << got;
      EXPECT_EQ(got >> 31, (c & f.sign_bit) != 0 ? 1u : 0u)
          << f.name << " code 0x" << std::hex << c;
      EXPECT_TRUE(f.is_nan(c)) << f.name << " code 0x" << std::hex << c;
    } else {
      ASSERT_EQ(got, golden[c]) << f.name << " code 0x" << std::hex << c;
      EXPECT_FALSE(f.is_nan(c)) << f.name << " code 0x" << std::hex << c;
    }
  }
  EXPECT_GT(nans, 0u);
}

// Every boundary input (code values, midpoints, +-1 ulp, overflow, subnormals, NaN payloads,
// random values) encodes to torch's code, bit for bit; NaN in gives a NaN code with the input's
// sign; the very code torch gives, except for bf16 (torch's bf16 NaN is always 0xFFFF, so there
// the sign is checked against the spec, not torch).
TEST_P(GoldenTest, EncodesBoundaryInputsLikeTorch) {
  const Format& f = GetParam();
  test::EncodeGolden g = test::read_encode_golden(f.name, f.code_bytes);
  ASSERT_GT(g.inputs.size(), 1000u);
  size_t nan_inputs = 0;
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    uint32_t x = g.inputs[i];
    uint32_t got = f.encode(x);
    if (f32_is_nan(x)) {
      ++nan_inputs;
      ASSERT_TRUE(f.is_nan(g.outputs[i]));
      EXPECT_TRUE(f.is_nan(got)) << f.name << " input 0x" << std::hex << x << " -> 0x" << got;
      if (f.sign_bit != 0) {
        EXPECT_EQ((got & f.sign_bit) != 0, (x >> 31) != 0) << std::hex << x;
      }
      if (f.torch_nan_code_exact) {
        EXPECT_EQ(got, g.outputs[i]) << f.name << " input 0x" << std::hex << x;
      }
    } else {
      ASSERT_EQ(got, g.outputs[i]) << f.name << " input 0x" << std::hex << x << " ("
                                   << std::hexfloat << from_bits(x) << ")";
    }
  }
  EXPECT_GT(nan_inputs, 5u);
}

INSTANTIATE_TEST_SUITE_P(AllFormats, GoldenTest, ::testing::ValuesIn(test::formats()), format_name);

TEST(DecodeTableTest, TablesMatchTheFunctions) {
  for (int c = 0; c < 256; ++c) {
    auto code = static_cast<uint8_t>(c);
    EXPECT_EQ(bits(e4m3_decode_table()[c]), bits(e4m3_to_f32(code))) << c;
    EXPECT_EQ(bits(e5m2_decode_table()[c]), bits(e5m2_to_f32(code))) << c;
    EXPECT_EQ(bits(e8m0_decode_table()[c]), bits(e8m0_to_f32(code))) << c;
  }
}

// The reference functions are constexpr; values from the OCP FP8 and MX specs.
static_assert(f32_to_e4m3(448.0f) == 0x7E);
static_assert(e4m3_to_f32(0x01) == 0x1p-9f);
static_assert(f32_to_e5m2(57344.0f) == 0x7B);
static_assert(f32_to_bf16(1.0f) == 0x3F80);
static_assert(f16_to_f32(0x3C00) == 1.0f);
static_assert(e8m0_to_f32(127) == 1.0f);

TEST(SpecTest, E4m3SaturatesAndKeepsNanSign) {
  const float inf = INFINITY;
  EXPECT_EQ(f32_to_e4m3(1e9f), 0x7E);
  EXPECT_EQ(f32_to_e4m3(-1e9f), 0xFE);
  EXPECT_EQ(f32_to_e4m3(inf), 0x7E);
  EXPECT_EQ(f32_to_e4m3(-inf), 0xFE);
  EXPECT_EQ(f32_to_e4m3(464.0f), 0x7E);  // the unsaturated overflow tie
  EXPECT_EQ(f32_to_e4m3(from_bits(0x7FC00000)), 0x7F);
  EXPECT_EQ(f32_to_e4m3(from_bits(0xFFC00000)), 0xFF);
  EXPECT_EQ(f32_to_e4m3(from_bits(0x7F800001)), 0x7F);  // signalling NaN
  EXPECT_EQ(f32_to_e4m3(-0.0f), 0x80);
  EXPECT_EQ(f32_to_e4m3(0x1p-10f), 0x00);          // tie between 0 and 2^-9: even
  EXPECT_EQ(f32_to_e4m3(0x1.8p-10f), 0x01);        // past the tie
  EXPECT_EQ(f32_to_e4m3(0x1.4p-9f * 1.0f), 0x01);  // 1.25 * 2^-9 rounds down
  EXPECT_EQ(f32_to_e4m3(0x1.8p-9f), 0x02);         // tie between 2^-9 and 2^-8: even
  EXPECT_EQ(f32_to_e4m3(0x1.ep-7f), 0x08);         // 15 * 2^-10 -> 2^-6, the smallest normal
  EXPECT_EQ(f32_to_e4m3(0x1p-100f), 0x00);
  EXPECT_EQ(f32_to_e4m3(from_bits(0x00000001)), 0x00);
  EXPECT_TRUE(std::isnan(e4m3_to_f32(0x7F)));
  EXPECT_TRUE(std::signbit(e4m3_to_f32(0xFF)));
}

TEST(SpecTest, E5m2SaturatesInsteadOfInf) {
  EXPECT_EQ(f32_to_e5m2(INFINITY), 0x7B);
  EXPECT_EQ(f32_to_e5m2(-INFINITY), 0xFB);
  EXPECT_EQ(f32_to_e5m2(61440.0f), 0x7B);  // would round to inf unsaturated
  EXPECT_EQ(f32_to_e5m2(0x1p-17f), 0x00);  // half the smallest subnormal 2^-16: even
  EXPECT_EQ(f32_to_e5m2(0x1p-16f), 0x01);
  EXPECT_EQ(f32_to_e5m2(from_bits(0xFFC00000)), 0xFF);
  EXPECT_EQ(e5m2_to_f32(0x7C), INFINITY);  // decoding still knows inf
}

TEST(SpecTest, Bf16AndF16OverflowToInf) {
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65519.996f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);
  EXPECT_EQ(f32_to_f16(-1e30f), 0xFC00);
  EXPECT_EQ(f32_to_f16(0x1p-24f), 0x0001);
  EXPECT_EQ(f32_to_f16(0x1p-25f), 0x0000);
  EXPECT_EQ(f32_to_f16(from_bits(0x7F800001)), 0x7E00);  // quieted
  EXPECT_EQ(f32_to_bf16(from_bits(0x7F7FFFFF)), 0x7F80);
  EXPECT_EQ(f32_to_bf16(from_bits(0x00008000)), 0x0000);  // subnormal tie: even
  EXPECT_EQ(f32_to_bf16(from_bits(0x00018000)), 0x0002);
  EXPECT_EQ(f32_to_bf16(from_bits(0xFF800001)), 0xFFC0);  // quieted, sign kept
}

TEST(SpecTest, E8m0FollowsTorch) {
  EXPECT_EQ(bits(e8m0_to_f32(0)), 0x00400000u);  // 2^-127, an f32 subnormal
  EXPECT_EQ(e8m0_to_f32(0), std::ldexp(1.0f, -127));
  EXPECT_EQ(e8m0_to_f32(254), 0x1p127f);
  EXPECT_TRUE(std::isnan(e8m0_to_f32(255)));
  EXPECT_EQ(f32_to_e8m0(1.0f), 127);
  EXPECT_EQ(f32_to_e8m0(-1.0f), 127);   // sign ignored
  EXPECT_EQ(f32_to_e8m0(1.5f), 128);    // a tie rounds up
  EXPECT_EQ(f32_to_e8m0(1.4999999f), 127);
  EXPECT_EQ(f32_to_e8m0(0.0f), 0);
  EXPECT_EQ(f32_to_e8m0(0x1.8p127f), 255);  // past 2^127: NaN
  EXPECT_EQ(f32_to_e8m0(INFINITY), 255);
  EXPECT_EQ(f32_to_e8m0(NAN), 255);
}

}  // namespace
}  // namespace qswap
