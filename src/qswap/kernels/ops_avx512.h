// AVX-512 element-wise kernels (ops_avx512.cc). Includes nothing but <cstdint> (see
// linear_avx512.h for why); reached only through ops.cc's dispatch.
#pragma once

#include <cstdint>

namespace qswap::kernels::avx512 {

// sum of x[i]^2 over n values.
float sum_squares(const float* x, int64_t n);
// out[i] = (x[i] * r) * weight[i] (weight bf16).
void scale_mul_bf16(const float* x, float r, const uint16_t* weight, float* out, int64_t n);
void silu_mul(const float* gate, const float* up, float* out, int64_t n);
void add_inplace(float* x, const float* y, int64_t n);
void softmax(float* x, int64_t n);
// Largest non-NaN value, -inf if none.
float max_value(const float* x, int64_t n);
// Lowest i with x[i] >= threshold, n if none.
int64_t find_at_least(const float* x, int64_t n, float threshold);
// out[i] = exp((x[i] - shift) * scale) (out may be null); per-block (block elements) sums in
// double into block_sums (may be null); returns the total.
double exp_weights(const float* x, int64_t n, float shift, float scale, float* out, double* block_sums, int64_t block);

}  // namespace qswap::kernels::avx512
