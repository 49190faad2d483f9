// Every scheme, code for code, against scripts/fixtures/quant_ref.py (torch's float8_e4m3fn and
// float8_e8m0fnu): arith-base layer 0's fused q|k|v, its down_proj, and an edge-case weight (a zero
// row, bf16 subnormals that clamp the MX exponent, values near 1e30). Both the fast path and the
// scalar reference must reproduce the golden bytes.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "qswap/io/safetensors.h"
#include "qswap/quant/scheme.h"

namespace qswap {
namespace {

const std::filesystem::path kGolden =
    std::filesystem::path(QSWAP_TEST_DATA_DIR) / "arith-base" / "golden" / "quant_codes.safetensors";

struct Group {
  const char* name;
  std::vector<std::string> tensors;  // fused in this order
};
const Group kGroups[] = {
    {"qkv",
     {"model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight",
      "model.layers.0.self_attn.v_proj.weight"}},
    {"down", {"model.layers.0.mlp.down_proj.weight"}},
    {"edge", {"edge.weight"}},
};

std::vector<std::byte> read_all(const TensorSource& source, const std::string& name, Shape* shape = nullptr) {
  const TensorInfo* info = source.find(name);
  if (info == nullptr) {
    ADD_FAILURE() << "golden has no tensor " << name;
    return {};
  }
  if (shape != nullptr) *shape = info->shape;
  std::vector<std::byte> out(info->nbytes);
  EXPECT_TRUE(source.read(*info, 0, out).ok());
  return out;
}

std::vector<std::byte> slice_rows(const TensorView& v, int64_t row0, int64_t rows) {
  const size_t row_bytes = v.nbytes() / static_cast<size_t>(v.shape[0]);
  return std::vector<std::byte>(v.data + static_cast<size_t>(row0) * row_bytes,
                                v.data + static_cast<size_t>(row0 + rows) * row_bytes);
}

using Case = std::tuple<std::string, bool>;  // scheme, reference path
class QuantGoldenTest : public ::testing::TestWithParam<Case> {};

TEST_P(QuantGoldenTest, CodesAndScalesMatchTorch) {
  const auto& [scheme_name, reference] = GetParam();
  auto golden = open_safetensors(kGolden);
  ASSERT_TRUE(golden.ok()) << golden.status().to_string();
  auto scheme = make_quant_scheme(scheme_name);
  ASSERT_TRUE(scheme.ok());
  QuantContext ctx{reference, nullptr};

  for (const Group& group : kGroups) {
    SCOPED_TRACE(group.name);
    // The fused parameter: its shards stacked along rows, as the loader would assemble them.
    std::vector<int64_t> shard_rows;
    std::vector<std::byte> fused;
    int64_t k = 0;
    for (const std::string& t : group.tensors) {
      Shape shape;
      std::vector<std::byte> bytes = read_all(**golden, t, &shape);
      shard_rows.push_back(shape[0]);
      k = shape[1];
      fused.insert(fused.end(), bytes.begin(), bytes.end());
    }
    std::vector<Buffer> buffers;
    std::vector<TensorView> views;
    for (const KernelTensorSpec& spec : (*scheme)->kernel_tensors(shard_rows, k)) {
      views.push_back(TensorView{spec.dtype, spec.shape, nullptr});
      buffers.emplace_back(views.back().nbytes());
      views.back().data = buffers.back().data();
    }
    // Feed it as the loader does: one call per shard, or one for the whole parameter.
    int64_t row0 = 0, group0 = 0;
    const int64_t g = (*scheme)->row_group();
    if ((*scheme)->scale_spans_shards()) {
      int64_t n = 0;
      for (int64_t r : shard_rows) n += r;
      ASSERT_TRUE((*scheme)->quantize(SourceRows{DType::kBF16, fused.data(), 0, n, k, 0}, views, ctx).ok());
    } else {
      for (int64_t rows : shard_rows) {
        SourceRows src{DType::kBF16, fused.data() + static_cast<size_t>(row0 * k) * 2, row0, rows, k, group0};
        ASSERT_TRUE((*scheme)->quantize(src, views, ctx).ok());
        row0 += rows;
        group0 += (rows + g - 1) / g;
      }
    }
    // Compare shard by shard with the golden's per-tensor codes and scales.
    row0 = 0;
    int64_t scale_row0 = 0;
    for (size_t s = 0; s < group.tensors.size(); ++s) {
      const std::string prefix = group.tensors[s] + "." + scheme_name;
      const int64_t rows = shard_rows[s];
      EXPECT_TRUE(slice_rows(views[0], row0, rows) == read_all(**golden, prefix + ".codes")) << prefix << " codes";
      Shape scale_shape;
      std::vector<std::byte> want_scales = read_all(**golden, prefix + ".scales", &scale_shape);
      if (scheme_name == "fp8") {
        EXPECT_TRUE(std::memcmp(views[1].data, want_scales.data(), 4) == 0) << prefix << " scale";
      } else if (scheme_name == "mxfp8") {
        EXPECT_TRUE(slice_rows(views[1], row0, rows) == read_all(**golden, prefix + ".scales_e8m0")) << prefix;
      } else if (scheme_name == "fp8-block") {
        EXPECT_TRUE(slice_rows(views[1], scale_row0, scale_shape[0]) == want_scales) << prefix << " tile scales";
        for (int64_t r = 0; r < rows; ++r) {
          EXPECT_EQ(views[2].as<int32_t>()[row0 + r], scale_row0 + r / 128) << prefix << " row " << r;
        }
        scale_row0 += scale_shape[0];
      } else {
        EXPECT_TRUE(slice_rows(views[1], row0, rows) == want_scales) << prefix << " row scales";
      }
      row0 += rows;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllSchemes, QuantGoldenTest,
                         ::testing::Combine(::testing::Values("fp8", "fp8-channel", "fp8-block", "mxfp8", "int8-channel"),
                                            ::testing::Bool()),
                         [](const auto& param_info) {
                           std::string s = std::get<0>(param_info.param);
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s + (std::get<1>(param_info.param) ? "_reference" : "_fast");
                         });

}  // namespace
}  // namespace qswap
