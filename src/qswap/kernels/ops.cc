#include "qswap/kernels/ops.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "qswap/base/cpu.h"
#include "qswap/kernels/ops_avx512.h"
#include "qswap/tensor/convert.h"

#if defined(__x86_64__) || defined(_M_X64)
#define QSWAP_OPS_AVX512 1
#endif

namespace qswap {
namespace {

bool use_avx512() {
#ifdef QSWAP_OPS_AVX512
  return cpu_features().avx512;
#else
  return false;
#endif
}

// 1 / sqrt(mean + eps), the way torch.rsqrt does it in f32.
float rms_factor(float sum_sq, int64_t h, float eps) {
  return 1.0f / std::sqrt(sum_sq / static_cast<float>(h) + eps);
}

// log_sum_exp's rows whose max is infinite: all entries -inf (or n == 0) give -inf, a +inf gives
// +inf, and any NaN gives NaN, as torch.logsumexp does.
double log_sum_exp_infinite_max(const float* x, int64_t n, float mx) {
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(x[i])) return std::numeric_limits<double>::quiet_NaN();
  }
  return mx;
}

using FindAtLeast = int64_t (*)(const float*, int64_t, float);

// top_k on either path: a heap of the k best indices whose root is the worst kept; after it fills,
// only a value strictly greater than the root can enter (an equal one has a higher index), so
// find_at_least skips to the next such value.
int64_t top_k_impl(const float* x, int64_t n, int64_t k, int32_t* ids, FindAtLeast find) {
  if (k <= 0 || n <= 0) return 0;
  auto better = [x](int32_t a, int32_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); };
  int64_t count = 0, i = 0;
  for (; i < n && count < k; ++i) {
    if (std::isnan(x[i])) continue;
    ids[count++] = static_cast<int32_t>(i);
    std::push_heap(ids, ids + count, better);
  }
  while (count == k && i < n) {
    const float worst = x[ids[0]];
    if (worst == INFINITY) break;
    i += find(x + i, n - i, std::nextafter(worst, INFINITY));
    if (i >= n) break;
    std::pop_heap(ids, ids + k, better);
    ids[k - 1] = static_cast<int32_t>(i);
    std::push_heap(ids, ids + k, better);
    ++i;
  }
  std::sort_heap(ids, ids + count, better);
  return count;
}

}  // namespace

namespace reference {

void rms_norm(const float* x, int64_t m, int64_t h, const uint16_t* weight, float eps, float* out) {
  for (int64_t i = 0; i < m; ++i) {
    const float* xi = x + i * h;
    float* oi = out + i * h;
    float sum = 0.0f;
    for (int64_t c = 0; c < h; ++c) sum += xi[c] * xi[c];
    const float r = rms_factor(sum, h, eps);
    for (int64_t c = 0; c < h; ++c) oi[c] = (xi[c] * r) * bf16_to_f32(weight[c]);
  }
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void add_inplace(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  for (int64_t i = 0; i < n; ++i) x[i] /= sum;
}

double log_sum_exp(const float* x, int64_t n) {
  const float mx = max_value(x, n);
  if (std::isinf(mx)) return log_sum_exp_infinite_max(x, n, mx);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i] - mx));
  return static_cast<double>(mx) + std::log(sum);
}

float max_value(const float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  return mx;
}

int64_t argmax(const float* x, int64_t n) {
  const int64_t i = find_at_least(x, n, max_value(x, n));
  return i < n ? i : 0;
}

int64_t find_at_least(const float* x, int64_t n, float threshold) {
  for (int64_t i = 0; i < n; ++i) {
    if (x[i] >= threshold) return i;
  }
  return n;
}

int64_t top_k(const float* x, int64_t n, int64_t k, int32_t* ids) {
  return top_k_impl(x, n, k, ids, &find_at_least);
}

double exp_weights(const float* x, int64_t n, float shift, float scale, float* out, double* block_sums) {
  double total = 0.0;
  for (int64_t b = 0; b < n; b += kExpBlock) {
    double sum = 0.0;
    for (int64_t i = b; i < std::min(n, b + kExpBlock); ++i) {
      const float e = std::exp((x[i] - shift) * scale);
      if (out != nullptr) out[i] = e;
      sum += e;
    }
    if (block_sums != nullptr) block_sums[b / kExpBlock] = sum;
    total += sum;
  }
  return total;
}

}  // namespace reference

void rms_norm(const float* x, int64_t m, int64_t h, const uint16_t* weight, float eps, float* out) {
  if (!use_avx512()) return reference::rms_norm(x, m, h, weight, eps, out);
  for (int64_t i = 0; i < m; ++i) {
    const float r = rms_factor(kernels::avx512::sum_squares(x + i * h, h), h, eps);
    kernels::avx512::scale_mul_bf16(x + i * h, r, weight, out + i * h, h);
  }
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  if (!use_avx512()) return reference::silu_mul(gate, up, out, n);
  kernels::avx512::silu_mul(gate, up, out, n);
}

void add_inplace(float* x, const float* y, int64_t n) {
  if (!use_avx512()) return reference::add_inplace(x, y, n);
  kernels::avx512::add_inplace(x, y, n);
}

void softmax(float* x, int64_t n) {
  if (!use_avx512()) return reference::softmax(x, n);
  kernels::avx512::softmax(x, n);
}

double log_sum_exp(const float* x, int64_t n) {
  if (!use_avx512()) return reference::log_sum_exp(x, n);
  const float mx = kernels::avx512::max_value(x, n);
  if (std::isinf(mx)) return log_sum_exp_infinite_max(x, n, mx);
  return static_cast<double>(mx) + std::log(kernels::avx512::exp_weights(x, n, mx, 1.0f, nullptr, nullptr, kExpBlock));
}

float max_value(const float* x, int64_t n) {
  if (!use_avx512()) return reference::max_value(x, n);
  return kernels::avx512::max_value(x, n);
}

int64_t argmax(const float* x, int64_t n) {
  if (!use_avx512()) return reference::argmax(x, n);
  const int64_t i = kernels::avx512::find_at_least(x, n, kernels::avx512::max_value(x, n));
  return i < n ? i : 0;
}

int64_t find_at_least(const float* x, int64_t n, float threshold) {
  if (!use_avx512()) return reference::find_at_least(x, n, threshold);
  return kernels::avx512::find_at_least(x, n, threshold);
}

int64_t top_k(const float* x, int64_t n, int64_t k, int32_t* ids) {
  if (!use_avx512()) return reference::top_k(x, n, k, ids);
  return top_k_impl(x, n, k, ids, &kernels::avx512::find_at_least);
}

double exp_weights(const float* x, int64_t n, float shift, float scale, float* out, double* block_sums) {
  if (!use_avx512()) return reference::exp_weights(x, n, shift, scale, out, block_sums);
  return kernels::avx512::exp_weights(x, n, shift, scale, out, block_sums, kExpBlock);
}

}  // namespace qswap
