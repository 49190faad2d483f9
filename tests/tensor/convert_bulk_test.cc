// The bulk conversions (dispatched: AVX-512 where the CPU has it) against the one-value
// reference, run twice: with the ISA capped to scalar and uncapped. Inputs: the golden boundary
// values, every 8/16-bit code, a sweep of all f32 exponents, and fresh random data of odd lengths
// (the seed is printed on failure; QSWAP_TEST_SEED=<seed> replays it).
#include <cmath>
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

constexpr size_t kLengths[] = {0, 1, 2, 15, 16, 17, 31, 32, 33, 63, 65, 100, 1000003};

// Runs each test with the ISA level capped to the parameter, then restores the level in force.
class BulkTest : public test::IsaTest {
 protected:
  void SetUp() override {
    IsaTest::SetUp();
    RecordProperty("isa", isa_name(isa_level()));
  }
};

std::string level_name(const ::testing::TestParamInfo<IsaLevel>& info) {
  return info.param == IsaLevel::kScalar ? "Scalar" : "Native";
}

// Output buffer with a guard element on each side, to catch writes outside [0, n).
template <typename T>
class Guarded {
 public:
  static constexpr T kGuard = static_cast<T>(0x5A5A5A5A);
  explicit Guarded(size_t n) : data_(n + 2, kGuard) {}
  T* data() { return data_.data() + 1; }
  const T& operator[](size_t i) const { return data_[i + 1]; }
  bool guards_intact() const { return data_.front() == kGuard && data_.back() == kGuard; }

 private:
  std::vector<T> data_;
};

template <>
class Guarded<float> {
 public:
  explicit Guarded(size_t n) : data_(n + 2, kGuard) {}
  float* data() { return reinterpret_cast<float*>(data_.data() + 1); }
  uint32_t bits_at(size_t i) const { return data_[i + 1]; }
  bool guards_intact() const { return data_.front() == kGuard && data_.back() == kGuard; }

 private:
  static constexpr uint32_t kGuard = 0x5A5A5A5A;
  std::vector<uint32_t> data_;
};

// Bulk f32 -> code vs the one-value reference, element by element.
template <typename Code>
void check_encode(const std::vector<uint32_t>& in_bits, void (*bulk)(const float*, Code*, size_t),
                  uint32_t (*ref)(uint32_t), const char* what) {
  std::vector<float> in = test::to_floats(in_bits);
  Guarded<Code> out(in.size());
  bulk(in.data(), out.data(), in.size());
  ASSERT_TRUE(out.guards_intact()) << what << " wrote outside [0, " << in.size() << ")";
  for (size_t i = 0; i < in.size(); ++i) {
    ASSERT_EQ(uint32_t{out[i]}, ref(in_bits[i]))
        << what << "[" << i << "] of " << in.size() << ", input 0x" << std::hex << in_bits[i];
  }
}

// Bulk code -> f32 vs the one-value reference.
template <typename Code>
void check_decode(const std::vector<Code>& in, void (*bulk)(const Code*, float*, size_t),
                  uint32_t (*ref)(uint32_t), const char* what) {
  Guarded<float> out(in.size());
  bulk(in.data(), out.data(), in.size());
  ASSERT_TRUE(out.guards_intact()) << what << " wrote outside [0, " << in.size() << ")";
  for (size_t i = 0; i < in.size(); ++i) {
    ASSERT_EQ(out.bits_at(i), ref(in[i]))
        << what << "[" << i << "] of " << in.size() << ", code 0x" << std::hex << uint32_t{in[i]};
  }
}

uint32_t ref_bf16(uint32_t u) { return f32_to_bf16(from_bits(u)); }
uint32_t ref_f16(uint32_t u) { return f32_to_f16(from_bits(u)); }
uint32_t ref_e4m3(uint32_t u) { return f32_to_e4m3(from_bits(u)); }
uint32_t ref_e5m2(uint32_t u) { return f32_to_e5m2(from_bits(u)); }
uint32_t ref_e8m0(uint32_t u) { return f32_to_e8m0(from_bits(u)); }
uint32_t ref_from_bf16(uint32_t c) { return bits(bf16_to_f32(static_cast<uint16_t>(c))); }
uint32_t ref_from_f16(uint32_t c) { return bits(f16_to_f32(static_cast<uint16_t>(c))); }
uint32_t ref_from_e4m3(uint32_t c) { return bits(e4m3_to_f32(static_cast<uint8_t>(c))); }
uint32_t ref_from_e5m2(uint32_t c) { return bits(e5m2_to_f32(static_cast<uint8_t>(c))); }
uint32_t ref_from_e8m0(uint32_t c) { return bits(e8m0_to_f32(static_cast<uint8_t>(c))); }

void check_all_encoders(const std::vector<uint32_t>& in) {
  check_encode<uint16_t>(in, f32_to_bf16, ref_bf16, "f32_to_bf16");
  check_encode<uint16_t>(in, f32_to_f16, ref_f16, "f32_to_f16");
  check_encode<uint8_t>(in, f32_to_e4m3, ref_e4m3, "f32_to_e4m3");
  check_encode<uint8_t>(in, f32_to_e5m2, ref_e5m2, "f32_to_e5m2");
  check_encode<uint8_t>(in, f32_to_e8m0, ref_e8m0, "f32_to_e8m0");
}

template <typename Code>
void check_all_decoders(const std::vector<Code>& in);
template <>
void check_all_decoders(const std::vector<uint16_t>& in) {
  check_decode<uint16_t>(in, bf16_to_f32, ref_from_bf16, "bf16_to_f32");
  check_decode<uint16_t>(in, f16_to_f32, ref_from_f16, "f16_to_f32");
}
template <>
void check_all_decoders(const std::vector<uint8_t>& in) {
  check_decode<uint8_t>(in, e4m3_to_f32, ref_from_e4m3, "e4m3_to_f32");
  check_decode<uint8_t>(in, e5m2_to_f32, ref_from_e5m2, "e5m2_to_f32");
  check_decode<uint8_t>(in, e8m0_to_f32, ref_from_e8m0, "e8m0_to_f32");
}

TEST_P(BulkTest, EncodersMatchReferenceOnGoldenInputs) {
  check_all_encoders(test::golden_input_pool());
}

TEST_P(BulkTest, EncodersMatchReferenceAcrossAllExponents) {
  uint64_t seed = test::run_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  // Every 4096th bit pattern from a random start: 2048 values in each (sign, exponent) pair.
  std::vector<uint32_t> in(1u << 20);
  uint32_t start = static_cast<uint32_t>(rng()) & 0xFFF;
  for (size_t i = 0; i < in.size(); ++i) in[i] = start + static_cast<uint32_t>(i) * 4096u;
  check_all_encoders(in);
}

TEST_P(BulkTest, DecodersMatchReferenceOnEveryCode) {
  std::vector<uint16_t> all16(65536);
  for (size_t c = 0; c < all16.size(); ++c) all16[c] = static_cast<uint16_t>(c);
  check_all_decoders(all16);
  std::vector<uint8_t> all8(256 * 3 + 5);  // every code, at every lane position
  for (size_t c = 0; c < all8.size(); ++c) all8[c] = static_cast<uint8_t>(c * 7);
  check_all_decoders(all8);
}

TEST_P(BulkTest, RandomOddLengthsMatchReference) {
  uint64_t seed = test::run_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  for (size_t n : kLengths) {
    SCOPED_TRACE(::testing::Message() << "n " << n);
    check_all_encoders(test::random_f32_bits(rng, n, test::golden_input_pool()));
    std::vector<uint16_t> in16(n);
    std::vector<uint8_t> in8(n);
    for (auto& v : in16) v = static_cast<uint16_t>(rng());
    for (auto& v : in8) v = static_cast<uint8_t>(rng());
    check_all_decoders(in16);
    check_all_decoders(in8);
  }
}

// Pointers that are not 64-byte aligned (only element-aligned): every offset inside a vector.
TEST_P(BulkTest, UnalignedPointersMatchReference) {
  uint64_t seed = test::run_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  std::vector<uint32_t> in = test::random_f32_bits(rng, 200, test::golden_input_pool());
  for (size_t offset = 1; offset < 16; ++offset) {
    std::vector<uint32_t> shifted(in.begin() + static_cast<std::ptrdiff_t>(offset), in.end());
    check_all_encoders(shifted);
  }
}

// q = e4m3(x * inv_scale), with the product rounded to f32 first (DESIGN.md); a NaN inv_scale
// gives its own NaN code (NaN * NaN would keep whichever NaN the compiler's operand order picks).
uint8_t expected_scaled(float x, float inv_scale) {
  if (std::isnan(inv_scale)) return std::signbit(inv_scale) ? 0xFF : 0x7F;
  return f32_to_e4m3(x * inv_scale);
}

TEST_P(BulkTest, ScaledQuantizeMatchesPerElementFormula) {
  uint64_t seed = test::run_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  const float inv_scales[] = {
      1.0f, 3.0f, 0.1f, 448.0f / 2.75f, 0x1p-20f, 1e-30f, 1e30f, 0.0f, -2.0f, INFINITY,
      NAN, from_bits(0xFFC00001), from_bits(0x00000003)};
  for (size_t n : kLengths) {
    if (n > 100000) n = 4099;  // the large case is covered by RandomOddLengths
    std::vector<uint32_t> in_bits = test::random_f32_bits(rng, n, test::golden_input_pool());
    std::vector<float> in = test::to_floats(in_bits);
    std::vector<uint16_t> in_bf16(n);
    for (auto& v : in_bf16) v = static_cast<uint16_t>(rng());
    for (float inv_scale : inv_scales) {
      SCOPED_TRACE(::testing::Message() << "n " << n << " inv_scale " << inv_scale);
      Guarded<uint8_t> out(n), out_bf16(n);
      f32_to_e4m3_scaled(in.data(), inv_scale, out.data(), n);
      bf16_to_e4m3_scaled(in_bf16.data(), inv_scale, out_bf16.data(), n);
      ASSERT_TRUE(out.guards_intact() && out_bf16.guards_intact());
      for (size_t i = 0; i < n; ++i) {
        ASSERT_EQ(out[i], expected_scaled(in[i], inv_scale))
            << i << ": 0x" << std::hex << in_bits[i];
        ASSERT_EQ(out_bf16[i], expected_scaled(bf16_to_f32(in_bf16[i]), inv_scale))
            << i << ": bf16 0x" << std::hex << in_bf16[i];
      }
    }
  }
}

// Every bf16 bit pattern (NaN and Inf included, so blocks of 64 with and without them), in order
// and from an odd offset, at scales that make the products land on e4m3 ties (powers of two),
// saturate, underflow to e4m3 subnormals, or hit 0 * inf.
TEST_P(BulkTest, ScaledQuantizeOfEveryBf16MatchesPerElementFormula) {
  std::vector<uint16_t> all(65536 + 5);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i * 0x0001u);
  const float inv_scales[] = {1.0f, 0x1p-7f, 0x1p9f, 448.0f / 2.75f, -3.0f, 0.0f, 1e-38f, 1e38f, INFINITY, -INFINITY};
  for (float inv_scale : inv_scales) {
    for (size_t offset : {size_t{0}, size_t{3}}) {
      SCOPED_TRACE(::testing::Message() << "inv_scale " << inv_scale << " offset " << offset);
      const size_t n = all.size() - offset;
      Guarded<uint8_t> out(n);
      bf16_to_e4m3_scaled(all.data() + offset, inv_scale, out.data(), n);
      ASSERT_TRUE(out.guards_intact());
      for (size_t i = 0; i < n; ++i) {
        ASSERT_EQ(out[i], expected_scaled(bf16_to_f32(all[offset + i]), inv_scale)) << "bf16 0x" << std::hex << all[offset + i];
      }
    }
  }
}

// With inv_scale 1 the scaled quantize is the plain cast: torch's goldens apply directly.
TEST_P(BulkTest, ScaledQuantizeWithUnitScaleMatchesTorch) {
  test::EncodeGolden g = test::read_encode_golden("e4m3", 1);
  std::vector<float> in = test::to_floats(g.inputs);
  std::vector<uint8_t> out(in.size());
  f32_to_e4m3_scaled(in.data(), 1.0f, out.data(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (test::f32_is_nan(g.inputs[i])) {
      EXPECT_EQ(out[i], (g.inputs[i] >> 31) != 0 ? 0xFF : 0x7F) << std::hex << g.inputs[i];
    } else {
      ASSERT_EQ(out[i], g.outputs[i]) << "input 0x" << std::hex << g.inputs[i];
    }
  }
}

// Expected amax computed independently here, with float arithmetic.
float expected_amax(const std::vector<float>& v) {
  float m = 0.0f;
  for (float x : v) {
    if (std::isnan(x)) return NAN;
    m = std::max(m, std::fabs(x));
  }
  return m;
}

void check_amax(const std::vector<float>& v, const std::vector<uint16_t>& v_bf16) {
  float want = expected_amax(v);
  float got = amax_f32(v.data(), v.size());
  std::vector<float> widened(v_bf16.size());
  for (size_t i = 0; i < v_bf16.size(); ++i) widened[i] = bf16_to_f32(v_bf16[i]);
  float want_bf16 = expected_amax(widened);
  float got_bf16 = amax_bf16(v_bf16.data(), v_bf16.size());
  if (std::isnan(want)) {
    EXPECT_EQ(bits(got), 0x7FC00000u) << "n " << v.size();
  } else {
    EXPECT_EQ(bits(got), bits(want)) << "n " << v.size();
  }
  if (std::isnan(want_bf16)) {
    EXPECT_EQ(bits(got_bf16), 0x7FC00000u) << "n " << v_bf16.size();
  } else {
    EXPECT_EQ(bits(got_bf16), bits(want_bf16)) << "n " << v_bf16.size();
  }
}

TEST_P(BulkTest, AmaxIsMaxAbsAndPropagatesNan) {
  uint64_t seed = test::run_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  EXPECT_EQ(bits(amax_f32(nullptr, 0)), 0u);
  EXPECT_EQ(bits(amax_bf16(nullptr, 0)), 0u);
  for (size_t n : {1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65, 1001, 100003}) {
    SCOPED_TRACE(::testing::Message() << "n " << n);
    std::vector<float> v(n);
    std::vector<uint16_t> h(n);
    for (size_t i = 0; i < n; ++i) {
      v[i] = normal(rng);
      h[i] = f32_to_bf16(normal(rng));
    }
    check_amax(v, h);
    // The maximum, a NaN and an inf at the first, a middle, the last (tail) position.
    for (size_t pos : {size_t{0}, n / 2, n - 1}) {
      std::vector<float> w = v;
      std::vector<uint16_t> wh = h;
      w[pos] = -7.5f;
      wh[pos] = 0xC0F0;  // -7.5
      check_amax(w, wh);
      w[pos] = -INFINITY;
      wh[pos] = 0xFF80;
      check_amax(w, wh);
      w[pos] = from_bits(0xFF800001);  // a signalling NaN, negative
      wh[pos] = 0xFF81;
      check_amax(w, wh);
    }
    std::vector<float> zeros(n, -0.0f);
    std::vector<uint16_t> zeros_bf16(n, 0x8000);
    check_amax(zeros, zeros_bf16);
    EXPECT_EQ(bits(amax_f32(zeros.data(), n)), 0u);  // +0, not -0
    std::vector<float> tiny(n, from_bits(0x80000001));  // -(smallest subnormal)
    std::vector<uint16_t> tiny_bf16(n, 0x8001);
    check_amax(tiny, tiny_bf16);
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, BulkTest, ::testing::Values(IsaLevel::kScalar, IsaLevel::kAvx512),
                         level_name);

// When the CPU has AVX-512, also call those paths by name, so a dispatch bug cannot hide them.
TEST(Avx512Test, DirectCallsMatchScalar) {
#if defined(__x86_64__)
  if (!detected_cpu_features().avx512) GTEST_SKIP() << "no AVX-512 on this CPU";
  uint64_t seed = test::run_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  const size_t n = 1037;
  std::vector<uint32_t> in_bits = test::random_f32_bits(rng, n, test::golden_input_pool());
  std::vector<float> in = test::to_floats(in_bits);
  std::vector<uint16_t> h(n);
  for (auto& v : h) v = static_cast<uint16_t>(rng());
  std::vector<uint8_t> b(n), fast8(n), ref8(n);
  for (auto& v : b) v = static_cast<uint8_t>(rng());
  std::vector<uint16_t> fast16(n), ref16(n);
  std::vector<float> fastf(n), reff(n);
  auto same_f32 = [&] { return std::memcmp(fastf.data(), reff.data(), n * 4) == 0; };
  avx512::f32_to_bf16(in.data(), fast16.data(), n);
  scalar::f32_to_bf16(in.data(), ref16.data(), n);
  EXPECT_EQ(fast16, ref16);
  avx512::f32_to_f16(in.data(), fast16.data(), n);
  scalar::f32_to_f16(in.data(), ref16.data(), n);
  EXPECT_EQ(fast16, ref16);
  avx512::f32_to_e4m3(in.data(), fast8.data(), n);
  scalar::f32_to_e4m3(in.data(), ref8.data(), n);
  EXPECT_EQ(fast8, ref8);
  avx512::f32_to_e5m2(in.data(), fast8.data(), n);
  scalar::f32_to_e5m2(in.data(), ref8.data(), n);
  EXPECT_EQ(fast8, ref8);
  avx512::f32_to_e4m3_scaled(in.data(), 0.37f, fast8.data(), n);
  scalar::f32_to_e4m3_scaled(in.data(), 0.37f, ref8.data(), n);
  EXPECT_EQ(fast8, ref8);
  avx512::bf16_to_e4m3_scaled(h.data(), 0.37f, fast8.data(), n);
  scalar::bf16_to_e4m3_scaled(h.data(), 0.37f, ref8.data(), n);
  EXPECT_EQ(fast8, ref8);
  avx512::bf16_to_f32(h.data(), fastf.data(), n);
  scalar::bf16_to_f32(h.data(), reff.data(), n);
  EXPECT_TRUE(same_f32());
  avx512::f16_to_f32(h.data(), fastf.data(), n);
  scalar::f16_to_f32(h.data(), reff.data(), n);
  EXPECT_TRUE(same_f32());
  avx512::e4m3_to_f32(b.data(), fastf.data(), n);
  scalar::e4m3_to_f32(b.data(), reff.data(), n);
  EXPECT_TRUE(same_f32());
  avx512::e5m2_to_f32(b.data(), fastf.data(), n);
  scalar::e5m2_to_f32(b.data(), reff.data(), n);
  EXPECT_TRUE(same_f32());
  EXPECT_EQ(bits(avx512::amax_f32(in.data(), n)), bits(scalar::amax_f32(in.data(), n)));
  EXPECT_EQ(bits(avx512::amax_bf16(h.data(), n)), bits(scalar::amax_bf16(h.data(), n)));
#else
  GTEST_SKIP() << "not x86-64";
#endif
}

}  // namespace
}  // namespace qswap
