// Element-wise ops: against torch goldens (tests/kernels/data/ops_golden.json, written by
// make_ops_golden.py the way Hugging Face computes them), against double-precision formulas on
// random inputs of odd lengths, and fast path against reference. Each with the ISA capped to
// scalar and uncapped.
#include "qswap/kernels/ops.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kernels_test_util.h"
#include "qswap/tensor/convert.h"

namespace qswap {
namespace {

// |got - want| <= kRel * |want| + kAbs: a few f32 ulps (sums reassociated, exp within 2 ulp).
constexpr double kRel = 2e-6;
constexpr double kAbs = 1e-30;

// `cond` (optional) multiplies element i's relative tolerance (see softmax_cond).
::testing::AssertionResult close(const std::vector<float>& got, const std::vector<double>& want,
                                 const std::vector<double>& cond = {}) {
  if (got.size() != want.size()) return ::testing::AssertionFailure() << "size " << got.size() << " vs " << want.size();
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    const double rel = kRel * (cond.empty() ? 1.0 : cond[i]);
    if (g == w) continue;  // infinities
    if (std::isnan(w) ? !std::isnan(g) : !(std::fabs(g - w) <= rel * std::fabs(w) + kAbs)) {
      return ::testing::AssertionFailure() << "element " << i << ": got " << g << ", want " << w;
    }
  }
  return ::testing::AssertionSuccess();
}

std::vector<double> as_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// Softmax's condition per element: x - max is rounded to f32 before exp (relative error
// ~ |x_i - max| ulp in exp), the normalising sum inherits the probability-weighted mean of those,
// and an f32 sum of n terms adds ~ sqrt(n) ulp.
std::vector<double> softmax_cond(const std::vector<float>& x) {
  double mx = -INFINITY;
  for (float v : x) mx = std::max(mx, static_cast<double>(v));
  double sum = 0.0, weighted = 0.0;
  for (float v : x) sum += std::exp(v - mx);
  for (float v : x) {
    if (std::isfinite(v)) weighted += std::exp(v - mx) / sum * std::fabs(v - mx);
  }
  std::vector<double> cond;
  for (float v : x) cond.push_back(1.0 + std::fabs(v - mx) + weighted + std::sqrt(static_cast<double>(x.size())) / 4);
  return cond;
}

const nlohmann::json& golden() {
  static const nlohmann::json j = [] {
    std::ifstream in(std::string(QSWAP_KERNELS_TEST_DIR) + "/data/ops_golden.json");
    return nlohmann::json::parse(in);
  }();
  return j;
}

std::vector<float> floats(const nlohmann::json& arr) {
  std::vector<float> out;
  for (const auto& v : arr) {
    if (v.is_string()) {
      const std::string s = v.get<std::string>();
      out.push_back(s == "nan" ? std::numeric_limits<float>::quiet_NaN()
                               : s == "inf" ? INFINITY : -INFINITY);
    } else {
      out.push_back(static_cast<float>(v.get<double>()));
    }
  }
  return out;
}

class OpsTest : public test::IsaTest {};

TEST_P(OpsTest, RmsNormMatchesTorch) {
  const auto& c = golden()["cases"]["rms_norm"];
  const int64_t m = c["m"], h = c["h"];
  std::vector<float> x = floats(c["x"]);
  std::vector<uint16_t> w;
  for (const auto& v : c["weight_bf16"]) w.push_back(static_cast<uint16_t>(v.get<int>()));
  std::vector<float> out(x.size());
  rms_norm(x.data(), m, h, w.data(), static_cast<float>(c["eps"].get<double>()), out.data());
  EXPECT_TRUE(close(out, as_double(floats(c["out"]))));
}

TEST_P(OpsTest, SiluMulMatchesTorch) {
  const auto& c = golden()["cases"]["silu_mul"];
  std::vector<float> gate = floats(c["gate"]), up = floats(c["up"]), out(gate.size());
  silu_mul(gate.data(), up.data(), out.data(), c["n"].get<int64_t>());
  EXPECT_TRUE(close(out, as_double(floats(c["out"]))));
}

TEST_P(OpsTest, SoftmaxMatchesTorch) {
  const auto& c = golden()["cases"]["softmax"];
  std::vector<float> x = floats(c["x"]);
  std::vector<double> cond = softmax_cond(x);
  softmax(x.data(), c["n"].get<int64_t>());
  EXPECT_TRUE(close(x, as_double(floats(c["out"])), cond));
}

constexpr int64_t kLengths[] = {1, 2, 15, 16, 17, 33, 100, 1027};

TEST_P(OpsTest, RandomInputsMatchDoubleAndReference) {
  const uint64_t seed = test::run_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed + 10);
  std::normal_distribution<float> normal;
  for (int64_t n : kLengths) {
    SCOPED_TRACE("n=" + std::to_string(n));
    std::vector<float> a(static_cast<size_t>(n)), b(a.size());
    for (size_t i = 0; i < a.size(); ++i) {
      a[i] = normal(rng) * 6.0f;
      b[i] = normal(rng);
    }

    // rms_norm over 3 rows of different magnitudes, in place (out == x).
    const int64_t m = 3;
    std::vector<float> x(static_cast<size_t>(m * n));
    std::vector<uint16_t> w(static_cast<size_t>(n));
    for (size_t i = 0; i < x.size(); ++i) x[i] = normal(rng) * std::pow(10.0f, static_cast<float>(i % 3) - 1);
    for (uint16_t& v : w) v = f32_to_bf16(1.0f + 0.3f * normal(rng));
    std::vector<double> want(x.size());
    for (int64_t i = 0; i < m; ++i) {
      double ss = 0.0;
      for (int64_t c = 0; c < n; ++c) ss += static_cast<double>(x[static_cast<size_t>(i * n + c)]) * x[static_cast<size_t>(i * n + c)];
      const double r = 1.0 / std::sqrt(ss / static_cast<double>(n) + 1e-6);
      for (int64_t c = 0; c < n; ++c) {
        want[static_cast<size_t>(i * n + c)] = x[static_cast<size_t>(i * n + c)] * r * bf16_to_f32(w[static_cast<size_t>(c)]);
      }
    }
    std::vector<float> ref(x.size());
    reference::rms_norm(x.data(), m, n, w.data(), 1e-6f, ref.data());
    rms_norm(x.data(), m, n, w.data(), 1e-6f, x.data());
    EXPECT_TRUE(close(x, want)) << "rms_norm vs double";
    EXPECT_TRUE(close(x, as_double(ref))) << "rms_norm vs reference";

    // silu_mul, in place (out == gate).
    std::vector<double> silu_want(a.size());
    for (size_t i = 0; i < a.size(); ++i) silu_want[i] = a[i] / (1.0 + std::exp(-static_cast<double>(a[i]))) * b[i];
    std::vector<float> silu_ref(a.size()), g = a;
    reference::silu_mul(a.data(), b.data(), silu_ref.data(), n);
    silu_mul(g.data(), b.data(), g.data(), n);
    EXPECT_TRUE(close(g, silu_want)) << "silu_mul vs double";
    EXPECT_TRUE(close(g, as_double(silu_ref))) << "silu_mul vs reference";

    // softmax, with a masked (-inf) entry when n > 1.
    std::vector<float> s = a;
    if (n > 1) s[1] = -INFINITY;
    double mx = -INFINITY, sum = 0.0;
    for (float v : s) mx = std::max(mx, static_cast<double>(v));
    std::vector<double> sm_want(s.size());
    for (size_t i = 0; i < s.size(); ++i) sum += sm_want[i] = std::exp(s[i] - mx);
    for (double& v : sm_want) v /= sum;
    std::vector<double> cond = softmax_cond(s);
    std::vector<float> sm_ref = s;
    reference::softmax(sm_ref.data(), n);
    softmax(s.data(), n);
    EXPECT_TRUE(close(s, sm_want, cond)) << "softmax vs double";
    EXPECT_TRUE(close(s, as_double(sm_ref), cond)) << "softmax vs reference";

    // add_inplace is exact.
    std::vector<float> sum_got = a;
    add_inplace(sum_got.data(), b.data(), n);
    for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(sum_got[i], a[i] + b[i]) << "add_inplace[" << i << "]";
  }
}

TEST_P(OpsTest, ExtremeValues) {
  // silu at +-inf (torch: inf, NaN), large magnitudes and 0; softmax of one value, of huge values
  // and of a row with a NaN (torch: all NaN).
  std::vector<float> gate = {INFINITY, -INFINITY, 0.0f, -0.0f, 100.0f, -100.0f, 88.0f, -88.0f, -104.5f, 1e-30f};
  std::vector<float> up(gate.size(), 2.0f), out(gate.size());
  silu_mul(gate.data(), up.data(), out.data(), static_cast<int64_t>(gate.size()));
  EXPECT_EQ(out[0], INFINITY);
  EXPECT_TRUE(std::isnan(out[1]));
  EXPECT_EQ(out[2], 0.0f);
  EXPECT_EQ(out[4], 200.0f);
  std::vector<double> want;
  for (float g : gate) want.push_back(g / (1.0 + std::exp(-static_cast<double>(g))) * 2.0);
  want[0] = INFINITY;
  want[1] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(close(out, want));

  std::vector<float> one = {-3.0f};
  softmax(one.data(), 1);
  EXPECT_EQ(one[0], 1.0f);
  std::vector<float> big = {3e38f, 3e38f, -3e38f};
  softmax(big.data(), 3);
  EXPECT_EQ(big[0], 0.5f);
  EXPECT_EQ(big[1], 0.5f);
  EXPECT_EQ(big[2], 0.0f);
  std::vector<float> nan_row = {1.0f, NAN, 2.0f};
  softmax(nan_row.data(), 3);
  for (float v : nan_row) EXPECT_TRUE(std::isnan(v));
}

INSTANTIATE_TEST_SUITE_P(Isa, OpsTest, ::testing::Values(IsaLevel::kScalar, IsaLevel::kAvx512), test::isa_param_name);

}  // namespace
}  // namespace qswap
