// Sampling against distributions computed independently in the test (double-precision softmax).
#include "qswap/model/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

namespace qswap {
namespace {

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

}  // namespace
}  // namespace qswap
