// POST /v1/completions against the engine's own generate(): text and token-id prompts, several
// prompts and choices, seeds, stop strings, logprobs, and the SSE stream.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>

#include "qswap/io/safetensors.h"
#include "test_server.h"

namespace qswap {
namespace {

using nlohmann::json;
using testing::greedy;
using testing::TestServer;

// Each event's JSON, in order; *done: the stream ended with "data: [DONE]".
std::vector<json> parse_sse(const std::string& body, bool* done) {
  std::vector<json> events;
  *done = false;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find("\n\n", pos);
    EXPECT_NE(end, std::string::npos) << "unterminated event at " << pos;
    if (end == std::string::npos) break;
    std::string event = body.substr(pos, end - pos);
    pos = end + 2;
    EXPECT_EQ(event.rfind("data: ", 0), 0u) << event;
    EXPECT_FALSE(*done) << "an event after [DONE]";
    std::string data = event.substr(6);
    if (data == "[DONE]") {
      *done = true;
      continue;
    }
    events.push_back(json::parse(data, nullptr, false));
    EXPECT_FALSE(events.back().is_discarded()) << data;
  }
  return events;
}

// The engine's own answer for the same request, from a second engine on the same checkpoint.
GenerateResult reference(const std::string& model, const std::vector<int32_t>& prompt, const SamplingParams& sampling,
                         const std::vector<std::string>& stop = {}) {
  EngineOptions options;
  options.threads = 2;
  auto engine = Engine::load(testing::data_dir() / model, options);
  EXPECT_TRUE(engine.ok());
  GenerateRequest request{prompt, sampling, stop, false};
  auto r = (*engine)->generate(request);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? *r : GenerateResult{};
}

TEST(CompletionTest, TextPromptAnswersInOpenAIShape) {
  TestServer s;
  ASSERT_TRUE(s.ok());
  testing::HttpReply r = s.post("/v1/completions", greedy("3 4 ="));
  ASSERT_EQ(r.status, 200) << r.body;
  const json& j = r.json;
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["model"], "test-model");
  EXPECT_EQ(j["id"].get<std::string>().rfind("cmpl-", 0), 0u);
  EXPECT_TRUE(j["created"].is_number_integer());
  EXPECT_EQ(j["weight_version"], 1);
  ASSERT_EQ(j["choices"].size(), 1u);
  const json& c = j["choices"][0];
  EXPECT_EQ(c["index"], 0);
  EXPECT_EQ(c["text"], " 12");  // arith-mul: 3 * 4
  EXPECT_EQ(c["finish_reason"], "stop");
  EXPECT_TRUE(c["logprobs"].is_null());
  EXPECT_EQ(c["weight_version"], 1);
  // "3 4 =" is 4 tokens with the arith tokenizer (one merge, "Ġ="); " 12" is 3 single bytes.
  EXPECT_EQ(j["usage"]["prompt_tokens"], 4);
  EXPECT_EQ(j["usage"]["completion_tokens"], 3);
  EXPECT_EQ(j["usage"]["total_tokens"], 7);
}

TEST(CompletionTest, TokenIdPromptsAndPromptLists) {
  TestServer s;
  ASSERT_TRUE(s.ok());
  const std::vector<int32_t> ids = s.engine().tokenize("3 4 =").value();
  testing::HttpReply r = s.post("/v1/completions", greedy(ids));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["choices"][0]["text"], " 12");

  // Several prompts, n each: choice index = prompt * n + sample.
  json body = greedy(json::array({"3 4 =", "2 5 ="}));
  body["n"] = 2;
  r = s.post("/v1/completions", body);
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(r.json["choices"].size(), 4u);
  const char* expected[] = {" 12", " 12", " 10", " 10"};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(r.json["choices"][i]["index"], i);
    EXPECT_EQ(r.json["choices"][i]["text"], expected[i]) << i;
  }
  EXPECT_EQ(r.json["usage"]["prompt_tokens"], 8);  // each prompt once

  const std::vector<int32_t> ids2 = s.engine().tokenize("6 7 =").value();
  r = s.post("/v1/completions", greedy(json::array({ids, ids2})));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["choices"][0]["text"], " 12");
  EXPECT_EQ(r.json["choices"][1]["text"], " 42");
}

TEST(CompletionTest, SeededSamplingIsReproducibleAndMatchesTheEngine) {
  TestServer s("arith-base");  // untrained: a flat distribution, so samples differ by seed
  ASSERT_TRUE(s.ok());
  json body = {{"prompt", "3 4 ="}, {"max_tokens", 6}, {"temperature", 1.0}, {"seed", 1234},
               {"n", 2},           {"ignore_eos", true}};
  testing::HttpReply a = s.post("/v1/completions", body);
  testing::HttpReply b = s.post("/v1/completions", body);
  ASSERT_EQ(a.status, 200) << a.body;
  ASSERT_EQ(b.status, 200) << b.body;
  EXPECT_EQ(a.json["choices"], b.json["choices"]);
  EXPECT_NE(a.json["choices"][0]["text"], a.json["choices"][1]["text"]) << "two samples of a flat distribution";
  // Choice k is the engine's sample with seed + k.
  SamplingParams sampling;
  sampling.max_tokens = 6;
  sampling.temperature = 1.0f;
  for (int k = 0; k < 2; ++k) {
    sampling.seed = 1234 + static_cast<uint64_t>(k);
    GenerateRequest request{s.engine().tokenize("3 4 =").value(), sampling, {}, true};
    auto ref = s.engine().generate(request);
    ASSERT_TRUE(ref.ok());
    EXPECT_EQ(a.json["choices"][k]["text"], ref->text) << k;
    EXPECT_EQ(a.json["choices"][k]["finish_reason"], "length");
  }
  body["seed"] = 99;
  testing::HttpReply c = s.post("/v1/completions", body);
  ASSERT_EQ(c.status, 200);
  EXPECT_NE(a.json["choices"][0]["text"], c.json["choices"][0]["text"]);
}

TEST(CompletionTest, StopStringsEndTheTextBeforeThem) {
  TestServer s;
  ASSERT_TRUE(s.ok());
  json body = greedy("12 12 =", 8);  // arith-mul answers " 144"
  body["stop"] = "4";
  testing::HttpReply r = s.post("/v1/completions", body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["choices"][0]["text"], " 1");
  EXPECT_EQ(r.json["choices"][0]["finish_reason"], "stop");

  body["stop"] = json::array({"x", "44"});
  r = s.post("/v1/completions", body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["choices"][0]["text"], " 1");

  body["stop"] = nullptr;
  body["max_tokens"] = 2;
  r = s.post("/v1/completions", body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["choices"][0]["text"], " 1");
  EXPECT_EQ(r.json["choices"][0]["finish_reason"], "length");
}

TEST(CompletionTest, LogprobsAreTheEnginesOwn) {
  TestServer s;
  ASSERT_TRUE(s.ok());
  json body = greedy("7 8 =", 6);
  body["logprobs"] = 2;
  testing::HttpReply r = s.post("/v1/completions", body);
  ASSERT_EQ(r.status, 200) << r.body;
  const json& c = r.json["choices"][0];
  EXPECT_EQ(c["text"], " 56");
  const json& lp = c["logprobs"];
  ASSERT_TRUE(lp.is_object()) << r.body;

  SamplingParams sampling;
  sampling.max_tokens = 6;
  sampling.top_logprobs = 2;
  const std::vector<int32_t> prompt = s.engine().tokenize("7 8 =").value();
  GenerateResult ref = reference("arith-mul", prompt, sampling);
  ASSERT_EQ(lp["tokens"].size(), ref.tokens.size());
  ASSERT_EQ(lp["token_logprobs"].size(), ref.tokens.size());
  ASSERT_EQ(lp["text_offset"].size(), ref.tokens.size());
  ASSERT_EQ(lp["top_logprobs"].size(), ref.tokens.size());
  double sum = 0;
  std::string joined;
  for (size_t i = 0; i < ref.tokens.size(); ++i) {
    const float logprob = lp["token_logprobs"][i].get<float>();
    EXPECT_EQ(logprob, ref.logprobs[i]) << i;
    sum += logprob;
    const std::string token = lp["tokens"][i];
    EXPECT_EQ(token, s.engine().tokenizer()->decode(std::vector<int32_t>{ref.tokens[i]})) << i;
    EXPECT_EQ(lp["text_offset"][i], joined.size()) << i;  // ASCII here: bytes are code points
    joined += token;
    ASSERT_TRUE(lp["top_logprobs"][i].is_object());
    ASSERT_TRUE(lp["top_logprobs"][i].contains(token)) << "the sampled token is among the top logprobs";
    EXPECT_EQ(lp["top_logprobs"][i][token].get<float>(), logprob);
    // Greedy: the sampled token is the most likely, so the 2 alternatives include it.
    ASSERT_EQ(lp["top_logprobs"][i].size(), 2u);
    for (const TokenLogprob& alt : ref.top_logprobs[i]) {
      const std::string alt_token = s.engine().tokenizer()->decode(std::vector<int32_t>{alt.token});
      EXPECT_EQ(lp["top_logprobs"][i][alt_token].get<float>(), alt.logprob) << i << " " << alt_token;
    }
  }
  EXPECT_EQ(joined, " 56");
  EXPECT_LE(sum, 0.0);
  EXPECT_GT(sum, -1.0) << "a trained model is confident about 7 * 8";
}

// The logprobs of " 99" after "11 9 =", from transformers' logits over "11 9 = 99" (golden.json's
// prompt_all, made by scripts/fixtures/make_fixtures.py).
TEST(CompletionTest, LogprobsMatchTransformers) {
  const std::filesystem::path golden_dir = testing::data_dir() / "arith-mul" / "golden";
  const json golden = json::parse(std::ifstream(golden_dir / "golden.json"), nullptr, false);
  ASSERT_FALSE(golden.is_discarded());
  ASSERT_EQ(golden["prompt_all"]["text"], "11 9 = 99");
  const std::vector<int32_t> ids = golden["prompt_all"]["ids"];
  const size_t prompt_len = 5, vocab = golden["vocab_size"];  // "11 9 =" is 5 tokens, then " 99"
  auto logits_file = open_safetensors(golden_dir / golden["logits_file"].get<std::string>());
  ASSERT_TRUE(logits_file.ok()) << logits_file.status().to_string();
  const TensorInfo* info = (*logits_file)->find("bf16.all");
  ASSERT_NE(info, nullptr);
  std::vector<float> logits(info->nbytes / sizeof(float));
  ASSERT_TRUE((*logits_file)->read(*info, 0, std::as_writable_bytes(std::span(logits))).ok());
  ASSERT_EQ(logits.size(), ids.size() * vocab);

  TestServer s;
  ASSERT_TRUE(s.ok());
  json body = greedy(std::vector<int32_t>(ids.begin(), ids.begin() + prompt_len), 5);
  body["logprobs"] = 5;
  testing::HttpReply r = s.post("/v1/completions", body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["choices"][0]["text"], " 99");
  const json& lp = r.json["choices"][0]["logprobs"];
  ASSERT_EQ(lp["token_logprobs"].size(), ids.size() - prompt_len);
  for (size_t t = prompt_len; t < ids.size(); ++t) {
    // log_softmax in double of the logits at position t - 1, which predict token t.
    const float* row = logits.data() + (t - 1) * vocab;
    const double max = *std::max_element(row, row + vocab);
    double sum = 0;
    for (size_t v = 0; v < vocab; ++v) sum += std::exp(row[v] - max);
    auto logprob = [&](size_t v) { return row[v] - max - std::log(sum); };
    EXPECT_NEAR(lp["token_logprobs"][t - prompt_len].get<double>(), logprob(ids[t]), 1e-4) << "token " << t;
    // The 5 most likely tokens (transformers' ranking) with their logprobs.
    std::vector<size_t> order(vocab);
    for (size_t v = 0; v < vocab; ++v) order[v] = v;
    std::partial_sort(order.begin(), order.begin() + 5, order.end(), [&](size_t a, size_t b) { return row[a] > row[b]; });
    const json& top = lp["top_logprobs"][t - prompt_len];
    ASSERT_EQ(top.size(), 5u) << top;
    for (size_t k = 0; k < 5; ++k) {
      const std::string token = s.engine().tokenizer()->decode(std::vector<int32_t>{static_cast<int32_t>(order[k])});
      ASSERT_TRUE(top.contains(token)) << "rank " << k << " '" << token << "' missing from " << top;
      EXPECT_NEAR(top[token].get<double>(), logprob(order[k]), 1e-3) << token;
    }
  }
}

TEST(CompletionTest, StreamReassemblesToTheJsonAnswer) {
  TestServer s;
  ASSERT_TRUE(s.ok());
  for (bool with_logprobs : {false, true}) {
    json body = greedy(json::array({"12 12 =", "9 9 ="}), 8);
    body["n"] = 2;
    body["stop"] = "44";  // " 144" streams as " 1" then nothing: "4" is held back, "44" cut
    if (with_logprobs) body["logprobs"] = 1;
    testing::HttpReply plain = s.post("/v1/completions", body);
    ASSERT_EQ(plain.status, 200) << plain.body;

    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
    testing::HttpReply streamed = s.post("/v1/completions", body);
    ASSERT_EQ(streamed.status, 200) << streamed.body;
    bool done = false;
    std::vector<json> events = parse_sse(streamed.body, &done);
    EXPECT_TRUE(done);
    std::map<int, std::string> text;
    std::map<int, std::string> finish;
    std::map<int, std::vector<float>> logprobs;
    json usage;
    for (const json& e : events) {
      EXPECT_EQ(e["object"], "text_completion");
      EXPECT_EQ(e["weight_version"], 1);
      if (e.contains("usage")) {
        EXPECT_TRUE(e["choices"].empty());
        usage = e["usage"];
        continue;
      }
      ASSERT_EQ(e["choices"].size(), 1u);
      const json& c = e["choices"][0];
      const int index = c["index"];
      EXPECT_TRUE(finish[index].empty()) << "a chunk after the choice finished";
      text[index] += c["text"].get<std::string>();
      if (!c["finish_reason"].is_null()) finish[index] = c["finish_reason"];
      if (!c["logprobs"].is_null()) {
        for (const json& l : c["logprobs"]["token_logprobs"]) logprobs[index].push_back(l.get<float>());
      }
    }
    ASSERT_EQ(text.size(), 4u);
    for (int i = 0; i < 4; ++i) {
      const json& c = plain.json["choices"][i];
      EXPECT_EQ(text[i], c["text"]) << i;
      EXPECT_EQ(finish[i], c["finish_reason"]) << i;
      if (with_logprobs) {
        EXPECT_EQ(logprobs[i], c["logprobs"]["token_logprobs"].get<std::vector<float>>()) << i;
      }
    }
    EXPECT_EQ(text[0], " 1");
    EXPECT_EQ(text[2], " 81");
    EXPECT_EQ(usage, plain.json["usage"]);
  }
}

TEST(CompletionTest, ModelsListsTheServedModel) {
  TestServer s;
  ASSERT_TRUE(s.ok());
  testing::HttpReply r = s.get("/v1/models");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["object"], "list");
  ASSERT_EQ(r.json["data"].size(), 1u);
  EXPECT_EQ(r.json["data"][0]["id"], "test-model");
  EXPECT_EQ(r.json["data"][0]["object"], "model");
  EXPECT_EQ(r.json["data"][0]["max_model_len"], 128);  // arith config.json
}

}  // namespace
}  // namespace qswap
