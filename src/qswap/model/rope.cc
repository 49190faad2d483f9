#include "qswap/model/rope.h"

#include <cmath>
#include <numbers>

namespace qswap {
namespace {

// transformers' _compute_llama3_parameters: long wavelengths are slowed by `factor`, short ones
// kept, and the band between them interpolated.
float llama3_scale(float inv_freq, const RopeScaling& s) {
  const float old_len = static_cast<float>(s.original_max_position_embeddings);
  const float low_wavelen = old_len / static_cast<float>(s.low_freq_factor);
  const float high_wavelen = old_len / static_cast<float>(s.high_freq_factor);
  const float factor = static_cast<float>(s.factor);
  const float wavelen = 2.0f * std::numbers::pi_v<float> / inv_freq;
  float scaled = wavelen > low_wavelen ? inv_freq / factor : inv_freq;
  const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
  if (medium) {
    const float smooth = (old_len / wavelen - static_cast<float>(s.low_freq_factor)) /
                         static_cast<float>(s.high_freq_factor - s.low_freq_factor);
    scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
  }
  return scaled;
}

}  // namespace

Rope::Rope(const ModelConfig& config) : head_dim_(config.head_dim) {
  const int64_t half = head_dim_ / 2;
  inv_freq_.resize(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    // 1 / base^(2i / d), with the exponent formed in f32 as torch does.
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim_);
    float f = 1.0f / std::pow(static_cast<float>(config.rope_theta), exponent);
    switch (config.rope_scaling.type) {
      case RopeScaling::Type::kNone: break;
      case RopeScaling::Type::kLinear: f /= static_cast<float>(config.rope_scaling.factor); break;
      case RopeScaling::Type::kLlama3: f = llama3_scale(f, config.rope_scaling); break;
    }
    inv_freq_[static_cast<size_t>(i)] = f;
  }
}

void Rope::apply(float* x, int64_t heads, int64_t pos) const {
  const int64_t half = head_dim_ / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float angle = static_cast<float>(pos) * inv_freq_[static_cast<size_t>(i)];
    const float c = std::cos(angle), s = std::sin(angle);
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + h * head_dim_;
      const float x1 = v[i], x2 = v[i + half];
      v[i] = x1 * c - x2 * s;
      v[i + half] = x2 * c + x1 * s;
    }
  }
}

}  // namespace qswap
