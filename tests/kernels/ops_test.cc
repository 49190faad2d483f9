// Element-wise ops: against torch goldens (tests/kernels/data/ops_golden.json, written by
// make_ops_golden.py the way Hugging Face computes them), against double-precision formulas on
// random inputs of odd lengths, and fast path against reference. Each with the ISA capped to
// scalar and uncapped. The sampling reductions (log_sum_exp, exp_weights, max/argmax/top_k)
// likewise, the selections against brute force.
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

#include "test_util.h"
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

TEST_P(OpsTest, LogSumExpMatchesTorch) {
  for (const auto& row : golden()["cases"]["log_sum_exp"]["rows"]) {
    const std::vector<float> x = floats(row["x"]);
    const double want = row["lse"].get<double>();
    SCOPED_TRACE("n=" + std::to_string(x.size()));
    EXPECT_NEAR(log_sum_exp(x.data(), static_cast<int64_t>(x.size())), want, kLogSumExpTolerance);
    EXPECT_NEAR(reference::log_sum_exp(x.data(), static_cast<int64_t>(x.size())), want, kLogSumExpTolerance);
  }
}

// Logit-like rows: `kind` 0 normal * 3, 1 with ~10% -inf (masked), 2 a large dynamic range
// (magnitudes 1e-3 .. 1e4, both signs), 3 all equal.
std::vector<float> logit_row(std::mt19937_64& rng, int64_t n, int kind) {
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<float> uniform(-3.0f, 4.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) {
    if (kind == 2) {
      v = std::pow(10.0f, uniform(rng)) * (normal(rng) < 0 ? -1.0f : 1.0f);
    } else {
      v = kind == 3 ? 1.5f : normal(rng) * 3.0f;
    }
    if (kind == 1 && std::uniform_int_distribution<int>(0, 9)(rng) == 0) v = -INFINITY;
  }
  if (kind == 1) x[static_cast<size_t>(n / 2)] = 0.5f;  // at least one finite entry
  return x;
}

constexpr int64_t kRowLengths[] = {1, 2, 15, 16, 17, 33, 63, 64, 65, 100, 1023, 1024, 1025, 1027, 4097, 151936};

TEST_P(OpsTest, LogSumExpMatchesReferenceOnRandomRows) {
  const uint64_t seed = test::run_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed + 20);
  for (int64_t n : kRowLengths) {
    for (int kind = 0; kind < 4; ++kind) {
      SCOPED_TRACE("n=" + std::to_string(n) + " kind " + std::to_string(kind));
      const std::vector<float> x = logit_row(rng, n, kind);
      const double ref = reference::log_sum_exp(x.data(), n);
      EXPECT_NEAR(log_sum_exp(x.data(), n), ref, kLogSumExpTolerance);
      if (kind == 3) {
        EXPECT_NEAR(ref, 1.5 + std::log(static_cast<double>(n)), 1e-12);
      }
    }
  }
}

TEST_P(OpsTest, LogSumExpEdgeCases) {
  auto lse = [](std::vector<float> x) { return log_sum_exp(x.data(), static_cast<int64_t>(x.size())); };
  EXPECT_EQ(log_sum_exp(nullptr, 0), -INFINITY);
  EXPECT_EQ(lse({-INFINITY, -INFINITY, -INFINITY}), -INFINITY);
  EXPECT_EQ(lse({1.0f, INFINITY, -INFINITY}), INFINITY);
  EXPECT_TRUE(std::isnan(lse({1.0f, NAN, 2.0f})));
  EXPECT_TRUE(std::isnan(lse({INFINITY, NAN})));
  EXPECT_TRUE(std::isnan(lse({NAN, NAN})));
  EXPECT_EQ(lse({-7.25f}), -7.25);
  EXPECT_EQ(lse({-INFINITY, 3.0f, -INFINITY}), 3.0);
  EXPECT_EQ(lse({3e38f, 3e38f, -3e38f}), static_cast<double>(3e38f));  // finite (log 2 is below its ulp)
  EXPECT_NEAR(lse({-1e4f, 0.0f, -1e4f}), 0.0, 1e-12);
}

TEST_P(OpsTest, ExpWeightsMatchDoubleAndReference) {
  const uint64_t seed = test::run_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed + 30);
  for (int64_t n : kRowLengths) {
    for (int kind : {0, 1}) {
      SCOPED_TRACE("n=" + std::to_string(n) + " kind " + std::to_string(kind));
      const std::vector<float> x = logit_row(rng, n, kind);
      const float shift = reference::max_value(x.data(), n), scale = kind == 0 ? 1.0f : 1.0f / 0.7f;
      const size_t blocks = static_cast<size_t>((n + kExpBlock - 1) / kExpBlock);
      std::vector<float> out(x.size()), ref_out(x.size());
      std::vector<double> sums(blocks), ref_sums(blocks);
      const double total = exp_weights(x.data(), n, shift, scale, out.data(), sums.data());
      const double ref_total = reference::exp_weights(x.data(), n, shift, scale, ref_out.data(), ref_sums.data());
      for (size_t i = 0; i < x.size(); ++i) {
        const double want = std::exp(static_cast<double>((x[i] - shift) * scale));  // same f32 argument
        // 2 ulp of expf, itself within 1 ulp; subnormals absolutely.
        ASSERT_NEAR(out[i], want, 3 * 1.2e-7 * want + 1e-38) << "out[" << i << "] of x " << x[i];
        if (x[i] == -INFINITY) {
          ASSERT_EQ(out[i], 0.0f);
        }
      }
      double sum_of_sums = 0.0;
      for (size_t b = 0; b < blocks; ++b) {
        double own = 0.0;  // the block's sum of the values this path wrote, in double
        for (int64_t i = static_cast<int64_t>(b) * kExpBlock; i < std::min(n, static_cast<int64_t>(b + 1) * kExpBlock); ++i) {
          own += out[static_cast<size_t>(i)];
        }
        EXPECT_NEAR(sums[b], own, 2e-6 * own) << "block " << b;
        EXPECT_NEAR(sums[b], ref_sums[b], 2e-6 * ref_sums[b] + 1e-300) << "block " << b;
        sum_of_sums += sums[b];
      }
      EXPECT_EQ(total, sum_of_sums);
      EXPECT_NEAR(total, ref_total, 2e-6 * ref_total);
      EXPECT_EQ(exp_weights(x.data(), n, shift, scale, nullptr, nullptr), total) << "with nothing stored";
    }
  }
}

// Brute force: every non-NaN index sorted by value descending, ties lowest index first.
std::vector<int32_t> sorted_ids(const std::vector<float>& x) {
  std::vector<int32_t> ids;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isnan(x[i])) ids.push_back(static_cast<int32_t>(i));
  }
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return x[static_cast<size_t>(a)] > x[static_cast<size_t>(b)]; });
  return ids;
}

TEST_P(OpsTest, SelectionsMatchBruteForce) {
  const uint64_t seed = test::run_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed + 40);
  std::uniform_int_distribution<int> level(-6, 6);  // few distinct values: many ties
  std::uniform_int_distribution<int> odd(0, 19);
  for (int64_t n : {1, 2, 17, 64, 100, 1027, 5000}) {
    for (int trial = 0; trial < 4; ++trial) {
      SCOPED_TRACE("n=" + std::to_string(n) + " trial " + std::to_string(trial));
      std::vector<float> x(static_cast<size_t>(n));
      for (float& v : x) {
        const int o = odd(rng);
        v = o == 0 ? NAN : o == 1 ? -INFINITY : trial == 3 ? NAN : 0.5f * static_cast<float>(level(rng));
      }
      const std::vector<int32_t> want = sorted_ids(x);
      const float mx = want.empty() ? -INFINITY : x[static_cast<size_t>(want[0])];
      EXPECT_EQ(max_value(x.data(), n), mx);
      EXPECT_EQ(argmax(x.data(), n), want.empty() ? 0 : want[0]);
      for (float t : {-INFINITY, -1.0f, 0.0f, 2.5f, 3.0f, INFINITY}) {
        int64_t first = n;
        for (int64_t i = 0; i < n; ++i) {
          if (x[static_cast<size_t>(i)] >= t) {
            first = i;
            break;
          }
        }
        EXPECT_EQ(find_at_least(x.data(), n, t), first) << "threshold " << t;
      }
      for (int64_t k : {int64_t{1}, int64_t{5}, int64_t{40}, n - 1, n, n + 3}) {
        if (k <= 0) continue;
        std::vector<int32_t> ids(static_cast<size_t>(std::min(k, n)), -1);
        ids.resize(static_cast<size_t>(top_k(x.data(), n, k, ids.data())));
        const std::vector<int32_t> top(want.begin(), want.begin() + std::min<std::ptrdiff_t>(k, std::ssize(want)));
        EXPECT_EQ(ids, top) << "k=" << k;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, OpsTest, ::testing::Values(IsaLevel::kScalar, IsaLevel::kAvx512), test::isa_param_name);

}  // namespace
}  // namespace qswap
