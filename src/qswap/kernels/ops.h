// Element-wise kernels of the forward pass, f32 activations, and the reductions over a row of
// logits that sampling needs. Each has a scalar reference (namespace reference) and a dispatched
// fast path (AVX-512 when cpu_features().avx512) that differs from it only by f32 reassociation
// of sums and by exp() (a polynomial within 2 ulp of expf); the selections (max_value, argmax,
// find_at_least, top_k) are exact, so both paths give identical results.
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

// log(sum_i exp(x[i])) = max + log(sum_i exp(x[i] - max)), the sum finished in double. -inf
// entries (masked logits) contribute 0. n == 0 or all -inf gives -inf; a +inf entry gives +inf;
// any NaN gives NaN. The fast path sums f32 exp() values in f32 lanes of at most ~19 terms before
// going to double, so it is within kLogSumExpTolerance (absolute) of the reference, which sums
// double exp() of the same f32 differences x[i] - max: per term exp is within 3 f32 ulp
// (1.8e-7 relative), each f32 lane adds at most 18 roundings (1.1e-6), and log turns the
// relative error of the sum into an absolute one.
double log_sum_exp(const float* x, int64_t n);
inline constexpr double kLogSumExpTolerance = 2e-6;

// Largest value of x[0, n), NaN entries skipped; -inf when there is none.
float max_value(const float* x, int64_t n);
// Lowest index of the largest value (NaN entries skipped, like torch.argmax on finite rows);
// 0 when there is none (n == 0 or all NaN).
int64_t argmax(const float* x, int64_t n);
// Lowest index i with x[i] >= threshold (NaN never is); n when there is none.
int64_t find_at_least(const float* x, int64_t n, float threshold);
// The indices of the k largest values, largest first, ties lowest index first, NaN entries never
// taken; returns how many were written (min(k, non-NaN count)). ids: room for min(k, n). One pass
// with a heap of k that skips by find_at_least whatever cannot enter it: a vector scan of n plus
// O(log k) per entry (about k log(n / k) entries for values in random order).
int64_t top_k(const float* x, int64_t n, int64_t k, int32_t* ids);

// Sampling weights: out[i] = exp((x[i] - shift) * scale) (0 for -inf), and for each block of
// kExpBlock elements (the last one partial) block_sums[b] = its sum in double; returns the sum of
// block_sums. out and block_sums may be null (then only the total). Fast vs reference: out within
// 2 f32 ulp (plus 1e-38 absolute, subnormals), sums within 2e-6 relative (see log_sum_exp).
inline constexpr int64_t kExpBlock = 1024;
double exp_weights(const float* x, int64_t n, float shift, float scale, float* out, double* block_sums);

namespace reference {
void rms_norm(const float* x, int64_t m, int64_t h, const uint16_t* weight, float eps, float* out);
void silu_mul(const float* gate, const float* up, float* out, int64_t n);
void add_inplace(float* x, const float* y, int64_t n);
void softmax(float* x, int64_t n);
double log_sum_exp(const float* x, int64_t n);
float max_value(const float* x, int64_t n);
int64_t argmax(const float* x, int64_t n);
int64_t find_at_least(const float* x, int64_t n, float threshold);
int64_t top_k(const float* x, int64_t n, int64_t k, int32_t* ids);
double exp_weights(const float* x, int64_t n, float shift, float scale, float* out, double* block_sums);
}  // namespace reference

}  // namespace qswap
