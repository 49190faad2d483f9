// Sampling against distributions computed independently in the test (double-precision softmax),
// and the sets top-k / top-p keep against a brute-force sort. The tests that reach the kernels
// run with the ISA capped to scalar and uncapped.
#include "qswap/model/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "qswap/base/cpu.h"
#include "test_util.h"

namespace qswap {
namespace {

using SamplerIsaTest = test::IsaTest;

std::vector<double> softmax(const std::vector<float>& logits, double temperature = 1.0) {
  double max = -1e300, sum = 0;
  for (float l : logits) max = std::max(max, l / temperature);
  std::vector<double> p;
  for (float l : logits) sum += std::exp(l / temperature - max);
  for (float l : logits) p.push_back(std::exp(l / temperature - max) / sum);
  return p;
}

std::map<int32_t, int> histogram(const SamplingParams& params, const std::vector<float>& logits, int draws) {
  Sampler sampler(params);
  std::map<int32_t, int> counts;
  for (int i = 0; i < draws; ++i) ++counts[sampler.sample(logits, nullptr)];
  return counts;
}

TEST(SamplerTest, GreedyTakesTheArgmaxAndTheLowestIdOnTies) {
  Sampler greedy(SamplingParams{});
  EXPECT_EQ(greedy.sample(std::vector<float>{0.1f, 2.0f, -1.0f, 1.9f}, nullptr), 1);
  EXPECT_EQ(greedy.sample(std::vector<float>{3.0f, 1.0f, 3.0f}, nullptr), 0);
}

TEST(SamplerTest, LogprobIsTheModelsLogSoftmax) {
  const std::vector<float> logits{1.0f, 2.5f, -0.5f, 0.0f};
  const std::vector<double> p = softmax(logits);
  SamplingParams params;
  params.temperature = 0.7f;  // the logprob is of the model's distribution, not the tempered one
  params.seed = 3;
  Sampler sampler(params);
  for (int i = 0; i < 50; ++i) {
    float logprob = 0;
    int32_t t = sampler.sample(logits, &logprob);
    EXPECT_NEAR(logprob, std::log(p[static_cast<size_t>(t)]), 1e-5);
  }
}

TEST(SamplerTest, TemperatureSamplingFollowsTheTemperedDistribution) {
  const std::vector<float> logits{1.0f, 0.5f, 0.0f, -1.0f};
  SamplingParams params;
  params.temperature = 0.8f;
  params.seed = 11;
  constexpr int kDraws = 40000;
  auto counts = histogram(params, logits, kDraws);
  const std::vector<double> p = softmax(logits, 0.8);
  for (size_t i = 0; i < p.size(); ++i) {
    // 5 standard deviations of a binomial proportion.
    const double tol = 5 * std::sqrt(p[i] * (1 - p[i]) / kDraws);
    EXPECT_NEAR(static_cast<double>(counts[static_cast<int32_t>(i)]) / kDraws, p[i], tol) << "token " << i;
  }
}

TEST(SamplerTest, TopKAndTopPTruncateTheDistribution) {
  const std::vector<float> logits{2.0f, 1.9f, 0.0f, -0.5f, -3.0f};
  SamplingParams k2;
  k2.temperature = 1.0f;
  k2.top_k = 2;
  auto counts = histogram(k2, logits, 5000);
  EXPECT_EQ(counts.size(), 2u);
  EXPECT_TRUE(counts.contains(0) && counts.contains(1));

  // p = softmax: token 0 ~0.43, token 1 ~0.39; top_p 0.5 keeps the smallest prefix reaching 0.5.
  SamplingParams p05;
  p05.temperature = 1.0f;
  p05.top_p = 0.5f;
  counts = histogram(p05, logits, 5000);
  EXPECT_EQ(counts.size(), 2u);
  SamplingParams p01 = p05;
  p01.top_p = 0.1f;
  EXPECT_EQ(histogram(p01, logits, 1000), (std::map<int32_t, int>{{0, 1000}}));
}

TEST(SamplerTest, SeedsReproduce) {
  const std::vector<float> logits{0.3f, 0.1f, 0.2f, 0.0f, 0.25f};
  SamplingParams params;
  params.temperature = 1.0f;
  params.seed = 42;
  Sampler a(params), b(params);
  params.seed = 43;
  Sampler c(params);
  int differ = 0;
  for (int i = 0; i < 200; ++i) {
    int32_t ta = a.sample(logits, nullptr);
    EXPECT_EQ(ta, b.sample(logits, nullptr));
    differ += ta != c.sample(logits, nullptr);
  }
  EXPECT_GT(differ, 20);
}

TEST(SamplerTest, TopLogprobsAreTheMostLikelyTokensInOrder) {
  const std::vector<float> logits{0.5f, 3.0f, -2.0f, 3.0f, 1.25f, 0.0f};
  const std::vector<double> p = softmax(logits);
  const std::vector<TokenLogprob> top = top_logprobs(logits, 3);
  ASSERT_EQ(top.size(), 3u);
  // Ties keep the lower id first, as the greedy choice does.
  EXPECT_EQ(top[0].token, 1);
  EXPECT_EQ(top[1].token, 3);
  EXPECT_EQ(top[2].token, 4);
  for (const TokenLogprob& t : top) EXPECT_NEAR(t.logprob, std::log(p[static_cast<size_t>(t.token)]), 1e-6);
  EXPECT_EQ(top_logprobs(logits, 100).size(), logits.size());
  EXPECT_TRUE(top_logprobs(logits, 0).empty());
}

// Every id, most likely first, ties lowest id first.
std::vector<int32_t> by_likelihood(const std::vector<float>& logits) {
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)]; });
  return ids;
}

// Pearson's chi-square of observed counts against expected probabilities (all bins > 0).
double chi_square(const std::vector<int>& counts, const std::vector<double>& p, int draws) {
  double chi2 = 0.0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double e = p[i] * draws;
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
  }
  return chi2;
}

TEST_P(SamplerIsaTest, UntruncatedSamplingFollowsTheTemperedSoftmaxAcrossBlocks) {
  // 2100 tokens (three of the kernels' 1024-token blocks, so the block scan is crossed), some
  // masked; binned into 17 runs of up to 128 consecutive ids, so that mass moved across a block
  // boundary moves between bins; each bin's mass from a double softmax.
  std::mt19937_64 rng(5);
  std::normal_distribution<float> normal;
  std::vector<float> logits(2100);
  for (float& l : logits) l = normal(rng) * 1.5f;
  for (size_t i = 7; i < logits.size(); i += 97) logits[i] = -INFINITY;
  SamplingParams params;
  params.temperature = 0.7f;
  params.seed = 17;
  Sampler sampler(params);
  const std::vector<double> p = softmax(logits, 0.7);
  constexpr int kDraws = 6000, kBins = 17;
  std::vector<double> bin_p(kBins, 0.0);
  for (size_t i = 0; i < p.size(); ++i) bin_p[i / 128] += p[i];
  std::vector<int> counts(kBins, 0);
  for (int d = 0; d < kDraws; ++d) {
    const int32_t t = sampler.sample(logits, nullptr);
    ASSERT_TRUE(t >= 0 && t < 2100);
    ASSERT_NE(logits[static_cast<size_t>(t)], -INFINITY) << "a masked token was drawn";
    ++counts[static_cast<size_t>(t) / 128];
  }
  // chi-square with 16 degrees of freedom exceeds 58.3 with probability 1e-6.
  EXPECT_LT(chi_square(counts, bin_p, kDraws), 58.3);
}

TEST_P(SamplerIsaTest, UntruncatedSamplingFollowsTheSoftmaxPerToken) {
  const std::vector<float> logits{0.3f, -1.2f, 2.0f, 0.0f, 1.1f, -0.4f};
  SamplingParams params;
  params.temperature = 1.0f;
  params.seed = 99;
  constexpr int kDraws = 20000;
  auto hist = histogram(params, logits, kDraws);
  std::vector<int> counts(logits.size(), 0);
  for (auto [t, c] : hist) counts[static_cast<size_t>(t)] = c;
  // 5 degrees of freedom: 35.9 at probability 1e-6.
  EXPECT_LT(chi_square(counts, softmax(logits), kDraws), 35.9);
}

TEST_P(SamplerIsaTest, TopKDrawsOnlyFromTheKMostLikely) {
  const uint64_t seed = test::run_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> level(-8, 8);  // few distinct values: ties at the cut
  for (int64_t k : {1, 3, 17, 499}) {
    std::vector<float> logits(500);
    for (float& l : logits) l = 0.25f * static_cast<float>(level(rng));
    const std::vector<int32_t> order = by_likelihood(logits);
    const std::vector<int32_t> want(order.begin(), order.begin() + k);
    SamplingParams params;
    params.temperature = 1.3f;
    params.top_k = k;
    params.seed = seed + static_cast<uint64_t>(k);
    Sampler sampler(params);
    EXPECT_EQ(sampler.support(logits), want) << "k=" << k;
    for (int d = 0; d < 300; ++d) {
      const int32_t t = sampler.sample(logits, nullptr);
      ASSERT_NE(std::find(want.begin(), want.end(), t), want.end()) << "k=" << k << " drew " << t;
    }
  }
}

// Brute-force top-p (after top-k when k > 0) in double: the smallest prefix of `order` whose
// renormalised mass reaches top_p. *ambiguous: the mass at the cut or just before it is within
// 1e-5 of top_p, where the sampler's f32 weights may round either way.
std::vector<int32_t> brute_force_nucleus(const std::vector<float>& logits, double t, int64_t k, float top_p,
                                         bool* ambiguous, std::vector<int32_t>* one_more) {
  std::vector<int32_t> order = by_likelihood(logits);
  if (k > 0) order.resize(static_cast<size_t>(k));
  const double best = logits[static_cast<size_t>(order[0])];
  double total = 0.0;
  std::vector<double> w;
  for (int32_t id : order) total += w.emplace_back(std::exp((logits[static_cast<size_t>(id)] - best) / t));
  double cumulative = 0.0;
  size_t cut = order.size();
  for (size_t i = 0; i < order.size(); ++i) {
    cumulative += w[i] / total;
    if (cumulative >= top_p) {
      cut = i + 1;
      break;
    }
  }
  const double before = cumulative - (cut > 0 ? w[cut - 1] / total : 0.0);
  *ambiguous = std::fabs(cumulative - top_p) < 1e-5 || std::fabs(before - top_p) < 1e-5;
  one_more->assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(std::min(cut + 1, order.size())));
  order.resize(cut);
  return order;
}

TEST_P(SamplerIsaTest, TopPKeepsTheBruteForceNucleus) {
  const uint64_t seed = test::run_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed + 1);
  std::uniform_int_distribution<int> level(-10, 10);
  std::uniform_real_distribution<float> top_p_dist(0.02f, 0.999f);
  std::normal_distribution<float> normal;
  int checked = 0;
  for (int trial = 0; trial < 60; ++trial) {
    // Vocabularies from tiny to several kernel blocks; ties from discrete levels, or a peaked
    // continuous spread, or a nearly flat one (the nucleus then needs the low thresholds).
    const size_t n = std::vector<size_t>{7, 50, 3000}[static_cast<size_t>(trial % 3)];
    const int style = (trial / 3) % 3;
    std::vector<float> logits(n);
    for (float& l : logits) {
      l = style == 0 ? 0.5f * static_cast<float>(level(rng)) : style == 1 ? normal(rng) * 4.0f : normal(rng) * 0.05f;
    }
    SamplingParams params;
    params.temperature = std::vector<float>{0.5f, 1.0f, 1.7f}[static_cast<size_t>(trial % 5 % 3)];
    params.top_p = top_p_dist(rng);
    params.top_k = trial % 4 == 3 ? static_cast<int64_t>(n / 2 + 1) : 0;
    params.seed = seed + static_cast<uint64_t>(trial);
    SCOPED_TRACE("trial " + std::to_string(trial) + " n=" + std::to_string(n) + " T=" + std::to_string(params.temperature) +
                 " top_p=" + std::to_string(params.top_p) + " top_k=" + std::to_string(params.top_k));
    bool ambiguous = false;
    std::vector<int32_t> one_more;
    const std::vector<int32_t> want = brute_force_nucleus(logits, params.temperature, params.top_k, params.top_p, &ambiguous, &one_more);
    Sampler sampler(params);
    const std::vector<int32_t> got = sampler.support(logits);
    if (ambiguous) {
      // Either side of the boundary, but still a prefix of the order.
      EXPECT_TRUE(got == want || got == one_more || (got.size() + 1 == want.size() && std::equal(got.begin(), got.end(), want.begin())));
      continue;
    }
    ++checked;
    EXPECT_EQ(got, want);
    for (int d = 0; d < 40; ++d) {
      const int32_t t = sampler.sample(logits, nullptr);
      ASSERT_NE(std::find(want.begin(), want.end(), t), want.end()) << "drew " << t;
    }
  }
  EXPECT_GT(checked, 50);
}

TEST_P(SamplerIsaTest, TopPOfAFlatVocabularyTakesTheLowestIdsOfTheTie) {
  // Every token at 1/120000 < 1e-5: no threshold but the last finds the nucleus.
  std::vector<float> logits(120000, 0.75f);
  SamplingParams params;
  params.temperature = 1.0f;
  params.top_p = 0.25f;
  Sampler sampler(params);
  const std::vector<int32_t> got = sampler.support(logits);
  ASSERT_EQ(got.size(), 30000u);
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], static_cast<int32_t>(i));
  for (int d = 0; d < 3; ++d) EXPECT_LT(sampler.sample(logits, nullptr), 30000);
}

TEST_P(SamplerIsaTest, EveryPathIsReproducibleBySeed) {
  std::mt19937_64 rng(8);
  std::normal_distribution<float> normal;
  std::vector<float> logits(5000);
  for (float& l : logits) l = normal(rng);
  for (auto [top_k, top_p] : std::vector<std::pair<int64_t, float>>{{0, 1.0f}, {50, 1.0f}, {0, 0.9f}, {200, 0.5f}}) {
    SamplingParams params;
    params.temperature = 1.0f;
    params.top_k = top_k;
    params.top_p = top_p;
    params.seed = 2024;
    Sampler a(params), b(params);
    params.seed = 2025;
    Sampler c(params);
    int differ = 0;
    for (int i = 0; i < 50; ++i) {
      const int32_t t = a.sample(logits, nullptr);
      EXPECT_EQ(t, b.sample(logits, nullptr)) << "top_k " << top_k << " top_p " << top_p;
      differ += t != c.sample(logits, nullptr);
    }
    EXPECT_GT(differ, 25) << "top_k " << top_k << " top_p " << top_p;
  }
}

TEST_P(SamplerIsaTest, UndefinedDistributionsFallBackToGreedy) {
  SamplingParams params;
  params.temperature = 1.0f;
  Sampler sampler(params);
  EXPECT_EQ(sampler.sample(std::vector<float>{0.0f, 1.0f, NAN, 0.5f}, nullptr), 1);
  EXPECT_EQ(sampler.sample(std::vector<float>{0.0f, INFINITY, 2.0f, INFINITY}, nullptr), 1);
  EXPECT_EQ(sampler.sample(std::vector<float>{-INFINITY, -INFINITY}, nullptr), 0);
  params.temperature = 1e-45f;  // 1/T overflows
  Sampler cold(params);
  EXPECT_EQ(cold.sample(std::vector<float>{0.0f, 3.0f, 3.0f}, nullptr), 1);
}

TEST_P(SamplerIsaTest, LogprobsOfALargeVocabularyMatchDouble) {
  std::mt19937_64 rng(3);
  std::normal_distribution<float> normal;
  std::vector<float> logits(151936);
  for (float& l : logits) l = normal(rng) * 4.0f;
  logits[10] = -INFINITY;
  const std::vector<double> p = softmax(logits);
  for (int32_t t : {0, 10, 77777, 151935}) {
    const float got = token_logprob(logits, t);
    // log_sum_exp within 2e-6, plus rounding the result to f32.
    if (t == 10) {
      EXPECT_EQ(got, -INFINITY);
    } else {
      EXPECT_NEAR(got, std::log(p[static_cast<size_t>(t)]), 2e-6 + 1e-6 * std::fabs(std::log(p[static_cast<size_t>(t)])));
    }
  }
  const std::vector<TokenLogprob> top = top_logprobs(logits, 20);
  const std::vector<int32_t> order = by_likelihood(logits);
  ASSERT_EQ(top.size(), 20u);
  for (size_t i = 0; i < top.size(); ++i) {
    EXPECT_EQ(top[i].token, order[i]);
    EXPECT_NEAR(top[i].logprob, std::log(p[static_cast<size_t>(order[i])]), 4e-6);
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, SamplerIsaTest, ::testing::Values(IsaLevel::kScalar, IsaLevel::kAvx512),
                         test::isa_param_name);

}  // namespace
}  // namespace qswap
