#include "qswap/kernels/ops.h"

#include <cmath>

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

}  // namespace qswap
