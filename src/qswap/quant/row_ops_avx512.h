// AVX-512 row kernels. This header (and the .cc behind it) includes nothing but <cstdint>: an
// inline function from a shared header compiled with AVX-512 flags can become the program-wide
// copy of that function (a weak symbol) and crash CPUs without AVX-512.
#pragma once

#include <cstdint>

namespace qswap::quant::avx512 {

// out[i] = clamp(rne(x[i] * inv_scale), -127, 127)
void quantize_i8(const float* x, float inv_scale, int8_t* out, int64_t n);

}  // namespace qswap::quant::avx512
