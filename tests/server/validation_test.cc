// Every malformed completion request is a 400 in OpenAI's error shape naming the field at fault;
// unknown paths are 404. The server keeps answering afterwards.
#include <gtest/gtest.h>

#include "test_server.h"

namespace qswap {
namespace {

using nlohmann::json;
using testing::TestServer;

struct BadRequest {
  std::string body;   // JSON text (or not)
  std::string param;  // expected error.param; empty: null
  std::string says;   // a phrase the message must contain
};

std::vector<int32_t> ids_of_length(size_t n) { return std::vector<int32_t>(n, 49); }  // '1' in the arith vocab

std::vector<BadRequest> bad_requests() {
  const json base = {{"prompt", "3 4 ="}, {"max_tokens", 4}};
  auto with = [&](const std::string& key, const json& value) {
    json b = base;
    b[key] = value;
    return b.dump();
  };
  return {
      {"{", "", "not valid JSON"},
      {"[1, 2]", "", "must be a JSON object"},
      {"{}", "prompt", "'prompt' is required"},
      {with("model", 3), "model", "'model' must be a string"},
      {with("prompt", ""), "prompt", "prompt is empty"},
      {with("prompt", json::array()), "prompt", "prompt is empty"},
      {with("prompt", json::array({json::array()})), "prompt", "prompt[0] is empty"},
      {with("prompt", 5), "prompt", "'prompt' must be a string"},
      {with("prompt", json::array({1, "a"})), "prompt", "prompt[1] must be a token id"},
      {with("prompt", json::array({"3 4 =", json::array({1})})), "prompt", "prompt[1] is an array"},
      {with("prompt", json::array({"3 4 =", ""})), "prompt", "prompt[1] is empty"},
      {with("prompt", json::array({320})), "prompt", "token id 320 is outside the vocabulary [0, 320)"},
      {with("prompt", json::array({-1})), "prompt", "token id -1 is outside the vocabulary"},
      {with("prompt", json::array({json::array({1}), json::array({1, 2, 9999})})), "prompt",
       "prompt[1][2]: token id 9999"},
      {with("prompt", ids_of_length(128)), "prompt", "has 128 tokens, but the model's context is 128"},
      {with("max_tokens", "4"), "max_tokens", "'max_tokens' must be an integer, got a string"},
      {with("max_tokens", 0), "max_tokens", "'max_tokens' must be in [1,"},
      {with("max_tokens", 101), "max_tokens", "more than this server's limit of 100"},
      {json({{"prompt", ids_of_length(40)}, {"max_tokens", 100}}).dump(), "max_tokens",
       "context is 128 tokens, but the prompt has 40 tokens and max_tokens is 100"},
      {with("temperature", -0.5), "temperature", "'temperature' must be in [0, 2]"},
      {with("temperature", 2.5), "temperature", "'temperature' must be in [0, 2]"},
      {with("temperature", "hot"), "temperature", "'temperature' must be a number"},
      {with("top_p", 0), "top_p", "'top_p' must be in (0, 1]"},
      {with("top_p", 1.5), "top_p", "'top_p' must be in (0, 1]"},
      {with("top_k", -2), "top_k", "'top_k' must be in [-1,"},
      {with("top_k", 1.5), "top_k", "'top_k' must be an integer"},
      {with("n", 0), "n", "'n' must be in [1, 128]"},
      {with("n", 129), "n", "'n' must be in [1, 128]"},
      {with("n", "2"), "n", "'n' must be an integer"},
      {json({{"prompt", json::array({"1 1 =", "1 2 =", "1 3 ="})}, {"n", 50}}).dump(), "n", "at most 128"},
      {with("seed", "x"), "seed", "'seed' must be an integer"},
      {with("seed", 1.5), "seed", "'seed' must be an integer"},
      {with("stop", json::array({"a", "b", "c", "d", "e"})), "stop", "at most 4"},
      {with("stop", json::array({""})), "stop", "'stop[0]' is an empty string"},
      {with("stop", ""), "stop", "'stop' is an empty string"},
      {with("stop", json::array({1})), "stop[0]", "'stop[0]' must be a string"},
      {with("stop", 3), "stop", "'stop' must be a string or a list of strings"},
      {with("logprobs", 6), "logprobs", "'logprobs' must be in [0, 5]"},
      {with("logprobs", -1), "logprobs", "'logprobs' must be in [0, 5]"},
      {with("logprobs", true), "logprobs", "'logprobs' must be an integer, got a boolean"},
      {with("echo", true), "echo", "'echo' is not supported"},
      {with("echo", "no"), "echo", "'echo' must be a boolean"},
      {with("stream", "yes"), "stream", "'stream' must be a boolean"},
      {with("stream_options", {{"include_usage", true}}), "stream_options", "only allowed with \"stream\": true"},
      {with("ignore_eos", 1), "ignore_eos", "'ignore_eos' must be a boolean"},
      {with("max_token", 4), "max_token", "unrecognized request argument supplied: 'max_token'"},
      {with("suffix", "x"), "suffix", "'suffix' is not supported"},
      {with("presence_penalty", 0.5), "presence_penalty", "'presence_penalty' is not supported"},
      {with("logit_bias", {{"1", 5}}), "logit_bias", "'logit_bias' is not supported"},
      {with("best_of", 3), "best_of", "'best_of' is not supported"},
  };
}

TEST(ValidationTest, EveryBadRequestIs400NamingTheField) {
  server::ServerOptions options;
  options.max_tokens_limit = 100;
  TestServer s("arith-mul", options);
  ASSERT_TRUE(s.ok());
  for (const BadRequest& bad : bad_requests()) {
    SCOPED_TRACE(bad.body);
    testing::HttpReply r = s.post("/v1/completions", bad.body);
    ASSERT_EQ(r.status, 400) << r.body;
    ASSERT_TRUE(r.json.is_object()) << r.body;
    const json& e = r.json["error"];
    EXPECT_EQ(e["type"], "invalid_request_error");
    if (bad.param.empty()) {
      EXPECT_TRUE(e["param"].is_null()) << r.body;
    } else {
      EXPECT_EQ(e["param"], bad.param) << r.body;
    }
    EXPECT_NE(e["message"].get<std::string>().find(bad.says), std::string::npos) << r.body;
    EXPECT_TRUE(e.contains("code"));
  }
  // Still serving, and the neutral values of unsupported parameters are accepted.
  json ok = testing::greedy("3 4 =");
  ok["echo"] = false;
  ok["presence_penalty"] = 0;
  ok["logit_bias"] = json::object();
  ok["best_of"] = 1;
  ok["user"] = "someone";
  ok["top_k"] = -1;
  ok["logprobs"] = nullptr;
  ok["max_tokens"] = 100;  // the limit itself is fine
  testing::HttpReply r = s.post("/v1/completions", ok);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["choices"][0]["text"], " 12");
}

TEST(ValidationTest, UnknownPathsAndMethodsAre404) {
  TestServer s;
  ASSERT_TRUE(s.ok());
  testing::HttpReply r = s.get("/v1/chat/nothing");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.json["error"]["type"], "not_found_error") << r.body;
  EXPECT_NE(r.body.find("/v1/chat/nothing"), std::string::npos);
  r = s.get("/v1/completions");
  EXPECT_EQ(r.status, 404) << r.body;
}

TEST(ValidationTest, NullMaxTokensFillsTheContext) {
  TestServer s;
  ASSERT_TRUE(s.ok());
  json body = {{"prompt", "3 4 ="}, {"max_tokens", nullptr}, {"temperature", 0}, {"ignore_eos", true}};
  testing::HttpReply r = s.post("/v1/completions", body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["usage"]["completion_tokens"], 128 - 4);
  EXPECT_EQ(r.json["choices"][0]["finish_reason"], "length");
}

TEST(ValidationTest, AnEngineWithoutWeightsIs503) {
  auto config = load_model_config(testing::data_dir() / "arith-mul");
  ASSERT_TRUE(config.ok());
  auto engine = Engine::create(*config, EngineOptions{});
  ASSERT_TRUE(engine.ok());
  TestServer s(std::move(engine).value(), server::ServerOptions{});
  ASSERT_TRUE(s.ok());
  testing::HttpReply health = s.get("/health");
  EXPECT_EQ(health.status, 503);
  EXPECT_NE(health.json["reason"].get<std::string>().find("no weights"), std::string::npos) << health.body;
  // No tokenizer either: text prompts are refused, token ids reach the engine, which refuses.
  testing::HttpReply text = s.post("/v1/completions", testing::greedy("3 4 ="));
  EXPECT_EQ(text.status, 400) << text.body;
  EXPECT_NE(text.body.find("send token ids"), std::string::npos) << text.body;
  testing::HttpReply ids = s.post("/v1/completions", testing::greedy(json::array({1, 2, 3})));
  EXPECT_EQ(ids.status, 503) << ids.body;
  EXPECT_NE(ids.body.find("no weights"), std::string::npos) << ids.body;
  json stream = testing::greedy(json::array({1, 2, 3}));
  stream["stream"] = true;
  testing::HttpReply streamed = s.post("/v1/completions", stream);
  EXPECT_EQ(streamed.status, 503) << "refused before the stream starts: " << streamed.body;
  EXPECT_EQ(streamed.json["error"]["type"], "service_unavailable_error") << streamed.body;
}

}  // namespace
}  // namespace qswap
