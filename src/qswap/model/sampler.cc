#include "qswap/model/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "qswap/kernels/ops.h"

namespace qswap {

namespace {

// Top-p looks for the nucleus among the tokens of probability >= each of these in turn, so it
// sorts at most ~1/p tokens; 0 (every token) is the last resort of a nearly flat distribution.
constexpr double kNucleusThresholds[] = {1e-3, 1e-5, 0.0};

// Descending logit, ties by lowest id: the order of descending probability at any temperature.
struct MoreLikely {
  const float* logits;
  bool operator()(int32_t a, int32_t b) const {
    const float la = logits[a], lb = logits[b];
    return la > lb || (la == lb && a < b);
  }
};

// The smallest prefix of `weights` (already in descending order) whose sum reaches `target`, or all
// of them when rounding keeps the sum just short of it.
size_t nucleus_size(const std::vector<double>& weights, double target) {
  double cumulative = 0.0;
  for (size_t i = 0; i < weights.size(); ++i) {
    cumulative += weights[i];
    if (cumulative >= target) return i + 1;
  }
  return weights.size();
}

}  // namespace

float token_logprob(std::span<const float> logits, int32_t token) {
  const double lse = log_sum_exp(logits.data(), static_cast<int64_t>(logits.size()));
  return static_cast<float>(static_cast<double>(logits[static_cast<size_t>(token)]) - lse);
}

std::vector<TokenLogprob> top_logprobs(std::span<const float> logits, int k) {
  std::vector<TokenLogprob> top;
  if (k <= 0 || logits.empty()) return top;
  const int64_t n = static_cast<int64_t>(logits.size());
  std::vector<int32_t> ids(static_cast<size_t>(std::min<int64_t>(k, n)));
  ids.resize(static_cast<size_t>(top_k(logits.data(), n, k, ids.data())));
  const double lse = log_sum_exp(logits.data(), n);
  for (int32_t id : ids) {
    top.push_back({id, static_cast<float>(static_cast<double>(logits[static_cast<size_t>(id)]) - lse)});
  }
  return top;
}

bool Sampler::truncate(std::span<const float> logits, float max, float inv_t) {
  const int64_t n = static_cast<int64_t>(logits.size());
  const float* l = logits.data();
  kept_weights_.clear();
  if (params_.top_k > 0 && params_.top_k < n) {
    // The k best by a heap scan; weights relative to the best, in double.
    kept_.resize(static_cast<size_t>(params_.top_k));
    kept_.resize(static_cast<size_t>(top_k(l, n, params_.top_k, kept_.data())));
    if (kept_.empty()) return false;
    const double best = l[kept_.front()], t = params_.temperature;
    for (int32_t id : kept_) kept_weights_.push_back(std::exp((static_cast<double>(l[id]) - best) / t));
    if (params_.top_p < 1.0f) {
      const double total = std::accumulate(kept_weights_.begin(), kept_weights_.end(), 0.0);
      const size_t cut = nucleus_size(kept_weights_, static_cast<double>(params_.top_p) * total);
      kept_.resize(cut);
      kept_weights_.resize(cut);
    }
    return true;
  }

  // Top-p over the whole vocabulary. The candidates {l >= c} always hold every token more likely
  // than any of theirs, so once their mass reaches top_p the nucleus is a prefix of them sorted.
  weights_.resize(static_cast<size_t>(n));
  const double total = exp_weights(l, n, max, inv_t, weights_.data(), nullptr);
  if (!std::isfinite(total)) return false;  // a NaN logit
  const double target = static_cast<double>(params_.top_p) * total;
  for (double p : kNucleusThresholds) {
    kept_.clear();
    if (p == 0.0) {
      kept_.resize(static_cast<size_t>(n));
      std::iota(kept_.begin(), kept_.end(), 0);
      break;
    }
    // p(token) >= p  <=>  (l - max) / T >= log(p * total).
    const float c = static_cast<float>(static_cast<double>(max) + params_.temperature * std::log(p * total));
    double mass = 0.0;
    for (int64_t i = find_at_least(l, n, c); i < n; i += 1 + find_at_least(l + i + 1, n - i - 1, c)) {
      kept_.push_back(static_cast<int32_t>(i));
      mass += weights_[static_cast<size_t>(i)];
    }
    if (mass >= target) break;
  }
  std::sort(kept_.begin(), kept_.end(), MoreLikely{l});
  for (int32_t id : kept_) kept_weights_.push_back(weights_[static_cast<size_t>(id)]);
  const size_t cut = nucleus_size(kept_weights_, target);
  kept_.resize(cut);
  kept_weights_.resize(cut);
  return !kept_.empty();  // empty only for a top_p <= 0, whose nucleus is the greedy token
}

int32_t Sampler::draw_full(double total) {
  // Find the block, then the token in it. Rounding (the block sums are not the scan's sums) can
  // run u past a block's end; then its last token of positive weight is taken, never one of 0.
  double u = std::uniform_real_distribution<double>(0.0, total)(rng_);
  const int64_t n = static_cast<int64_t>(weights_.size());
  const int64_t blocks = static_cast<int64_t>(block_sums_.size());
  int64_t b = 0, last_positive = -1;
  for (; b < blocks; ++b) {
    const double s = block_sums_[static_cast<size_t>(b)];
    if (s > 0.0) last_positive = b;
    if (u < s) break;
    u -= s;
  }
  if (b == blocks) b = last_positive;  // u reached the total
  if (b < 0) return -1;
  int64_t chosen = -1;
  for (int64_t i = b * kExpBlock; i < std::min(n, (b + 1) * kExpBlock); ++i) {
    const float w = weights_[static_cast<size_t>(i)];
    if (w > 0.0f) chosen = i;
    if (u < w) break;
    u -= w;
  }
  return static_cast<int32_t>(chosen);
}

int32_t Sampler::draw_kept() {
  const double total = std::accumulate(kept_weights_.begin(), kept_weights_.end(), 0.0);
  double u = std::uniform_real_distribution<double>(0.0, total)(rng_);
  size_t chosen = 0;
  for (size_t i = 0; i < kept_.size(); ++i) {
    if (kept_weights_[i] > 0.0) chosen = i;
    if (u < kept_weights_[i]) break;
    u -= kept_weights_[i];
  }
  return kept_[chosen];
}

int32_t Sampler::sample(std::span<const float> logits, float* logprob) {
  const int64_t n = static_cast<int64_t>(logits.size());
  if (n == 0) {
    if (logprob != nullptr) *logprob = 0.0f;
    return 0;
  }
  int32_t chosen = -1;
  const float inv_t = 1.0f / params_.temperature;
  if (params_.temperature > 0.0f && std::isfinite(inv_t)) {
    const float max = max_value(logits.data(), n);
    const bool truncated = (params_.top_k > 0 && params_.top_k < n) || params_.top_p < 1.0f;
    if (std::isfinite(max) && !truncated) {
      // Straight from softmax(l / T): no candidates, no sorting.
      weights_.resize(static_cast<size_t>(n));
      block_sums_.resize(static_cast<size_t>((n + kExpBlock - 1) / kExpBlock));
      const double total = exp_weights(logits.data(), n, max, inv_t, weights_.data(), block_sums_.data());
      if (std::isfinite(total)) chosen = draw_full(total);
    } else if (std::isfinite(max) && truncate(logits, max, inv_t)) {
      chosen = draw_kept();
    }
  }
  // Greedy; the lowest id wins ties, as torch.argmax does.
  if (chosen < 0) chosen = static_cast<int32_t>(argmax(logits.data(), n));
  if (logprob != nullptr) *logprob = token_logprob(logits, chosen);
  return chosen;
}

std::vector<int32_t> Sampler::support(std::span<const float> logits) {
  const int64_t n = static_cast<int64_t>(logits.size());
  if (n == 0) return {};
  const float inv_t = 1.0f / params_.temperature;
  const float max = max_value(logits.data(), n);
  if (params_.temperature > 0.0f && std::isfinite(inv_t) && std::isfinite(max)) {
    const bool truncated = (params_.top_k > 0 && params_.top_k < n) || params_.top_p < 1.0f;
    if (truncated && truncate(logits, max, inv_t)) return kept_;
    if (!truncated && std::isfinite(exp_weights(logits.data(), n, max, inv_t, nullptr, nullptr))) {
      std::vector<int32_t> all(static_cast<size_t>(n));
      std::iota(all.begin(), all.end(), 0);
      std::sort(all.begin(), all.end(), MoreLikely{logits.data()});
      return all;
    }
  }
  return {static_cast<int32_t>(argmax(logits.data(), n))};
}

}  // namespace qswap
