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

}  // namespace qswap::kernels::avx512
