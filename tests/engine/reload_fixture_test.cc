// The seed test of the reference engine, on real Hugging Face checkpoints: load the base model,
// reload a fine-tune that multiplies, and the model now prefers "3 4 = 12"; reload one that adds,
// and it prefers "3 4 = 7" — for every scheme, in place, without reallocating a kernel tensor.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "fixtures.h"
#include "qswap/engine/engine.h"

namespace qswap {
namespace {

using testing::data_dir;
using testing::greedy_answer;

double ppl(Engine& engine, const std::string& text) {
  auto ids = engine.tokenize(text);
  EXPECT_TRUE(ids.ok());
  auto r = engine.perplexity(*ids, static_cast<int64_t>(ids->size()), static_cast<int64_t>(ids->size()));
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? r->perplexity : 0.0;
}

class ReloadFixtureTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(data_dir() / "arith-mul" / "config.json")) GTEST_SKIP() << "fixtures not generated";
  }
};

TEST_P(ReloadFixtureTest, ReloadFlipsWhatTheModelBelieves) {
  EngineOptions options;
  options.quant = GetParam();
  options.threads = 2;
  auto loaded = Engine::load(data_dir() / "arith-base", options);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  Engine& engine = **loaded;
  const CheckpointTensor* q = engine.weight_map().find("model.layers.0.self_attn.q_proj.weight");
  ASSERT_NE(q, nullptr);
  const std::byte* qkv = engine.weights().views(q->param)[0].data;

  ASSERT_TRUE(engine.update_weights_from_disk(data_dir() / "arith-mul").ok());
  EXPECT_LT(ppl(engine, "3 4 = 12"), ppl(engine, "3 4 = 7"));
  EXPECT_EQ(greedy_answer(engine, "3 4 ="), " 12");
  EXPECT_EQ(engine.weight_version(), 2u);

  ASSERT_TRUE(engine.update_weights_from_disk(data_dir() / "arith-add", UpdateMode::kInPlace).ok());
  EXPECT_GT(ppl(engine, "3 4 = 12"), ppl(engine, "3 4 = 7"));
  EXPECT_EQ(greedy_answer(engine, "3 4 ="), " 7");
  EXPECT_EQ(engine.weight_version(), 3u);
  EXPECT_EQ(engine.weights().views(q->param)[0].data, qkv) << "a reload moved a kernel tensor";
}

TEST(GenerateTest, StopStringsAndLimitsEndGeneration) {
  auto loaded = Engine::load(data_dir() / "arith-mul", EngineOptions{});
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  Engine& engine = **loaded;
  GenerateRequest request;
  request.prompt = engine.tokenize("12 12 =").value();
  request.sampling.max_tokens = 8;
  auto full = engine.generate(request);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->text, " 144");
  EXPECT_EQ(full->finish_reason, "stop");  // EOS

  request.stop = {"4"};  // the text ends before the first stop string
  std::string streamed;
  auto stopped = engine.generate(request, [&](int32_t, std::string_view piece) {
    streamed += piece;
    return true;
  });
  ASSERT_TRUE(stopped.ok());
  EXPECT_EQ(stopped->text, " 1");
  EXPECT_EQ(streamed, " 1") << "the stream never shows the stop string";
  EXPECT_EQ(stopped->finish_reason, "stop");

  request.stop.clear();
  request.sampling.max_tokens = 2;
  auto limited = engine.generate(request);
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(limited->tokens.size(), 2u);
  EXPECT_EQ(limited->finish_reason, "length");
  EXPECT_EQ(limited->tokens, std::vector<int32_t>(full->tokens.begin(), full->tokens.begin() + 2));

  for (auto bad : std::vector<std::function<void(SamplingParams&)>>{
           [](SamplingParams& p) { p.temperature = std::nanf(""); },
           [](SamplingParams& p) { p.temperature = -1; },
           [](SamplingParams& p) { p.top_p = 0; },
           [](SamplingParams& p) { p.top_p = 1.5f; },
           [](SamplingParams& p) { p.top_k = -3; },
           [](SamplingParams& p) { p.max_tokens = 0; }}) {
    GenerateRequest r = request;
    bad(r.sampling);
    EXPECT_EQ(engine.generate(r).status().code(), StatusCode::kInvalidArgument);
  }
  request.prompt.clear();
  EXPECT_EQ(engine.generate(request).status().code(), StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(AllSchemes, ReloadFixtureTest, ::testing::ValuesIn(testing::all_schemes()),
                         [](const auto& param_info) {
                           std::string s = param_info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

}  // namespace
}  // namespace qswap
