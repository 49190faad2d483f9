// AVX-512 attention (attention_avx512.cc). Includes nothing but <cstdint> (see linear_avx512.h
// for why); reached only through attention.cc's dispatch.
#pragma once

#include <cstdint>

namespace qswap::kernels::avx512 {

// One kv head's share of the work: the query rows of tokens [t_begin, t_end) × the `group` query
// heads that read kv head g.
struct AttentionBlock {
  const float* q;        // token t, query head h at q + t * q_stride + h * head_dim
  int64_t q_stride;
  float* out;            // token t, query head h at out + (t * heads + h) * head_dim
  int64_t heads, group, head_dim;
  int64_t g;             // the kv head
  const float* keys;     // kv head g, position p at keys + p * head_dim
  const float* values;
  int64_t start;         // position of token 0
  int64_t t_begin, t_end;
  float scale;
  float* scores;         // scratch, attention_scores_floats() floats
};

// Scratch one block needs.
int64_t attention_scores_floats(int64_t rows, int64_t max_len);
void attention_block(const AttentionBlock& b);

}  // namespace qswap::kernels::avx512
