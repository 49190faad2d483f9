// Element-wise kernels of the forward pass, f32 activations. Each has a scalar reference
// (namespace reference) and a dispatched fast path (AVX-512 when cpu_features().avx512) that
// differs from it only by f32 reassociation of sums and by exp() (a polynomial within 2 ulp
// of expf).
#pragma once

#include <cstdint>

namespace qswap {

// RMSNorm as Hugging Face computes it in f32 (Qwen3RMSNorm / LlamaRMSNorm):
//   out[i, :] = (x[i, :] * rsqrt(mean(x[i, :]^2) + eps)) * weight
// x, out: [m, h] f32 (out may equal x); weight: bf16 [h].
void rms_norm(const float* x, int64_t m, int64_t h, const uint16_t* weight, float eps, float* out);
// out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)). out may equal gate or up.
void silu_mul(const float* gate, const float* up, float* out, int64_t n);
// x[i] += y[i].
void add_inplace(float* x, const float* y, int64_t n);
// In place over one row: x[i] = exp(x[i] - max) / sum_j exp(x[j] - max). -inf entries give 0
// (a causal mask); a row of all -inf gives NaN, as torch does.
void softmax(float* x, int64_t n);

namespace reference {
void rms_norm(const float* x, int64_t m, int64_t h, const uint16_t* weight, float eps, float* out);
void silu_mul(const float* gate, const float* up, float* out, int64_t n);
void add_inplace(float* x, const float* y, int64_t n);
void softmax(float* x, int64_t n);
}  // namespace reference

}  // namespace qswap
