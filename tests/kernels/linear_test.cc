// linear(): every kernel-tensor layout, built by quantizing random bf16 weights with the real
// schemes (so the layouts cannot drift from what the loader writes), at odd shapes.
//   - reference::linear against a double-precision naive product of weights dequantized
//     independently here (e4m3 as torch decodes it, from tests/data/dtype; e8m0 by ldexp);
//   - the dispatched linear() against reference::linear;
//   both within 1e-5 × Σ|x||w| per output (f32 rounding and reassociation only). Run with the ISA
//   capped to scalar (linear() must then be the reference, bit for bit) and uncapped.
//   - 1, 2 and 3 threads give identical bits; nothing outside y is written.
// Inputs are random, fresh per run (seed printed; QSWAP_TEST_SEED=<seed> replays).
#include "qswap/kernels/linear.h"

#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "test_util.h"
#include "qswap/quant/scheme.h"
#include "qswap/tensor/convert.h"

namespace qswap {
namespace {

constexpr double kTolerance = 1e-5;  // max |diff| / (Σ|x||w| + |bias|) per output

const char* const kSchemes[] = {"none", "fp8", "fp8-channel", "fp8-block", "mxfp8", "int8-channel"};

struct Shape2 {
  int64_t n, k;
};
// k >= 512: the GEMV takes MX rows 8 steps (16 blocks) at a time; 552 ends in a lone tail step
// that starts a group, 1100 in two groups, a full step and a tail.
constexpr Shape2 kShapes[] = {{200, 72}, {130, 260}, {1, 1}, {17, 33}, {48, 128}, {129, 257}, {3, 500}, {5, 552}, {19, 1100}};
constexpr int64_t kRows[] = {1, 2, 3, 4, 5, 7, 8, 9, 33};

// e4m3 (OCP e4m3fn) values as torch decodes them (tests/data/dtype/decode_e4m3.bin; NaN codes NaN).
const std::array<double, 256>& e4m3_table() {
  static const std::array<double, 256> table = [] {
    std::array<double, 256> t{};
    const std::vector<uint32_t> bits = test::read_decode_golden("e4m3", t.size());
    for (size_t c = 0; c < t.size() && c < bits.size(); ++c) t[c] = std::bit_cast<float>(bits[c]);
    return t;
  }();
  return table;
}

struct Quantized {
  QuantKind kind = QuantKind::kNone;
  std::vector<Buffer> buffers;
  std::vector<TensorView> views;
  LinearWeight w;
};

// Random bf16 weights [n, k]: rows of different magnitudes, one all-zero row (the schemes' zero
// guard), and 1 in 16 elements tiny, which gives e4m3 subnormal codes.
std::vector<uint16_t> random_weights(std::mt19937_64& rng, int64_t n, int64_t k) {
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<float> exponent(-6.0f, 4.0f);
  std::uniform_int_distribution<int> one_in_16(0, 15);
  std::vector<uint16_t> w(static_cast<size_t>(n * k));
  for (int64_t j = 0; j < n; ++j) {
    const float mag = std::exp2(exponent(rng));
    for (int64_t c = 0; c < k; ++c) {
      float v = normal(rng) * mag;
      if (one_in_16(rng) == 0) v *= 0x1p-14f;
      if (j == 1 && n > 2) v = 0.0f;
      w[static_cast<size_t>(j * k + c)] = f32_to_bf16(v);
    }
  }
  return w;
}

Quantized quantize(std::string_view scheme_name, const std::vector<uint16_t>& bf16, int64_t n, int64_t k) {
  Quantized q;
  auto scheme = make_quant_scheme(scheme_name);
  EXPECT_TRUE(scheme.ok()) << scheme.status().to_string();
  q.kind = (*scheme)->kind();
  for (const KernelTensorSpec& spec : (*scheme)->kernel_tensors(std::vector<int64_t>{n}, k)) {
    q.buffers.emplace_back(static_cast<size_t>(num_elements(spec.shape)) * dtype_size(spec.dtype));
    q.views.push_back(TensorView{spec.dtype, spec.shape, q.buffers.back().data()});
  }
  SourceRows src{DType::kBF16, reinterpret_cast<const std::byte*>(bf16.data()), 0, n, k};
  Status s = (*scheme)->quantize(src, q.views, QuantContext{});
  EXPECT_TRUE(s.ok()) << s.to_string();
  auto w = make_linear_weight(q.kind, q.views);
  EXPECT_TRUE(w.ok()) << w.status().to_string();
  if (w.ok()) q.w = *w;
  return q;
}

// W[j, c] dequantized in double from the kernel tensors, by this file's own decoding.
double deq(const Quantized& q, int64_t j, int64_t c) {
  const int64_t k = q.w.k;
  const std::byte* codes = q.views[0].data;
  if (q.kind == QuantKind::kNone) {
    uint16_t h;
    std::memcpy(&h, codes + 2 * (j * k + c), 2);
    return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
  }
  const auto code = static_cast<uint8_t>(codes[j * k + c]);
  const auto* f32_scales = q.views[1].as<float>();
  switch (q.kind) {
    case QuantKind::kInt8Channel: return static_cast<int8_t>(code) * static_cast<double>(f32_scales[j]);
    case QuantKind::kFp8Tensor: return e4m3_table()[code] * f32_scales[0];
    case QuantKind::kFp8Channel: return e4m3_table()[code] * f32_scales[j];
    case QuantKind::kFp8Block: return e4m3_table()[code] * f32_scales[(j / 128) * ((k + 127) / 128) + c / 128];
    case QuantKind::kMxfp8: {
      const uint8_t e = q.views[1].as<uint8_t>()[j * ((k + 31) / 32) + c / 32];
      return e4m3_table()[code] * std::ldexp(1.0, e - 127);
    }
    default: return std::numeric_limits<double>::quiet_NaN();
  }
}

struct Naive {
  std::vector<double> y, norm;  // [m, n]: the product, and Σ|x||w| + |bias|
};

Naive naive(const Quantized& q, const std::vector<float>& x, int64_t m, const uint16_t* bias) {
  const int64_t n = q.w.n, k = q.w.k;
  Naive out{std::vector<double>(static_cast<size_t>(m * n)), std::vector<double>(static_cast<size_t>(m * n))};
  std::vector<double> row(static_cast<size_t>(k));
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t c = 0; c < k; ++c) row[static_cast<size_t>(c)] = deq(q, j, c);
    const double b = bias != nullptr ? std::bit_cast<float>(static_cast<uint32_t>(bias[j]) << 16) : 0.0;
    for (int64_t i = 0; i < m; ++i) {
      double sum = 0.0, norm = 0.0;
      for (int64_t c = 0; c < k; ++c) {
        const double xv = x[static_cast<size_t>(i * k + c)];
        sum += xv * row[static_cast<size_t>(c)];
        norm += std::fabs(xv * row[static_cast<size_t>(c)]);
      }
      out.y[static_cast<size_t>(i * n + j)] = sum + b;
      out.norm[static_cast<size_t>(i * n + j)] = norm + std::fabs(b);
    }
  }
  return out;
}

std::vector<float> random_x(std::mt19937_64& rng, int64_t m, int64_t k) {
  std::normal_distribution<float> normal;
  std::vector<float> x(static_cast<size_t>(m * k));
  for (int64_t i = 0; i < m; ++i) {
    const float mag = i % 3 == 2 ? 100.0f : 1.0f;
    for (int64_t c = 0; c < k; ++c) x[static_cast<size_t>(i * k + c)] = normal(rng) * mag;
  }
  return x;
}

std::vector<uint16_t> random_bias(std::mt19937_64& rng, int64_t n) {
  std::normal_distribution<float> normal;
  std::vector<uint16_t> b(static_cast<size_t>(n));
  for (uint16_t& v : b) v = f32_to_bf16(normal(rng));
  return b;
}

// y with guard values on both sides, to catch writes outside [0, m*n).
class GuardedY {
 public:
  explicit GuardedY(int64_t size) : data_(static_cast<size_t>(size) + 2 * kGuard, kGuardValue) {}
  float* data() { return data_.data() + kGuard; }
  float operator[](int64_t i) const { return data_[static_cast<size_t>(i) + kGuard]; }
  bool guards_intact() const {
    for (size_t i = 0; i < kGuard; ++i) {
      if (std::bit_cast<uint32_t>(data_[i]) != std::bit_cast<uint32_t>(kGuardValue) ||
          std::bit_cast<uint32_t>(data_[data_.size() - 1 - i]) != std::bit_cast<uint32_t>(kGuardValue)) {
        return false;
      }
    }
    return true;
  }

 private:
  static constexpr size_t kGuard = 64;
  static constexpr float kGuardValue = -12345.0f;
  std::vector<float> data_;
};

// max over outputs of |got - want| / norm (0/0 counts as 0; a nonzero difference at norm 0 as inf).
template <typename Want>
double worst_error(const GuardedY& got, const Want& want, const std::vector<double>& norm) {
  double worst = 0.0;
  for (size_t i = 0; i < norm.size(); ++i) {
    const double diff = std::fabs(static_cast<double>(got[static_cast<int64_t>(i)]) - static_cast<double>(want[i]));
    const double err = diff == 0.0 ? 0.0 : norm[i] == 0.0 ? INFINITY : diff / norm[i];
    if (!(err <= worst)) worst = err;
  }
  return worst;
}

struct RefView {
  const GuardedY& y;
  float operator[](size_t i) const { return y[static_cast<int64_t>(i)]; }
};

// Scalar: the ISA capped (linear() is then the reference); Avx512: AVX-512 without the VBMI e4m3
// decoder (what every AVX-512 CPU runs); Native: everything this CPU has.
enum class Mode { kScalar, kAvx512, kNative };

class LinearTest : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    saved_ = isa_level();
    set_isa_cap(GetParam() == Mode::kScalar ? IsaLevel::kScalar : IsaLevel::kAvx512);
    set_linear_vbmi(GetParam() == Mode::kNative);
  }
  void TearDown() override {
    set_isa_cap(saved_);
    set_linear_vbmi(true);
  }

 private:
  IsaLevel saved_ = IsaLevel::kScalar;
};

std::string mode_name(const ::testing::TestParamInfo<Mode>& info) {
  switch (info.param) {
    case Mode::kScalar: return "Scalar";
    case Mode::kAvx512: return "Avx512NoVbmi";
    case Mode::kNative: return "Native";
  }
  return "Unknown";
}

TEST_P(LinearTest, EveryLayoutMatchesReferenceAndNaiveDouble) {
  const uint64_t seed = test::run_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const bool scalar = isa_level() == IsaLevel::kScalar;
  std::mt19937_64 rng(seed);
  bool saw_subnormal = false;
  for (const char* scheme : kSchemes) {
    for (const Shape2& shape : kShapes) {
      std::vector<uint16_t> bf16 = random_weights(rng, shape.n, shape.k);
      Quantized q = quantize(scheme, bf16, shape.n, shape.k);
      if (q.kind != QuantKind::kNone && q.kind != QuantKind::kInt8Channel) {
        for (int64_t i = 0; i < shape.n * shape.k; ++i) {
          const auto c = static_cast<uint8_t>(q.views[0].data[i]);
          saw_subnormal |= (c & 0x78) == 0 && (c & 0x07) != 0;
        }
      }
      std::vector<uint16_t> bias = random_bias(rng, shape.n);
      for (int64_t m : kRows) {
        SCOPED_TRACE(fmt::format("{} n={} k={} m={}", scheme, shape.n, shape.k, m));
        const uint16_t* b = m % 2 == 1 ? bias.data() : nullptr;
        std::vector<float> x = random_x(rng, m, shape.k);
        Naive want = naive(q, x, m, b);
        GuardedY ref(m * shape.n), fast(m * shape.n);
        reference::linear(q.w, x.data(), m, ref.data(), b);
        linear(q.w, x.data(), m, fast.data(), b, nullptr);
        ASSERT_TRUE(ref.guards_intact() && fast.guards_intact()) << "wrote outside y";
        EXPECT_LE(worst_error(ref, want.y, want.norm), kTolerance) << "reference vs double";
        EXPECT_LE(worst_error(fast, RefView{ref}, want.norm), kTolerance) << "linear vs reference";
        if (scalar) {
          EXPECT_EQ(std::memcmp(ref.data(), fast.data(), static_cast<size_t>(m * shape.n) * sizeof(float)), 0)
              << "with the ISA capped to scalar, linear() must be the reference";
        }
      }
    }
  }
  EXPECT_TRUE(saw_subnormal) << "no e4m3 subnormal code was exercised";
}

// Every finite e4m3 code at every column position (so in every lane of the decoders' 64-code
// steps and in a masked tail), for each e4m3 layout with unit scales: with x one-hot, an output
// is one code's value exactly, on every path. The first rows hold normal codes and, every 4th
// row, one exponent-0 code (rare enough for FixMode to keep its branch); the rest hold every code
// each (exponent-0 codes in every step), so a decoder that fixes those codes only where a step
// has any runs both ways: behind its branch first, then unconditionally.
TEST_P(LinearTest, EveryE4m3CodeDecodesExactly) {
  std::vector<uint8_t> finite, normal, exponent0;
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7F) == 0x7F) continue;
    finite.push_back(static_cast<uint8_t>(c));
    ((c & 0x78) == 0 ? exponent0 : normal).push_back(static_cast<uint8_t>(c));
  }
  const auto sparse_rows = static_cast<int64_t>(finite.size()), n = 2 * sparse_rows;
  const int64_t k = 5 * 64 + 5;
  std::vector<uint8_t> codes(static_cast<size_t>(n * k));
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < k; ++c) {
      codes[static_cast<size_t>(r * k + c)] = r < sparse_rows ? normal[static_cast<size_t>((r + c) % normal.size())]
                                                              : finite[static_cast<size_t>((r + c) % finite.size())];
    }
    if (r < sparse_rows && r % 4 == 0) codes[static_cast<size_t>(r * k + (r * 37) % k)] = exponent0[static_cast<size_t>(r) % exponent0.size()];
  }
  const int64_t tiles_n = (n + 127) / 128, tiles_k = (k + 127) / 128, mx_blocks = (k + 31) / 32;
  std::vector<float> ones(static_cast<size_t>(std::max(n, tiles_n * tiles_k)), 1.0f);
  std::vector<int32_t> tile_row(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) tile_row[static_cast<size_t>(r)] = static_cast<int32_t>(r / 128);
  std::vector<uint8_t> e8m0_ones(static_cast<size_t>(n * mx_blocks), 127);
  const TensorView weight{DType::kF8E4M3, {n, k}, reinterpret_cast<std::byte*>(codes.data())};
  auto* unit = reinterpret_cast<std::byte*>(ones.data());
  struct Layout {
    const char* name;
    QuantKind kind;
    std::vector<TensorView> views;
  };
  const Layout layouts[] = {
      {"fp8", QuantKind::kFp8Tensor, {weight, TensorView{DType::kF32, {1}, unit}}},
      {"fp8-channel", QuantKind::kFp8Channel, {weight, TensorView{DType::kF32, {n}, unit}}},
      {"fp8-block", QuantKind::kFp8Block,
       {weight, TensorView{DType::kF32, {tiles_n, tiles_k}, unit},
        TensorView{DType::kI32, {n}, reinterpret_cast<std::byte*>(tile_row.data())}}},
      {"mxfp8", QuantKind::kMxfp8,
       {weight, TensorView{DType::kF8E8M0, {n, mx_blocks}, reinterpret_cast<std::byte*>(e8m0_ones.data())}}},
  };
  for (const Layout& layout : layouts) {
    auto w = make_linear_weight(layout.kind, layout.views);
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    for (int64_t m : {1, 3}) {
      for (int64_t col = 0; col + m <= k; ++col) {
        std::vector<float> x(static_cast<size_t>(m * k), 0.0f);  // row i is one-hot at col + i
        for (int64_t i = 0; i < m; ++i) x[static_cast<size_t>(i * k + col + i)] = 1.0f;
        GuardedY y(m * n);
        linear(*w, x.data(), m, y.data(), nullptr, nullptr);
        ASSERT_TRUE(y.guards_intact()) << "wrote outside y";
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t r = 0; r < n; ++r) {
            const uint8_t code = codes[static_cast<size_t>(r * k + col + i)];
            const float want = static_cast<float>(e4m3_table()[code]) + 0.0f;  // a sum from +0: -0 reads +0
            ASSERT_EQ(std::bit_cast<uint32_t>(y[i * n + r]), std::bit_cast<uint32_t>(want))
                << layout.name << " m=" << m << " column " << col + i << " code 0x" << std::hex << int{code};
          }
        }
      }
    }
  }
}

// Shapes past every blocking of the GEMM path: several k blocks (128), column panels (192) and
// row blocks of x (256), with tails in each.
TEST_P(LinearTest, LargeShapesAcrossGemmBlocks) {
  const uint64_t seed = test::run_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed + 1);
  const int64_t n = 200, k = 260, m = 260;
  for (const char* scheme : kSchemes) {
    SCOPED_TRACE(scheme);
    std::vector<uint16_t> bf16 = random_weights(rng, n, k);
    Quantized q = quantize(scheme, bf16, n, k);
    std::vector<uint16_t> bias = random_bias(rng, n);
    std::vector<float> x = random_x(rng, m, k);
    Naive want = naive(q, x, m, bias.data());
    GuardedY ref(m * n), fast(m * n);
    reference::linear(q.w, x.data(), m, ref.data(), bias.data());
    ThreadPool pool(2);
    linear(q.w, x.data(), m, fast.data(), bias.data(), &pool);
    ASSERT_TRUE(fast.guards_intact()) << "wrote outside y";
    EXPECT_LE(worst_error(ref, want.y, want.norm), kTolerance) << "reference vs double";
    EXPECT_LE(worst_error(fast, RefView{ref}, want.norm), kTolerance) << "linear vs reference";
  }
}

TEST_P(LinearTest, ThreadCountDoesNotChangeBits) {
  const uint64_t seed = test::run_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed + 2);
  ThreadPool pool2(2), pool3(3);
  for (const char* scheme : kSchemes) {
    for (Shape2 shape : {Shape2{200, 72}, Shape2{1000, 130}}) {
      std::vector<uint16_t> bf16 = random_weights(rng, shape.n, shape.k);
      Quantized q = quantize(scheme, bf16, shape.n, shape.k);
      std::vector<uint16_t> bias = random_bias(rng, shape.n);
      for (int64_t m : {1, 3, 9, 40}) {
        SCOPED_TRACE(fmt::format("{} n={} k={} m={}", scheme, shape.n, shape.k, m));
        std::vector<float> x = random_x(rng, m, shape.k);
        const size_t bytes = static_cast<size_t>(m * shape.n) * sizeof(float);
        std::vector<float> y1(static_cast<size_t>(m * shape.n)), y2(y1.size()), y3(y1.size());
        linear(q.w, x.data(), m, y1.data(), bias.data(), nullptr);
        linear(q.w, x.data(), m, y2.data(), bias.data(), &pool2);
        linear(q.w, x.data(), m, y3.data(), bias.data(), &pool3);
        EXPECT_EQ(std::memcmp(y1.data(), y2.data(), bytes), 0) << "1 vs 2 threads";
        EXPECT_EQ(std::memcmp(y1.data(), y3.data(), bytes), 0) << "1 vs 3 threads";
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, LinearTest, ::testing::Values(Mode::kScalar, Mode::kAvx512, Mode::kNative),
                         mode_name);

// The kernels' layout table against every scheme's declared kernel tensors.
TEST(LinearWeightTest, AcceptsEveryScheme) {
  for (const char* name : kSchemes) {
    auto scheme = make_quant_scheme(name);
    ASSERT_TRUE(scheme.ok());
    for (Shape2 shape : {Shape2{1, 1}, Shape2{200, 72}, Shape2{257, 129}}) {
      std::vector<KernelTensorSpec> specs = (*scheme)->kernel_tensors(std::vector<int64_t>{shape.n}, shape.k);
      std::vector<std::byte> storage(64);
      std::vector<TensorView> views;
      for (const KernelTensorSpec& s : specs) views.push_back(TensorView{s.dtype, s.shape, storage.data()});
      auto w = make_linear_weight((*scheme)->kind(), views);
      ASSERT_TRUE(w.ok()) << name << ": " << w.status().to_string();
      EXPECT_EQ(w->n, shape.n);
      EXPECT_EQ(w->k, shape.k);
      EXPECT_EQ(w->kind, (*scheme)->kind());
      EXPECT_EQ(w->weight, storage.data());
      EXPECT_EQ(w->scale, specs.size() > 1 ? storage.data() : nullptr);
    }
  }
}

TEST(LinearWeightTest, ErrorsNameExpectedAndActual) {
  std::byte storage[64] = {};
  auto message = [](const Result<LinearWeight>& r) { return r.ok() ? std::string("ok") : r.status().message(); };

  TensorView weight{DType::kF8E4M3, {200, 72}, storage};
  TensorView scale{DType::kF32, {2, 1}, storage};
  std::vector<TensorView> block{weight, scale, TensorView{DType::kI32, {200}, storage}};
  EXPECT_EQ(message(make_linear_weight(QuantKind::kFp8Block, block)), "ok");
  block[1].shape = {3, 1};  // a fused weight's shards add tile rows
  EXPECT_EQ(message(make_linear_weight(QuantKind::kFp8Block, block)), "ok");
  block[1].shape = {2, 2};
  EXPECT_EQ(message(make_linear_weight(QuantKind::kFp8Block, block)),
            "fp8-block linear weight: weight_scale is f32 [2, 2], expected f32 [>= 2, 1]");
  block[1].shape = {2, 1};
  block[2].shape = {100};
  EXPECT_EQ(message(make_linear_weight(QuantKind::kFp8Block, block)),
            "fp8-block linear weight: weight_scale_row is i32 [100], expected i32 [200]");

  std::vector<TensorView> views{weight, scale};
  views[1] = TensorView{DType::kBF16, {200}, storage};
  EXPECT_EQ(message(make_linear_weight(QuantKind::kFp8Channel, views)),
            "fp8-channel linear weight: weight_scale is bf16 [200], expected f32 [200]");
  views[1] = TensorView{DType::kF32, {200, 3}, storage};
  EXPECT_EQ(message(make_linear_weight(QuantKind::kMxfp8, views)),
            "mxfp8 linear weight: weight_scale is f32 [200, 3], expected f8_e8m0 [200, 3]");
  EXPECT_EQ(message(make_linear_weight(QuantKind::kInt8Channel, views)),
            "int8-channel linear weight: weight is f8_e4m3 [200, 72], expected i8 [200, 72]");
  EXPECT_EQ(message(make_linear_weight(QuantKind::kNone, views)),
            "none linear weight: got 2 kernel tensors, expected 1 (weight)");
  EXPECT_EQ(message(make_linear_weight(QuantKind::kFp8Tensor, std::span<const TensorView>(views.data(), 1))),
            "fp8 linear weight: got 1 kernel tensors, expected 2 (weight, weight_scale)");

  std::vector<TensorView> flat{TensorView{DType::kBF16, {72}, storage}};
  EXPECT_EQ(message(make_linear_weight(QuantKind::kNone, flat)),
            "none linear weight: weight is bf16 [72], expected bf16 [n, k] with n, k >= 1");
  std::vector<TensorView> unallocated{TensorView{DType::kBF16, {4, 8}, nullptr}};
  EXPECT_EQ(message(make_linear_weight(QuantKind::kNone, unallocated)),
            "none linear weight: weight bf16 [4, 8] has no data (not allocated)");
}

TEST(LinearWeightTest, WeightBytesCountCodesAndScales) {
  std::byte storage[8] = {};
  auto bytes = [&](QuantKind kind, std::vector<TensorView> views) {
    auto w = make_linear_weight(kind, views);
    EXPECT_TRUE(w.ok()) << w.status().to_string();
    return w.ok() ? linear_weight_bytes(*w) : 0;
  };
  EXPECT_EQ(bytes(QuantKind::kNone, {TensorView{DType::kBF16, {200, 72}, storage}}), 200u * 72 * 2);
  EXPECT_EQ(bytes(QuantKind::kFp8Block, {TensorView{DType::kF8E4M3, {200, 72}, storage},
                                         TensorView{DType::kF32, {2, 1}, storage}, TensorView{DType::kI32, {200}, storage}}),
            200u * 72 + 2 * 4 + 200 * 4);
  EXPECT_EQ(bytes(QuantKind::kMxfp8, {TensorView{DType::kF8E4M3, {200, 72}, storage},
                                      TensorView{DType::kF8E8M0, {200, 3}, storage}}),
            200u * 72 + 200 * 3);
}

}  // namespace
}  // namespace qswap
