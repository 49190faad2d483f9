// The engine's contract with concurrent front ends (HTTP server, stream listener, Python): one
// update at a time, requests see whole versions, in-place updates can be waited out, and a steady
// stream of requests cannot starve a transactional commit.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "fixtures.h"
#include "qswap/engine/engine.h"
#include "qswap/io/safetensors_source.h"

namespace qswap {
namespace {

using namespace std::chrono_literals;
using testing::data_dir;

class EngineConcurrencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(data_dir() / "arith-mul" / "config.json")) GTEST_SKIP() << "fixtures not generated";
    EngineOptions options;
    options.quant = "fp8";
    options.threads = 1;
    auto engine = Engine::load(data_dir() / "arith-mul", options);
    ASSERT_TRUE(engine.ok()) << engine.status().to_string();
    engine_ = std::move(engine).value();
    auto source = open_safetensors_dir(data_dir() / "arith-add");
    ASSERT_TRUE(source.ok()) << source.status().to_string();
    add_ = std::move(source).value();
  }

  GenerateRequest request(const std::string& prompt) const {
    GenerateRequest r;
    r.prompt = engine_->tokenize(prompt).value();
    r.sampling.max_tokens = 3;
    return r;
  }

  // Adds every tensor of arith-add to `update`.
  void feed(WeightUpdate& update) const {
    for (const TensorInfo& t : add_->tensors()) {
      auto bytes = add_->borrow(t);
      ASSERT_TRUE(bytes.ok());
      ASSERT_TRUE(update.add(IncomingTensor{t.name, t.dtype, t.shape, *bytes}).ok());
    }
  }

  std::unique_ptr<Engine> engine_;
  std::unique_ptr<TensorSource> add_;
};

TEST_F(EngineConcurrencyTest, OnlyOneUpdateRunsAtATime) {
  auto first = engine_->begin_update(UpdateMode::kTransactional);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(engine_->update_in_progress());
  auto second = engine_->begin_update(UpdateMode::kTransactional);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("another weight update"), std::string::npos);
  first->reset();  // abandoned: aborts
  EXPECT_FALSE(engine_->update_in_progress());
  EXPECT_TRUE(engine_->begin_update(UpdateMode::kTransactional).ok());
}

TEST_F(EngineConcurrencyTest, WaitUntilServableHoldsRequestsDuringAnInPlaceUpdate) {
  const uint64_t before = engine_->weight_version();
  EXPECT_TRUE(engine_->wait_until_servable(0ms).ok());
  auto update = engine_->begin_update(UpdateMode::kInPlace);
  ASSERT_TRUE(update.ok());
  EXPECT_EQ(engine_->check_servable().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(engine_->wait_until_servable(20ms).code(), StatusCode::kUnavailable);

  // A request that waits is served by the complete new weights once the update commits.
  auto waiter = std::async(std::launch::async, [&] {
    Status ready = engine_->wait_until_servable(30s);
    if (!ready.ok()) return std::make_pair(ready, std::string());
    auto r = engine_->generate(request("3 4 ="));
    return std::make_pair(r.status(), r.ok() ? r->text + "@" + std::to_string(r->weight_version) : "");
  });
  EXPECT_EQ(waiter.wait_for(50ms), std::future_status::timeout);  // still held
  feed(**update);
  ASSERT_TRUE((*update)->commit().ok());
  auto [status, answer] = waiter.get();
  ASSERT_TRUE(status.ok()) << status.to_string();
  EXPECT_EQ(answer, " 7@" + std::to_string(before + 1));
}

TEST_F(EngineConcurrencyTest, AFailedInPlaceUpdateEndsTheWaitWithItsError) {
  auto update = engine_->begin_update(UpdateMode::kInPlace);
  ASSERT_TRUE(update.ok());
  auto waiter = std::async(std::launch::async, [&] { return engine_->wait_until_servable(30s); });
  (*update)->abort(data_loss("sender went away"));
  Status s = waiter.get();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("sender went away"), std::string::npos) << s.message();
}

TEST_F(EngineConcurrencyTest, RequestsDuringATransactionalUpdateSeeOneWholeVersion) {
  const uint64_t old_version = engine_->weight_version();
  std::atomic<bool> done{false};
  std::atomic<int> served{0}, wrong{0};
  auto reader = [&] {
    while (!done) {
      auto r = engine_->generate(request("3 4 ="));
      if (!r.ok()) {
        ++wrong;
        continue;
      }
      ++served;
      const bool old_ok = r->weight_version == old_version && r->text == " 12";
      const bool new_ok = r->weight_version == old_version + 1 && r->text == " 7";
      if (!old_ok && !new_ok) ++wrong;
    }
  };
  std::thread a(reader), b(reader);
  while (served < 4) std::this_thread::sleep_for(1ms);
  // Two readers keep the shared lock busy; the commit must still get through.
  auto update = engine_->begin_update(UpdateMode::kTransactional);
  ASSERT_TRUE(update.ok());
  feed(**update);
  auto stats = (*update)->commit();
  ASSERT_TRUE(stats.ok()) << stats.status().to_string();
  const int at_commit = served;
  while (served < at_commit + 4) std::this_thread::sleep_for(1ms);
  done = true;
  a.join();
  b.join();
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(engine_->weight_version(), old_version + 1);
  ASSERT_TRUE(engine_->last_update().has_value());
  EXPECT_EQ(engine_->last_update()->version, old_version + 1);
}

TEST_F(EngineConcurrencyTest, TopLogprobsComeWithEveryGeneratedToken) {
  GenerateRequest r = request("3 4 =");
  r.sampling.top_logprobs = 3;
  auto result = engine_->generate(r);
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  ASSERT_EQ(result->top_logprobs.size(), result->tokens.size());
  for (size_t i = 0; i < result->tokens.size(); ++i) {
    ASSERT_EQ(result->top_logprobs[i].size(), 3u);
    // Greedy: the sampled token is the most likely one, with the same logprob.
    EXPECT_EQ(result->top_logprobs[i][0].token, result->tokens[i]);
    EXPECT_FLOAT_EQ(result->top_logprobs[i][0].logprob, result->logprobs[i]);
    EXPECT_GE(result->top_logprobs[i][0].logprob, result->top_logprobs[i][1].logprob);
    EXPECT_GE(result->top_logprobs[i][1].logprob, result->top_logprobs[i][2].logprob);
  }
  r.sampling.top_logprobs = 21;
  EXPECT_EQ(engine_->generate(r).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qswap
