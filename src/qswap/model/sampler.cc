#include "qswap/model/sampler.h"

#include <algorithm>
#include <cmath>

namespace qswap {

namespace {

// max + log(sum(exp(logits - max))), in double.
double log_sum_exp(std::span<const float> logits) {
  const float max = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (float l : logits) sum += std::exp(static_cast<double>(l - max));
  return static_cast<double>(max) + std::log(sum);
}

}  // namespace

float token_logprob(std::span<const float> logits, int32_t token) {
  return static_cast<float>(static_cast<double>(logits[static_cast<size_t>(token)]) - log_sum_exp(logits));
}

std::vector<TokenLogprob> top_logprobs(std::span<const float> logits, int k) {
  std::vector<TokenLogprob> top;
  if (k <= 0 || logits.empty()) return top;
  const size_t keep = std::min(static_cast<size_t>(k), logits.size());
  std::vector<int32_t> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  auto more_likely = [&](int32_t a, int32_t b) {
    const float la = logits[static_cast<size_t>(a)], lb = logits[static_cast<size_t>(b)];
    return la > lb || (la == lb && a < b);
  };
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(keep), ids.end(), more_likely);
  const double lse = log_sum_exp(logits);
  for (size_t i = 0; i < keep; ++i) {
    top.push_back({ids[i], static_cast<float>(static_cast<double>(logits[static_cast<size_t>(ids[i])]) - lse)});
  }
  return top;
}

int32_t Sampler::sample(std::span<const float> logits, float* logprob) {
  int32_t chosen = 0;
  if (params_.temperature <= 0.0f) {
    // Greedy; the lowest id wins ties, as torch.argmax does.
    chosen = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  } else {
    candidates_.clear();
    for (size_t i = 0; i < logits.size(); ++i) {
      candidates_.emplace_back(logits[i] / params_.temperature, static_cast<int32_t>(i));
    }
    auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
    size_t keep = candidates_.size();
    if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < keep) {
      keep = static_cast<size_t>(params_.top_k);
      std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(keep), candidates_.end(), by_logit);
    } else {
      std::sort(candidates_.begin(), candidates_.end(), by_logit);
    }
    candidates_.resize(keep);
    const float max = candidates_.front().first;
    double total = 0.0;
    std::vector<double> probs(keep);
    for (size_t i = 0; i < keep; ++i) total += probs[i] = std::exp(static_cast<double>(candidates_[i].first - max));
    if (params_.top_p < 1.0f) {
      // Smallest prefix (in descending probability) whose mass reaches top_p.
      double cumulative = 0.0;
      size_t cut = keep;
      for (size_t i = 0; i < keep; ++i) {
        cumulative += probs[i] / total;
        if (cumulative >= params_.top_p) {
          cut = i + 1;
          break;
        }
      }
      probs.resize(cut);
      total = 0.0;
      for (double p : probs) total += p;
    }
    double u = std::uniform_real_distribution<double>(0.0, total)(rng_);
    size_t i = 0;
    for (; i + 1 < probs.size(); ++i) {
      if ((u -= probs[i]) < 0.0) break;
    }
    chosen = candidates_[i].second;
  }
  if (logprob != nullptr) *logprob = token_logprob(logits, chosen);
  return chosen;
}

}  // namespace qswap
