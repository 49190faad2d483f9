// attention(): causal grouped-query attention over a head-major KV cache, at odd shapes (head
// dims not multiples of 16, groups of 1-7 query heads, key counts across the 16-key blocks) and
// at head dims 64 and 128 (the fast path's constant-stride score kernels).
//   - reference::attention and the dispatched attention() against a double-precision
//     computation, each within an error bound derived per output (see bound() below);
//   - with the ISA capped to scalar, attention() is the reference bit for bit;
//   - 1, 2 and 3 threads give identical bits; nothing outside out is written; nothing past the
//     causal limit (NaN-filled cache positions, NaN padding between query rows) is read.
// Inputs are random, fresh per run (seed printed; QSWAP_TEST_SEED=<seed> replays).
#include "qswap/kernels/attention.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "test_util.h"

namespace qswap {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kGuard = 12345.0f;
constexpr double kUnit = 0x1p-24;  // f32 unit roundoff

struct Case {
  int64_t heads, kv_heads, head_dim, n, start;
};

// A problem with its inputs laid out as the forward pass does: q inside wider rows (stride
// q_stride, NaN in between), keys/values head-major with spare capacity (NaN past the last
// position), out with guard values after it.
struct Problem {
  Case c;
  int64_t q_stride = 0, capacity = 0;
  std::vector<float> q, keys, values;
  float scale = 0;

  KvView kv() const { return KvView{keys.data(), values.data(), capacity * c.head_dim}; }
  AttentionShape shape() const { return AttentionShape{c.heads, c.kv_heads, c.head_dim}; }
  size_t out_size() const { return static_cast<size_t>(c.n * c.heads * c.head_dim); }
  const float* q_at(int64_t t, int64_t h) const { return q.data() + t * q_stride + h * c.head_dim; }
  const float* key(int64_t g, int64_t p) const { return keys.data() + (g * capacity + p) * c.head_dim; }
  const float* value(int64_t g, int64_t p) const { return values.data() + (g * capacity + p) * c.head_dim; }
};

Problem make_problem(const Case& c, std::mt19937_64& rng) {
  Problem p;
  p.c = c;
  p.q_stride = c.heads * c.head_dim + 5;
  p.capacity = c.start + c.n + 3;
  p.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  std::normal_distribution<float> normal;
  // Scores of a few units: softmax neither flat nor one-hot.
  std::uniform_real_distribution<float> magnitude(0.5f, 3.0f);
  p.q.assign(static_cast<size_t>(c.n * p.q_stride), kNaN);
  for (int64_t t = 0; t < c.n; ++t) {
    for (int64_t i = 0; i < c.heads * c.head_dim; ++i) p.q[static_cast<size_t>(t * p.q_stride + i)] = normal(rng) * magnitude(rng);
  }
  const size_t cache = static_cast<size_t>(c.kv_heads * p.capacity * c.head_dim);
  p.keys.assign(cache, kNaN);
  p.values.assign(cache, kNaN);
  for (int64_t g = 0; g < c.kv_heads; ++g) {
    for (int64_t pos = 0; pos < c.start + c.n; ++pos) {
      for (int64_t d = 0; d < c.head_dim; ++d) {
        const size_t at = static_cast<size_t>((g * p.capacity + pos) * c.head_dim + d);
        p.keys[at] = normal(rng);
        p.values[at] = normal(rng) * magnitude(rng);
      }
    }
  }
  return p;
}

// The exact result (double) and, per output, a bound on the error of an f32 computation:
// a score's error is at most ~head_dim ulp of Σ|q||k| (a sum in any order) plus the scale's
// rounding; the softmax weights inherit twice the largest score error plus a few ulp (exp within
// 2 ulp, the normalising sum ~len ulp); the output adds ~len ulp of Σ p|v|. Doubled for margin.
struct Expected {
  std::vector<double> out, bound;
};

Expected exact(const Problem& p) {
  const Case& c = p.c;
  const int64_t group = c.heads / c.kv_heads;
  Expected e;
  e.out.resize(p.out_size());
  e.bound.resize(p.out_size());
  for (int64_t t = 0; t < c.n; ++t) {
    for (int64_t h = 0; h < c.heads; ++h) {
      const int64_t g = h / group, len = c.start + t + 1;
      std::vector<double> s(static_cast<size_t>(len));
      double max_s = -INFINITY, score_err = 0;
      for (int64_t j = 0; j < len; ++j) {
        double dot = 0, abs_dot = 0;
        for (int64_t d = 0; d < c.head_dim; ++d) {
          dot += static_cast<double>(p.q_at(t, h)[d]) * p.key(g, j)[d];
          abs_dot += std::fabs(static_cast<double>(p.q_at(t, h)[d]) * p.key(g, j)[d]);
        }
        s[static_cast<size_t>(j)] = dot * p.scale;
        max_s = std::max(max_s, s[static_cast<size_t>(j)]);
        score_err = std::max(score_err, (static_cast<double>(c.head_dim) + 2) * kUnit * abs_dot * p.scale +
                                            kUnit * std::fabs(dot * p.scale));
      }
      double sum = 0;
      for (double& v : s) sum += v = std::exp(v - max_s);
      const double weight_err = 2 * score_err + kUnit * (8 + static_cast<double>(len));
      for (int64_t d = 0; d < c.head_dim; ++d) {
        double o = 0, abs_o = 0;
        for (int64_t j = 0; j < len; ++j) {
          o += s[static_cast<size_t>(j)] / sum * p.value(g, j)[d];
          abs_o += s[static_cast<size_t>(j)] / sum * std::fabs(p.value(g, j)[d]);
        }
        const size_t at = static_cast<size_t>((t * c.heads + h) * c.head_dim + d);
        e.out[at] = o;
        e.bound[at] = 2 * (weight_err + kUnit * (4 + static_cast<double>(len))) * abs_o + 1e-30;
      }
    }
  }
  return e;
}

// out with guard values after it; checks the guards and returns the outputs.
template <class Run>
std::vector<float> run_guarded(const Problem& p, Run run) {
  std::vector<float> buf(p.out_size() + 16, kGuard);
  run(buf.data());
  for (size_t i = p.out_size(); i < buf.size(); ++i) EXPECT_EQ(buf[i], kGuard) << "write past out at " << i;
  buf.resize(p.out_size());
  return buf;
}

::testing::AssertionResult within(const std::vector<float>& got, const Expected& want) {
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(got[i] - want.out[i]);
    if (!(err <= want.bound[i])) {
      return ::testing::AssertionFailure() << "output " << i << ": got " << got[i] << ", want " << want.out[i]
                                           << " (error " << err << " > bound " << want.bound[i] << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

std::vector<Case> cases() {
  std::vector<Case> out;
  const int64_t shapes[][3] = {{1, 1, 1}, {2, 1, 16}, {4, 2, 24}, {3, 3, 40}, {7, 1, 33}, {8, 4, 64}, {6, 2, 130}, {16, 8, 128}};
  const int64_t lengths[][2] = {{1, 0}, {1, 37}, {2, 15}, {5, 0}, {17, 3}, {40, 30}};
  for (const auto& s : shapes) {
    for (const auto& l : lengths) out.push_back(Case{s[0], s[1], s[2], l[0], l[1]});
  }
  return out;
}

class AttentionTest : public test::IsaTest {};

TEST_P(AttentionTest, MatchesDoublePrecisionAndReference) {
  std::mt19937_64 rng(test::run_seed());
  for (const Case& c : cases()) {
    SCOPED_TRACE(::testing::Message() << "heads " << c.heads << ", kv_heads " << c.kv_heads << ", head_dim "
                                      << c.head_dim << ", n " << c.n << ", start " << c.start);
    const Problem p = make_problem(c, rng);
    const Expected want = exact(p);
    const std::vector<float> ref = run_guarded(p, [&](float* out) {
      reference::attention(p.shape(), p.q.data(), p.q_stride, c.n, c.start, p.kv(), p.scale, out);
    });
    EXPECT_TRUE(within(ref, want)) << "reference";
    const std::vector<float> got = run_guarded(p, [&](float* out) {
      attention(p.shape(), p.q.data(), p.q_stride, c.n, c.start, p.kv(), p.scale, out, nullptr);
    });
    EXPECT_TRUE(within(got, want)) << "dispatched";
    if (GetParam() == IsaLevel::kScalar) {
      EXPECT_EQ(std::memcmp(got.data(), ref.data(), got.size() * sizeof(float)), 0) << "scalar path is not the reference";
    }
  }
}

TEST_P(AttentionTest, ThreadCountDoesNotChangeBits) {
  std::mt19937_64 rng(test::run_seed() + 1);
  ThreadPool pool2(2), pool3(3);
  for (const Case& c : {Case{16, 8, 128, 1, 70}, Case{16, 8, 128, 33, 0}, Case{6, 2, 40, 19, 5}, Case{4, 1, 24, 9, 2}}) {
    SCOPED_TRACE(::testing::Message() << "heads " << c.heads << ", n " << c.n << ", start " << c.start);
    const Problem p = make_problem(c, rng);
    auto run = [&](ThreadPool* pool) {
      return run_guarded(p, [&](float* out) {
        attention(p.shape(), p.q.data(), p.q_stride, c.n, c.start, p.kv(), p.scale, out, pool);
      });
    };
    const std::vector<float> one = run(nullptr), two = run(&pool2), three = run(&pool3);
    EXPECT_EQ(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(one.data(), three.data(), one.size() * sizeof(float)), 0);
    EXPECT_TRUE(within(two, exact(p)));
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, AttentionTest, ::testing::Values(IsaLevel::kScalar, IsaLevel::kAvx512),
                         test::isa_param_name);

}  // namespace
}  // namespace qswap
