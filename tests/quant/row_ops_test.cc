// The schemes' fast row kernels against their scalar definitions, on inputs chosen to sit on and
// next to every e4m3 rounding boundary after scaling (ties, one bf16 step either side), in the
// e4m3 subnormal range, at saturation, and on bf16 subnormals and zeros; odd lengths, every output
// alignment (streamed and plain stores), guard bytes around every output.
//
// Two levels: the AVX-512 kernels called by name (when the CPU has them) against the formula, and
// every scheme's quantize() on the fast path against its reference path, whole kernel tensors.
// Fresh random inputs per run; the seed is printed, QSWAP_TEST_SEED=<seed> replays.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "qswap/base/cpu.h"
#include "qswap/base/thread_pool.h"
#include "qswap/quant/row_ops_avx512.h"
#include "qswap/quant/scheme.h"
#include "qswap/tensor/convert.h"
#include "test_util.h"

namespace qswap {
namespace {

uint16_t bf16_bits(float x) { return static_cast<uint16_t>(std::bit_cast<uint32_t>(x) >> 16); }
float bf16_value(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

// bf16 values whose products with inv_scale straddle every e4m3 rounding boundary: for each
// midpoint between neighbouring e4m3 magnitudes (and the saturation edges 448, 464, 480), the bf16
// values nearest to midpoint / inv_scale and two steps either side, both signs; plus zeros, bf16
// subnormals and tiny normals. Finite values only.
std::vector<uint16_t> boundary_values(float inv_scale) {
  std::vector<double> targets;
  for (int c = 0; c < 0x7E; ++c) {
    targets.push_back((static_cast<double>(e4m3_to_f32(static_cast<uint8_t>(c))) +
                       static_cast<double>(e4m3_to_f32(static_cast<uint8_t>(c + 1)))) / 2);
    targets.push_back(e4m3_to_f32(static_cast<uint8_t>(c)));
  }
  for (double t : {448.0, 456.0, 464.0, 472.0, 480.0, 512.0, 1e6, 0x1p-10, 0x1p-11, 0x1p-20}) targets.push_back(t);
  std::vector<uint16_t> out;
  for (double t : targets) {
    const double x = inv_scale != 0.0f && std::isfinite(inv_scale) ? t / std::fabs(static_cast<double>(inv_scale)) : t;
    if (!(x < 3e38)) continue;
    const uint16_t h = bf16_bits(static_cast<float>(x)) & 0x7FFF;
    for (int d = -2; d <= 2; ++d) {
      const int v = static_cast<int>(h) + d;
      if (v < 0 || v >= 0x7F80) continue;
      out.push_back(static_cast<uint16_t>(v));
      out.push_back(static_cast<uint16_t>(v | 0x8000));
    }
  }
  for (uint16_t v : {0x0000, 0x8000, 0x0001, 0x8001, 0x007F, 0x0080, 0x0081, 0x80FF, 0x3C00}) out.push_back(v);
  return out;
}

// A random permutation of `pool` values padded/cut to n, with random finite bf16 values mixed in.
std::vector<uint16_t> mix(std::mt19937_64& rng, const std::vector<uint16_t>& pool, size_t n) {
  std::vector<uint16_t> out(n);
  std::uniform_int_distribution<size_t> pick(0, pool.size() - 1);
  for (size_t i = 0; i < n; ++i) {
    uint16_t v = static_cast<uint16_t>(rng());
    if ((v & 0x7F80) == 0x7F80) v ^= 0x4000;  // finite
    out[i] = (rng() % 4 != 0) ? pool[pick(rng)] : v;
  }
  return out;
}

constexpr size_t kLengths[] = {1, 15, 16, 31, 32, 33, 63, 64, 65, 127, 128, 129, 200, 255, 256, 257, 1000, 1024, 3001};
constexpr size_t kGuard = 64;

bool has_avx512() {
#if defined(__x86_64__)
  return detected_cpu_features().avx512;
#else
  return false;
#endif
}

const float kInvScales[] = {1.0f, 448.0f / 0.0731f, 0.37f, 3.0f, 0x1p-20f, 3e5f, 1e30f, 1e-38f, 0.0f, -0.0f,
                            -2.5f, -448.0f / 1.93f, INFINITY, -INFINITY};

TEST(RowKernelTest, E4m3MatchesFormulaAtEveryBoundary) {
  if (!has_avx512()) GTEST_SKIP() << "no AVX-512 on this CPU";
  const uint64_t seed = test::run_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  for (float inv : kInvScales) {
    const std::vector<uint16_t> pool = boundary_values(inv);
    for (size_t n : kLengths) {
      const std::vector<uint16_t> x = mix(rng, pool, n);
      for (size_t align : {size_t{0}, size_t{1}, size_t{17}, size_t{63}}) {
        SCOPED_TRACE(::testing::Message() << "inv_scale " << inv << " n " << n << " out offset " << align);
        alignas(64) static uint8_t buf[4096 + 3 * kGuard];
        std::memset(buf, 0xA5, sizeof(buf));
        uint8_t* out = buf + kGuard + align;
        quant::avx512::quantize_e4m3_bf16(x.data(), inv, out, static_cast<int64_t>(n));
        for (size_t i = 0; i < n; ++i) {
          ASSERT_EQ(out[i], f32_to_e4m3(bf16_value(x[i]) * inv)) << i << ": bf16 0x" << std::hex << x[i];
        }
        for (uint8_t* p = buf; p < out; ++p) ASSERT_EQ(*p, 0xA5) << "write before the output";
        for (uint8_t* p = out + n; p < buf + sizeof(buf); ++p) ASSERT_EQ(*p, 0xA5) << "write past the output";
      }
    }
  }
}

// Every finite bf16 value, in order, at several scales: every exponent and mantissa once.
TEST(RowKernelTest, E4m3MatchesFormulaOnEveryFiniteBf16) {
  if (!has_avx512()) GTEST_SKIP() << "no AVX-512 on this CPU";
  std::vector<uint16_t> x;
  for (uint32_t v = 0; v < 0x10000; ++v) {
    if ((v & 0x7F80) != 0x7F80) x.push_back(static_cast<uint16_t>(v));
  }
  std::vector<uint8_t> out(x.size());
  for (float inv : kInvScales) {
    SCOPED_TRACE(::testing::Message() << "inv_scale " << inv);
    quant::avx512::quantize_e4m3_bf16(x.data(), inv, out.data(), static_cast<int64_t>(x.size()));
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_EQ(out[i], f32_to_e4m3(bf16_value(x[i]) * inv)) << "bf16 0x" << std::hex << x[i];
    }
  }
}

TEST(RowKernelTest, E4m3TilesUseEachTilesScale) {
  if (!has_avx512()) GTEST_SKIP() << "no AVX-512 on this CPU";
  const uint64_t seed = test::run_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  for (size_t n : kLengths) {
    SCOPED_TRACE(::testing::Message() << "n " << n);
    const size_t tiles = (n + 127) / 128;
    std::vector<float> inv(tiles);
    std::vector<uint16_t> x(n);
    for (size_t t = 0; t < tiles; ++t) {
      inv[t] = kInvScales[rng() % std::size(kInvScales)];
      const std::vector<uint16_t> part = mix(rng, boundary_values(inv[t]), std::min<size_t>(128, n - 128 * t));
      std::copy(part.begin(), part.end(), x.begin() + static_cast<std::ptrdiff_t>(128 * t));
    }
    std::vector<uint8_t> out(n + kGuard, 0xA5);
    quant::avx512::quantize_e4m3_bf16_tiles(x.data(), inv.data(), out.data(), static_cast<int64_t>(n));
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(out[i], f32_to_e4m3(bf16_value(x[i]) * inv[i / 128])) << i;
    }
    for (size_t i = n; i < out.size(); ++i) ASSERT_EQ(out[i], 0xA5) << "write past the output";
  }
}

TEST(RowKernelTest, I8MatchesFormula) {
  if (!has_avx512()) GTEST_SKIP() << "no AVX-512 on this CPU";
  const uint64_t seed = test::run_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  for (float inv : {1.0f, 127.0f / 0.0731f, 0.37f, 3.0f, 0x1p-20f, 0.0f, -2.5f}) {
    // Ties of the integer rounding (k + 0.5) / inv and its neighbours; saturation beyond 127.
    std::vector<uint16_t> pool;
    for (int k = -140; k <= 140; ++k) {
      const double x = inv != 0.0f ? (k + 0.5) / inv : k;
      const uint16_t h = bf16_bits(static_cast<float>(x));
      for (int d = -1; d <= 1; ++d) {
        if (((h + d) & 0x7F80) != 0x7F80) pool.push_back(static_cast<uint16_t>(h + d));
      }
    }
    for (size_t n : kLengths) {
      SCOPED_TRACE(::testing::Message() << "inv_scale " << inv << " n " << n);
      const std::vector<uint16_t> x = mix(rng, pool, n);
      std::vector<int8_t> out(n + kGuard, 0x5A);
      quant::avx512::quantize_i8_bf16(x.data(), inv, out.data(), static_cast<int64_t>(n));
      for (size_t i = 0; i < n; ++i) {
        const float q = std::nearbyint(bf16_value(x[i]) * inv);
        ASSERT_EQ(out[i], static_cast<int8_t>(std::clamp(q, -127.0f, 127.0f))) << i << ": bf16 0x" << std::hex << x[i];
      }
      for (size_t i = n; i < out.size(); ++i) ASSERT_EQ(out[i], 0x5A) << "write past the output";
    }
  }
}

TEST(RowKernelTest, AmaxIsMaxAbsAndPropagatesNan) {
  if (!has_avx512()) GTEST_SKIP() << "no AVX-512 on this CPU";
  const uint64_t seed = test::run_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  for (size_t n : kLengths) {
    std::vector<uint16_t> x(n);
    for (auto& v : x) v = bf16_bits(normal(rng));
    // The maximum, an inf, a NaN, a negative NaN at a random place and at the last one.
    for (int special : {-1, 0xC2F0, 0x7F80, 0x7FC1, 0xFF81}) {
      for (size_t pos : {static_cast<size_t>(rng() % n), n - 1}) {
        std::vector<uint16_t> y = x;
        if (special >= 0) y[pos] = static_cast<uint16_t>(special);
        float want = 0.0f;
        for (uint16_t v : y) want = std::isnan(want) || std::isnan(bf16_value(v)) ? NAN : std::max(want, std::fabs(bf16_value(v)));
        for (bool prefetch : {false, true}) {
          SCOPED_TRACE(::testing::Message() << "n " << n << " special " << special << " at " << pos);
          const float got = quant::avx512::amax_bf16(y.data(), static_cast<int64_t>(n), prefetch);
          if (std::isnan(want)) {
            EXPECT_EQ(std::bit_cast<uint32_t>(got), 0x7FC00000u);
          } else {
            EXPECT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want));
          }
        }
      }
    }
  }
}

// Expected max |x| per 128-column tile, as float arithmetic (NaN sticks).
std::vector<float> expected_tile_amax(const std::vector<uint16_t>& x, int64_t rows, int64_t cols) {
  std::vector<float> m(static_cast<size_t>((cols + 127) / 128), 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      float& t = m[static_cast<size_t>(c / 128)];
      const float v = std::fabs(bf16_value(x[static_cast<size_t>(r * cols + c)]));
      t = std::isnan(t) || std::isnan(v) ? NAN : std::max(t, v);
    }
  }
  return m;
}

TEST(RowKernelTest, TileAmaxIsMaxAbsPerTileAndPropagatesNan) {
  if (!has_avx512()) GTEST_SKIP() << "no AVX-512 on this CPU";
  const uint64_t seed = test::run_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  for (int64_t cols : {1, 33, 128, 129, 255, 1000, 4500}) {
    for (int64_t rows : {1, 3, 130}) {
      SCOPED_TRACE(::testing::Message() << rows << " x " << cols);
      std::vector<uint16_t> x(static_cast<size_t>(rows * cols));
      for (auto& v : x) v = bf16_bits(normal(rng));
      std::vector<float> got(static_cast<size_t>((cols + 127) / 128));
      auto check = [&] {
        quant::avx512::amax_bf16_tiles(x.data(), rows, cols, cols, got.data());
        const std::vector<float> want = expected_tile_amax(x, rows, cols);
        for (size_t t = 0; t < want.size(); ++t) {
          if (std::isnan(want[t])) {
            EXPECT_TRUE(std::isnan(got[t])) << "tile " << t;
          } else {
            EXPECT_EQ(std::bit_cast<uint32_t>(got[t]), std::bit_cast<uint32_t>(want[t])) << "tile " << t;
          }
        }
      };
      check();
      // The maximum, an inf and a NaN at a random place (the last column included).
      for (uint16_t special : {uint16_t{0xC2F0}, uint16_t{0xFF80}, uint16_t{0x7FC1}}) {
        const size_t pos = static_cast<size_t>(rng() % x.size());
        const uint16_t saved = x[pos];
        x[pos] = special;
        check();
        x[x.size() - 1] = special;
        check();
        x[pos] = saved;
        x[x.size() - 1] = bf16_bits(0.0f);
      }
    }
  }
}

TEST(RowKernelTest, CopiesAreExactAndFindNonFinite) {
  if (!has_avx512()) GTEST_SKIP() << "no AVX-512 on this CPU";
  const uint64_t seed = test::run_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  for (size_t n : kLengths) {
    for (size_t offset : {size_t{0}, size_t{1}, size_t{7}, size_t{31}}) {  // dst offset in elements
      SCOPED_TRACE(::testing::Message() << "n " << n << " dst offset " << offset);
      std::vector<uint16_t> src(n);
      for (auto& v : src) v = static_cast<uint16_t>(rng()) & 0x7F7F;  // finite
      alignas(64) static uint16_t buf[4096];
      for (int special : {-1, 0x7F80, 0xFF80, 0x7FC0, 0xFFFF}) {
        std::vector<uint16_t> s = src;
        if (special >= 0) s[static_cast<size_t>(rng() % n)] = static_cast<uint16_t>(special);
        std::fill(std::begin(buf), std::end(buf), 0x5A5A);
        const bool finite = quant::avx512::copy_bf16_finite(s.data(), buf + 32 + offset, static_cast<int64_t>(n));
        EXPECT_EQ(finite, special < 0);
        ASSERT_TRUE(std::equal(s.begin(), s.end(), buf + 32 + offset));
        for (size_t i = 0; i < 32 + offset; ++i) ASSERT_EQ(buf[i], 0x5A5A) << "write before the output";
        for (size_t i = 32 + offset + n; i < 4096; ++i) ASSERT_EQ(buf[i], 0x5A5A) << "write past the output";
        // The staging copy: same bytes, and max |x| as amax_bf16 has it.
        std::fill(std::begin(buf), std::end(buf), 0x5A5A);
        const float m = quant::avx512::copy_amax_bf16(s.data(), buf + 32 + offset, static_cast<int64_t>(n));
        EXPECT_EQ(std::bit_cast<uint32_t>(m), std::bit_cast<uint32_t>(amax_bf16(s.data(), n)));
        ASSERT_TRUE(std::equal(s.begin(), s.end(), buf + 32 + offset));
        for (size_t i = 0; i < 32 + offset; ++i) ASSERT_EQ(buf[i], 0x5A5A) << "write before the output";
        for (size_t i = 32 + offset + n; i < 4096; ++i) ASSERT_EQ(buf[i], 0x5A5A) << "write past the output";
      }
    }
  }
}

// ---- Whole schemes: fast path == reference path, kernel tensor for kernel tensor ----

struct Tensors {
  std::vector<Buffer> buffers;
  std::vector<TensorView> views;
};
Tensors make_tensors(const QuantScheme& scheme, std::span<const int64_t> shard_rows, int64_t k) {
  Tensors t;
  for (const KernelTensorSpec& spec : scheme.kernel_tensors(shard_rows, k)) {
    t.views.push_back(TensorView{spec.dtype, spec.shape, nullptr});
    t.buffers.emplace_back(t.views.back().nbytes());
    std::memset(t.buffers.back().data(), 0xA5, t.buffers.back().size());
    t.views.back().data = t.buffers.back().data();
  }
  return t;
}

// Rows of very different magnitudes (so scales differ per row, tile and block), each with values
// on and next to the rounding boundaries of its own scale, an all-zero row, rows of bf16
// subnormals. A row's amax is 448 * 2^k (then fp8's scale is exactly 2^k and MX's exponent k: the
// products land exactly on ties), 127 * 2^k (int8's scale exactly 2^k, values at its ties), or
// random (inexact scales, products anywhere).
std::vector<uint16_t> adversarial_matrix(std::mt19937_64& rng, int64_t rows, int64_t cols) {
  std::vector<uint16_t> x(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    const float pow2 = std::ldexp(1.0f, static_cast<int>(rng() % 60) - 40);
    float amax = 0.0f;
    std::vector<uint16_t> pool;
    switch (r % 3) {
      case 0:
        amax = 448.0f * pow2;
        pool = boundary_values(1.0f / pow2);
        break;
      case 1:
        amax = 127.0f * pow2;
        for (int k = -128; k < 128; ++k) {
          const uint16_t h = bf16_bits((static_cast<float>(k) + 0.5f) * pow2);
          for (int d = -1; d <= 1; ++d) pool.push_back(static_cast<uint16_t>(h + d));
        }
        break;
      default:
        amax = pow2 * (1.0f + static_cast<float>(rng() % 1000) / 1000.0f);
        pool = boundary_values(448.0f / amax);
        break;
    }
    amax = bf16_value(bf16_bits(amax));
    std::vector<uint16_t> row = mix(rng, pool, static_cast<size_t>(cols));
    for (auto& v : row) {
      if (!(std::fabs(bf16_value(v)) <= amax)) v = bf16_bits(std::copysign(amax, bf16_value(v)));
    }
    row[static_cast<size_t>(rng() % static_cast<uint64_t>(cols))] = bf16_bits(amax);
    if (r % 7 == 3) std::fill(row.begin(), row.end(), uint16_t{0});
    if (r % 11 == 5) {
      for (auto& v : row) v &= 0x807F;  // bf16 subnormals only
    }
    std::copy(row.begin(), row.end(), x.begin() + static_cast<std::ptrdiff_t>(r * cols));
  }
  return x;
}

// Scheme x ISA cap (scalar: the fast path without AVX-512 kernels; native).
class SchemeFastPathTest : public ::testing::TestWithParam<std::tuple<std::string, IsaLevel>> {
 protected:
  void SetUp() override {
    saved_ = isa_level();
    set_isa_cap(std::get<1>(GetParam()));
  }
  void TearDown() override { set_isa_cap(saved_); }
  const std::string& scheme_name() const { return std::get<0>(GetParam()); }

  IsaLevel saved_ = IsaLevel::kScalar;
};

TEST_P(SchemeFastPathTest, FastEqualsReferenceOnAdversarialRows) {
  const uint64_t seed = test::run_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  auto scheme = make_quant_scheme(scheme_name());
  ASSERT_TRUE(scheme.ok());
  ThreadPool pool(2);
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{1, 1}, {3, 33}, {130, 129}, {200, 256}, {17, 1000}, {129, 1024}};
  for (const auto& [rows, cols] : shapes) {
    SCOPED_TRACE(::testing::Message() << rows << " x " << cols);
    const std::vector<uint16_t> x = adversarial_matrix(rng, rows, cols);
    const std::vector<int64_t> shard{rows};
    const SourceRows src{DType::kBF16, reinterpret_cast<const std::byte*>(x.data()), 0, rows, cols, 0};
    Tensors ref = make_tensors(**scheme, shard, cols);
    ASSERT_TRUE((*scheme)->quantize(src, ref.views, QuantContext{true, nullptr}).ok());
    for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
      Tensors fast = make_tensors(**scheme, shard, cols);
      ASSERT_TRUE((*scheme)->quantize(src, fast.views, QuantContext{false, p}).ok());
      for (size_t i = 0; i < ref.buffers.size(); ++i) {
        ASSERT_EQ(std::memcmp(ref.buffers[i].data(), fast.buffers[i].data(), ref.buffers[i].size()), 0)
            << "kernel tensor " << i << (p != nullptr ? ", 2 threads" : ", 1 thread");
      }
    }
  }
}

TEST_P(SchemeFastPathTest, NonFiniteRowIsNamedAlike) {
  auto scheme = make_quant_scheme(scheme_name());
  ASSERT_TRUE(scheme.ok());
  const int64_t rows = 300, cols = 130;
  std::mt19937_64 rng(1);
  for (uint16_t bad : {uint16_t{0x7F80}, uint16_t{0xFFC1}}) {
    std::vector<uint16_t> x = adversarial_matrix(rng, rows, cols);
    x[static_cast<size_t>(211 * cols + 129)] = bad;
    x[static_cast<size_t>(250 * cols + 3)] = bad;
    const SourceRows src{DType::kBF16, reinterpret_cast<const std::byte*>(x.data()), 40, rows, cols, 0};
    const std::vector<int64_t> shard{rows + 40};
    Tensors ref = make_tensors(**scheme, shard, cols), fast = make_tensors(**scheme, shard, cols);
    Status want = (*scheme)->quantize(src, ref.views, QuantContext{true, nullptr});
    Status got = (*scheme)->quantize(src, fast.views, QuantContext{false, nullptr});
    ASSERT_FALSE(want.ok());
    EXPECT_EQ(got.to_string(), want.to_string());
    EXPECT_NE(want.message().find("row 251"), std::string::npos) << want.to_string();
  }
}

INSTANTIATE_TEST_SUITE_P(AllSchemes, SchemeFastPathTest,
                         ::testing::Combine(::testing::Values("none", "fp8", "fp8-channel", "fp8-block", "mxfp8",
                                                              "int8-channel"),
                                            ::testing::Values(IsaLevel::kScalar, IsaLevel::kAvx512)),
                         [](const auto& param_info) {
                           std::string s = std::get<0>(param_info.param);
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s + (std::get<1>(param_info.param) == IsaLevel::kScalar ? "_Scalar" : "_Native");
                         });

// Per-tensor FP8 as the loader feeds a staged parameter: the last shard read in place (a patch),
// the staged rows' amax measured while staging. Same bytes as one contiguous parameter.
TEST(Fp8TensorPatchTest, PatchAndStagedAmaxGiveTheContiguousResult) {
  const uint64_t seed = test::run_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  auto scheme = make_quant_scheme("fp8");
  ASSERT_TRUE(scheme.ok());
  const int64_t rows = 96, cols = 200;
  const std::vector<int64_t> shard{rows};
  for (int64_t patch_row0 : {0, 40, 64}) {
    const int64_t patch_rows = patch_row0 == 40 ? 24 : 32;
    SCOPED_TRACE(::testing::Message() << "patch rows " << patch_row0 << ".." << patch_row0 + patch_rows);
    const std::vector<uint16_t> x = adversarial_matrix(rng, rows, cols);
    const SourceRows whole{DType::kBF16, reinterpret_cast<const std::byte*>(x.data()), 0, rows, cols, 0};
    Tensors want = make_tensors(**scheme, shard, cols);
    ASSERT_TRUE((*scheme)->quantize(whole, want.views, QuantContext{true, nullptr}).ok());
    // The staging holds garbage where the patch goes: it must never be read.
    std::vector<uint16_t> staged = x;
    std::vector<uint16_t> patch(x.begin() + patch_row0 * cols, x.begin() + (patch_row0 + patch_rows) * cols);
    std::fill(staged.begin() + patch_row0 * cols, staged.begin() + (patch_row0 + patch_rows) * cols, uint16_t{0x7FC0});
    float staged_amax = 0.0f;
    for (int64_t i = 0; i < rows * cols; ++i) {
      if (i / cols < patch_row0 || i / cols >= patch_row0 + patch_rows) {
        staged_amax = std::max(staged_amax, std::fabs(bf16_value(x[static_cast<size_t>(i)])));
      }
    }
    for (float known : {-1.0f, staged_amax}) {
      for (bool reference : {true, false}) {
        SourceRows src{DType::kBF16, reinterpret_cast<const std::byte*>(staged.data()), 0, rows, cols, 0,
                       reinterpret_cast<const std::byte*>(patch.data()), patch_row0, patch_rows};
        src.staged_amax = known;
        Tensors got = make_tensors(**scheme, shard, cols);
        ASSERT_TRUE((*scheme)->quantize(src, got.views, QuantContext{reference, nullptr}).ok());
        for (size_t i = 0; i < want.buffers.size(); ++i) {
          ASSERT_EQ(std::memcmp(want.buffers[i].data(), got.buffers[i].data(), want.buffers[i].size()), 0)
              << "kernel tensor " << i << " known amax " << known << " reference " << reference;
        }
      }
    }
  }
}

}  // namespace
}  // namespace qswap
