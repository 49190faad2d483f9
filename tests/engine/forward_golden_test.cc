// The forward pass against transformers: logits and perplexities of every fixture model, for bf16
// weights and for every scheme (whose goldens come from torch's own float8 conversions).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "fixtures.h"
#include "qswap/engine/engine.h"
#include "qswap/io/safetensors.h"

namespace qswap {
namespace {

using testing::data_dir;
using testing::read_json;

std::vector<int32_t> ids_of(const nlohmann::json& item) { return item.at("ids").get<std::vector<int32_t>>(); }

std::vector<float> golden_tensor(const TensorSource& source, const std::string& name) {
  const TensorInfo* info = source.find(name);
  EXPECT_NE(info, nullptr) << name;
  if (info == nullptr) return {};
  std::vector<float> out(info->nbytes / sizeof(float));
  EXPECT_TRUE(source.read(*info, 0, std::as_writable_bytes(std::span(out))).ok());
  return out;
}

// max |a - b| relative to the golden's largest magnitude: f32 reassociation and libm differences
// stay orders of magnitude below it; a wrong weight, scale or position does not.
double normalized_error(std::span<const float> got, std::span<const float> want) {
  double max_diff = 0, max_ref = 1e-6;
  for (size_t i = 0; i < want.size(); ++i) {
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(got[i] - want[i])));
    max_ref = std::max(max_ref, static_cast<double>(std::fabs(want[i])));
  }
  return max_diff / max_ref;
}

constexpr double kLogitTolerance = 2e-4;
constexpr double kPplRelTolerance = 1e-3;  // the 0.1 %

using Case = std::tuple<std::string, std::string>;  // fixture, scheme
class ForwardGoldenTest : public ::testing::TestWithParam<Case> {};

TEST_P(ForwardGoldenTest, LogitsAndPerplexityMatchTransformers) {
  const auto& [fixture, scheme] = GetParam();
  const std::filesystem::path dir = data_dir() / fixture;
  const std::string key = scheme == "none" ? "bf16" : scheme;  // the goldens' name for unquantized
  const nlohmann::json golden = read_json(dir / "golden" / "golden.json");
  ASSERT_FALSE(golden.is_discarded());
  auto logits_file = open_safetensors(dir / "golden" / golden.at("logits_file").get<std::string>());
  ASSERT_TRUE(logits_file.ok()) << logits_file.status().to_string();

  EngineOptions options;
  options.quant = scheme;
  options.threads = 2;
  auto engine = Engine::load(dir, options);
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  const int64_t vocab = golden.at("vocab_size").get<int64_t>();
  ASSERT_EQ((*engine)->config().vocab_size, vocab);

  // Last-position logits of each prompt.
  std::vector<float> want_last = golden_tensor(**logits_file, key + ".last");
  ASSERT_EQ(want_last.size(), golden.at("prompts_last").size() * static_cast<size_t>(vocab));
  const auto& prompts = golden.at("prompts_last");
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<int32_t> ids = ids_of(prompts[i]);
    EXPECT_EQ((*engine)->tokenize(prompts[i].at("text").get<std::string>()).value(), ids) << "tokenizer";
    auto got = (*engine)->logits(ids, false);
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    std::span<const float> want(want_last.data() + i * static_cast<size_t>(vocab), static_cast<size_t>(vocab));
    EXPECT_LT(normalized_error(*got, want), kLogitTolerance) << "prompt " << prompts[i].at("text");
  }
  // Logits at every position of one prompt (exercises the causal mask and RoPE positions).
  std::vector<float> want_all = golden_tensor(**logits_file, key + ".all");
  auto got_all = (*engine)->logits(ids_of(golden.at("prompt_all")), true);
  ASSERT_TRUE(got_all.ok()) << got_all.status().to_string();
  ASSERT_EQ(got_all->size(), want_all.size());
  EXPECT_LT(normalized_error(*got_all, want_all), kLogitTolerance);

  // Perplexity of each string: one window over all its tokens.
  for (const auto& item : golden.at("results").at(key).at("strings")) {
    const auto& strings = golden.at("strings");
    auto it = std::find_if(strings.begin(), strings.end(), [&](const auto& s) { return s.at("text") == item.at("text"); });
    ASSERT_NE(it, strings.end());
    std::vector<int32_t> ids = ids_of(*it);
    auto ppl = (*engine)->perplexity(ids, static_cast<int64_t>(ids.size()), static_cast<int64_t>(ids.size()));
    ASSERT_TRUE(ppl.ok()) << ppl.status().to_string();
    EXPECT_EQ(ppl->tokens_scored, item.at("n_scored").get<int64_t>());
    const double want = item.at("ppl").get<double>();
    EXPECT_NEAR(ppl->perplexity, want, kPplRelTolerance * want) << item.at("text");
  }
  // Held-out perplexity (prose): non-overlapping windows.
  if (!golden.at("heldout").is_null()) {
    const auto& held = golden.at("heldout");
    const int64_t context = held.at("context").get<int64_t>();
    auto ppl = (*engine)->perplexity(ids_of(held), context, held.at("stride").get<int64_t>());
    ASSERT_TRUE(ppl.ok()) << ppl.status().to_string();
    const auto& want = golden.at("results").at(key).at("heldout");
    EXPECT_EQ(ppl->tokens_scored, want.at("n_scored").get<int64_t>());
    EXPECT_NEAR(ppl->perplexity, want.at("ppl").get<double>(), kPplRelTolerance * want.at("ppl").get<double>());
  }
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (const std::string& f : testing::golden_fixtures()) {
    for (const std::string& s : testing::all_schemes()) out.emplace_back(f, s);
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ForwardGoldenTest, ::testing::ValuesIn(cases()), [](const auto& param_info) {
  std::string name = std::get<0>(param_info.param) + "_" + std::get<1>(param_info.param);
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
});
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(ForwardGoldenTest);

}  // namespace
}  // namespace qswap
