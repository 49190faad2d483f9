#include "qswap/model/tokenizer.h"

#include <gtest/gtest.h>

#include <climits>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "qswap/base/mapped_file.h"
#include "qswap/model/unicode_text.h"

namespace qswap {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kData = fs::path(QSWAP_TEST_DATA_DIR) / "tokenizer";

Tokenizer load_fixture(const std::string& name) {
  auto tok = Tokenizer::load(kData / name / "tokenizer.json");
  EXPECT_TRUE(tok.ok()) << tok.status().to_string();
  return std::move(tok).value();
}

// A small valid byte-level tokenizer.json, mutated by the error tests.
json minimal_json() {
  return json::parse(R"({
    "added_tokens": [{"id": 4, "content": "<eos>", "special": true, "normalized": false}],
    "normalizer": null,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
    "post_processor": null,
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "\u0120": 3}, "merges": ["a b"]}
  })");
}

Status load_error_text(std::string_view text, std::string_view config = {}) {
  auto tok = Tokenizer::from_json(text, config);
  return tok.ok() ? Status() : tok.status();
}

Status load_error(const json& j, std::string_view config = {}) {
  return load_error_text(j.dump(), config);
}

// --- decoding --------------------------------------------------------------------------------

// The single-byte tokens spelling `bytes` (GPT-2 byte-level alphabet).
std::vector<int32_t> byte_tokens(const Tokenizer& tok, std::string_view bytes) {
  std::vector<int32_t> ids;
  for (char c : bytes) {
    std::string spelled(ByteLevelTable::get().encode(static_cast<uint8_t>(c)));
    const auto id = tok.token_id(spelled);
    EXPECT_TRUE(id.has_value()) << "no token for byte " << static_cast<int>(c);
    ids.push_back(id.value_or(0));
  }
  return ids;
}

TEST(StreamingDecoderTest, HoldsBackAPartialCodePointUntilComplete) {
  const Tokenizer tok = load_fixture("gpt2-style");
  const std::string emoji = "\xF0\x9F\x98\x80";
  const auto ids = byte_tokens(tok, "a" + emoji + "b");
  StreamingDecoder stream(tok);
  EXPECT_EQ(stream.push(ids[0]), "a");
  EXPECT_EQ(stream.push(ids[1]), "");
  EXPECT_EQ(stream.push(ids[2]), "");
  EXPECT_EQ(stream.push(ids[3]), "");
  EXPECT_EQ(stream.push(ids[4]), emoji);
  EXPECT_EQ(stream.push(ids[5]), "b");
  EXPECT_EQ(stream.flush(), "");
}

TEST(StreamingDecoderTest, FlushReplacesAnUnfinishedSequence) {
  const Tokenizer tok = load_fixture("gpt2-style");
  StreamingDecoder stream(tok);
  for (int32_t id : byte_tokens(tok, "x\xE4\xB8")) stream.push(id);
  EXPECT_EQ(stream.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(stream.flush(), "");  // empty again
  EXPECT_EQ(stream.push(byte_tokens(tok, "z")[0]), "z");
}

TEST(StreamingDecoderTest, SkipsUnknownIdsAndOptionallySpecialTokens) {
  const Tokenizer tok = load_fixture("qwen2-style");
  const int32_t im_end = tok.token_id("<|im_end|>").value();
  StreamingDecoder keep(tok);
  EXPECT_EQ(keep.push(-1), "");
  EXPECT_EQ(keep.push(tok.vocab_size()), "");
  EXPECT_EQ(keep.push(INT32_MAX), "");
  EXPECT_EQ(keep.push(im_end), "<|im_end|>");
  StreamingDecoder skip(tok, /*skip_special_tokens=*/true);
  EXPECT_EQ(skip.push(im_end), "");
}

TEST(TokenizerTest, DecodeSkipsIdsThatNameNoToken) {
  const Tokenizer tok = load_fixture("llama3-style");
  const auto ab = tok.encode("ab");
  std::vector<int32_t> ids{-7, tok.vocab_size(), INT32_MIN};
  ids.insert(ids.end(), ab.begin(), ab.end());
  ids.push_back(INT32_MAX);
  EXPECT_EQ(tok.decode(ids), "ab");
  EXPECT_EQ(tok.token_text(-1), "");
  EXPECT_EQ(tok.token_text(tok.vocab_size()), "");
  EXPECT_FALSE(tok.is_special(-1));
}

// --- encoding --------------------------------------------------------------------------------

TEST(TokenizerTest, InvalidUtf8IsEncodedAsReplacementCharacters) {
  const Tokenizer tok = load_fixture("qwen2-style");
  const auto repaired = tok.encode("\xEF\xBF\xBD\xEF\xBF\xBD" "abc \xEF\xBF\xBD");
  EXPECT_EQ(tok.encode("\xFF\xC0" "abc \xF0\x9F"), repaired);
  EXPECT_EQ(tok.decode(repaired), "\xEF\xBF\xBD\xEF\xBF\xBD" "abc \xEF\xBF\xBD");
}

// Expected pieces: `tokenizers` 0.23.3, pre_tokenizers.Split("-", behavior, invert)
// .pre_tokenize_str("the-final--countdown-").
TEST(TokenizerTest, SplitBehaviorsMatchHuggingFace) {
  struct Case {
    const char* behavior;
    bool invert;
    std::vector<std::string> want;
  };
  const std::vector<Case> cases{
      {"Removed", false, {"the", "final", "countdown"}},
      {"Removed", true, {"-", "-", "-", "-"}},
      {"Isolated", false, {"the", "-", "final", "-", "-", "countdown", "-"}},
      {"MergedWithPrevious", false, {"the-", "final-", "-", "countdown-"}},
      {"MergedWithPrevious", true, {"the", "-final", "-", "-countdown", "-"}},
      {"MergedWithNext", false, {"the", "-final", "-", "-countdown", "-"}},
      {"MergedWithNext", true, {"the-", "final-", "-", "countdown-"}},
      {"Contiguous", false, {"the", "-", "final", "--", "countdown", "-"}},
  };
  for (const Case& c : cases) {
    json j = minimal_json();
    j["pre_tokenizer"] = {{"type", "Split"},
                          {"pattern", {{"String", "-"}}},
                          {"behavior", c.behavior},
                          {"invert", c.invert}};
    auto tok = Tokenizer::from_json(j.dump());
    ASSERT_TRUE(tok.ok()) << tok.status().to_string();
    EXPECT_EQ(tok->pre_tokenize("the-final--countdown-"), c.want)
        << c.behavior << " invert=" << c.invert;
  }
}

// Expected ids: `tokenizers` 0.23.3 with models.BPE({'a':0,'b':1,'<unk>':2,'ab':3}, [('a','b')],
// unk_token=..., fuse_unk=...).encode("axxbab").
TEST(TokenizerTest, UnknownCharactersFollowUnkTokenOptions) {
  json j = minimal_json();
  j["pre_tokenizer"] = nullptr;
  j["added_tokens"] = json::array();
  j["model"]["vocab"] = {{"a", 0}, {"b", 1}, {"<unk>", 2}, {"ab", 3}};
  auto none = Tokenizer::from_json(j.dump());
  ASSERT_TRUE(none.ok()) << none.status().to_string();
  EXPECT_EQ(none->encode("axxbab"), (std::vector<int32_t>{3, 3}));
  j["model"]["unk_token"] = "<unk>";
  auto unk = Tokenizer::from_json(j.dump());
  ASSERT_TRUE(unk.ok()) << unk.status().to_string();
  EXPECT_EQ(unk->encode("axxbab"), (std::vector<int32_t>{0, 2, 2, 1, 3}));
  j["model"]["fuse_unk"] = true;
  auto fused = Tokenizer::from_json(j.dump());
  ASSERT_TRUE(fused.ok()) << fused.status().to_string();
  EXPECT_EQ(fused->encode("axxbab"), (std::vector<int32_t>{0, 2, 1, 3}));
}

// Long words must not make the merge loop quadratic (a 64K-letter word would then cost ~4e9
// steps), and large texts must stay fast; no timing is asserted. Sized for ASan builds.
TEST(TokenizerTest, LongInputsRoundTrip) {
  const Tokenizer tok = load_fixture("llama3-style");  // no normalizer, no prefix space
  std::string text;
  text += std::string(1 << 16, 'a') + " " + std::string(1 << 15, ' ') + "x\n";
  const std::string sentence =
      "The quick brown fox, 12345 caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80!\n\t";
  while (text.size() < (1u << 18)) text += sentence;
  const auto ids = tok.encode(text);
  EXPECT_GT(ids.size(), 20000u);
  EXPECT_EQ(tok.decode(ids), text);
}

TEST(TokenizerTest, ConcurrentEncodesAgree) {
  const Tokenizer tok = load_fixture("qwen2-style");
  std::string text;
  for (int i = 0; i < 200; ++i) text += "word" + std::to_string(i % 37) + " caf\xC3\xA9\n";
  const auto want = tok.encode(text);
  std::vector<std::vector<int32_t>> got(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t) {
    threads.emplace_back([&, t] { got[t] = tok.encode(text); });
  }
  for (auto& th : threads) th.join();
  for (const auto& g : got) EXPECT_EQ(g, want);
}

// Arbitrary bytes in, arbitrary ids out: never a crash (run under ASan/UBSan in CI).
TEST(TokenizerTest, RandomInputNeverCrashes) {
  const Tokenizer tok = load_fixture("qwen2-style");
  std::mt19937 rng(42);
  for (int round = 0; round < 200; ++round) {
    std::string text(rng() % 64, '\0');
    for (char& c : text) c = static_cast<char>(rng() % 4 == 0 ? '<' + rng() % 64 : rng());
    const auto ids = tok.encode(text, round % 2 == 0);
    EXPECT_TRUE(utf8_is_valid(tok.decode(ids)));
    std::vector<int32_t> random_ids(rng() % 16);
    for (int32_t& id : random_ids) id = static_cast<int32_t>(rng() % 4000) - 1000;
    StreamingDecoder stream(tok);
    for (int32_t id : random_ids) EXPECT_TRUE(utf8_is_valid(stream.push(id)));
    EXPECT_TRUE(utf8_is_valid(stream.flush()));
  }
}

TEST(TokenizerTest, CorruptedJsonNeverCrashes) {
  auto text = read_text_file(kData / "gpt2-style" / "tokenizer.json");
  ASSERT_TRUE(text.ok());
  const std::string_view kJunk = "{}[]\":,09- ae\\\x01\xC3";
  std::mt19937 rng(7);
  int loaded = 0;
  for (int round = 0; round < 60; ++round) {
    std::string corrupt = *text;
    if (round % 3 == 0) corrupt.resize(1 + rng() % corrupt.size());
    for (int k = 0; k < 4; ++k) corrupt[rng() % corrupt.size()] = kJunk[rng() % kJunk.size()];
    auto tok = Tokenizer::from_json(corrupt);
    if (!tok.ok()) {
      EXPECT_EQ(tok.status().message().rfind("tokenizer.json: ", 0), 0u);
      continue;
    }
    ++loaded;  // a harmless mutation (inside a token string, say): must still work
    EXPECT_TRUE(utf8_is_valid(tok->decode(tok->encode("Hello <mask> world 123"))));
  }
  EXPECT_LT(loaded, 60);
}

// --- bos / eos -------------------------------------------------------------------------------

TEST(TokenizerTest, SpecialIdsWithoutConfigComeFromAddedTokens) {
  // gpt2-style has no tokenizer_config.json; <|endoftext|> was trained in as id 0.
  const Tokenizer gpt2 = load_fixture("gpt2-style");
  EXPECT_EQ(gpt2.eos_id(), std::optional<int32_t>(0));
  EXPECT_EQ(gpt2.bos_id(), std::nullopt);
  // The llama3-style template prepends <|begin_of_text|> (id 1501 in the fixture).
  auto text = read_text_file(kData / "llama3-style" / "tokenizer.json");
  ASSERT_TRUE(text.ok());
  auto llama = Tokenizer::from_json(*text);
  ASSERT_TRUE(llama.ok()) << llama.status().to_string();
  EXPECT_EQ(llama->bos_id(), std::optional<int32_t>(1501));
  EXPECT_EQ(llama->eos_id(), std::optional<int32_t>(1502));  // <|end_of_text|>
}

TEST(TokenizerTest, ConfigNamesSpecialTokens) {
  const json j = minimal_json();
  auto tok =
      Tokenizer::from_json(j.dump(), R"({"bos_token": {"content": "a"}, "eos_token": null})");
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  EXPECT_EQ(tok->bos_id(), std::optional<int32_t>(0));
  EXPECT_EQ(tok->eos_id(), std::nullopt);  // explicit null: no fallback to <eos>
  auto fallback = Tokenizer::from_json(j.dump(), R"({"model_max_length": 8})");
  ASSERT_TRUE(fallback.ok());
  EXPECT_EQ(fallback->eos_id(), std::optional<int32_t>(4));
}

TEST(TokenizerTest, ConfigErrorsNameTheConfigFile) {
  const Status s = load_error(minimal_json(), R"({"eos_token": "<|nope|>"})");
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(s.message(), "tokenizer_config.json: eos_token '<|nope|>' is not a token of "
                         "tokenizer.json");
  EXPECT_FALSE(load_error(minimal_json(), "{bad").ok());
  EXPECT_FALSE(load_error(minimal_json(), R"({"bos_token": 3})").ok());
}

// --- load errors -----------------------------------------------------------------------------

TEST(TokenizerTest, MinimalJsonLoads) {
  auto tok = Tokenizer::from_json(minimal_json().dump());
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  EXPECT_EQ(tok->encode("ab<eos>ba"), (std::vector<int32_t>{2, 4, 1, 0}));
  EXPECT_EQ(tok->vocab_size(), 5);
}

TEST(TokenizerTest, MissingFileIsAnIoError) {
  auto tok = Tokenizer::load("/nonexistent/dir/tokenizer.json");
  ASSERT_FALSE(tok.ok());
  EXPECT_NE(tok.status().message().find("/nonexistent/dir/tokenizer.json"), std::string::npos);
}

TEST(TokenizerTest, MalformedFilesNameTheKey) {
  struct Case {
    const char* what;
    std::function<void(json&)> mutate;
    StatusCode code;
    const char* message;
  };
  const std::vector<Case> cases{
      {"no model", [](json& j) { j.erase("model"); }, StatusCode::kDataLoss,
       "tokenizer.json: top level: missing key 'model'"},
      {"other model", [](json& j) { j["model"]["type"] = "Unigram"; },
       StatusCode::kUnimplemented, "tokenizer.json: model.type 'Unigram' is not supported"},
      {"vocab not object", [](json& j) { j["model"]["vocab"] = json::array(); },
       StatusCode::kDataLoss, "tokenizer.json: model.vocab: expected an object, got array"},
      {"negative id", [](json& j) { j["model"]["vocab"]["a"] = -1; }, StatusCode::kDataLoss,
       "tokenizer.json: model.vocab['a']: expected a token id"},
      {"huge id", [](json& j) { j["model"]["vocab"]["a"] = int64_t{1} << 40; },
       StatusCode::kDataLoss, "tokenizer.json: model.vocab['a']: expected a token id"},
      {"sparse ids", [](json& j) { j["model"]["vocab"]["a"] = 1000000; }, StatusCode::kDataLoss,
       "tokenizer.json: largest token id 1000000 is far beyond"},
      {"duplicate id", [](json& j) { j["model"]["vocab"]["b"] = 0; }, StatusCode::kDataLoss,
       "tokenizer.json: model.vocab: id 0 is given to both"},
      {"merge string", [](json& j) { j["model"]["merges"][0] = "ab"; }, StatusCode::kDataLoss,
       "tokenizer.json: model.merges[0]: expected \"left right\""},
      {"merge type", [](json& j) { j["model"]["merges"][0] = 7; }, StatusCode::kDataLoss,
       "tokenizer.json: model.merges[0]: expected"},
      {"merge unknown", [](json& j) { j["model"]["merges"][0] = json::array({"a", "zz"}); },
       StatusCode::kDataLoss, "tokenizer.json: model.merges[0] ('a' + 'zz'): right token"},
      {"merged unknown", [](json& j) { j["model"]["merges"][0] = "b a"; },
       StatusCode::kDataLoss, "tokenizer.json: model.merges[0] ('b' + 'a'): merged token"},
      {"byte fallback", [](json& j) { j["model"]["byte_fallback"] = true; },
       StatusCode::kUnimplemented, "tokenizer.json: model.byte_fallback"},
      {"unk missing", [](json& j) { j["model"]["unk_token"] = "<unk>"; }, StatusCode::kDataLoss,
       "tokenizer.json: model.unk_token '<unk>' is not in model.vocab"},
      {"flag type", [](json& j) { j["model"]["ignore_merges"] = "yes"; },
       StatusCode::kDataLoss, "tokenizer.json: model.ignore_merges: expected a boolean"},
      {"added no content", [](json& j) { j["added_tokens"][0].erase("content"); },
       StatusCode::kDataLoss, "tokenizer.json: added_tokens[0]: missing key 'content'"},
      {"normalizer", [](json& j) { j["normalizer"] = {{"type", "Lowercase"}}; },
       StatusCode::kUnimplemented, "tokenizer.json: normalizer.type 'Lowercase'"},
      {"nested normalizer",
       [](json& j) {
         j["normalizer"] = {{"type", "Sequence"},
                            {"normalizers", {{{"type", "NFC"}}, {{"type", "Strip"}}}}};
       },
       StatusCode::kUnimplemented, "tokenizer.json: normalizer.normalizers[1].type 'Strip'"},
      {"pre-tokenizer", [](json& j) { j["pre_tokenizer"] = {{"type", "Metaspace"}}; },
       StatusCode::kUnimplemented, "tokenizer.json: pre_tokenizer.type 'Metaspace'"},
      {"bad regex",
       [](json& j) {
         j["pre_tokenizer"] = {{"type", "Split"},
                               {"pattern", {{"Regex", "(oops"}}},
                               {"behavior", "Isolated"}};
       },
       StatusCode::kInvalidArgument, "tokenizer.json: pre_tokenizer.pattern.Regex: regex"},
      {"bad behavior",
       [](json& j) {
         j["pre_tokenizer"] = {{"type", "Split"},
                               {"pattern", {{"String", " "}}},
                               {"behavior", "Sideways"}};
       },
       StatusCode::kDataLoss, "tokenizer.json: pre_tokenizer.behavior 'Sideways'"},
      {"template",
       [](json& j) {
         j["post_processor"] = {{"type", "TemplateProcessing"},
                                {"single", {{{"SpecialToken", {{"id", "<s>"}}}}}},
                                {"special_tokens", json::object()}};
       },
       StatusCode::kDataLoss, "tokenizer.json: post_processor.single[0]: special token '<s>'"},
      {"post-processor", [](json& j) { j["post_processor"] = {{"type", "BertProcessing"}}; },
       StatusCode::kUnimplemented, "tokenizer.json: post_processor.type 'BertProcessing'"},
      {"no decoder", [](json& j) { j["decoder"] = nullptr; }, StatusCode::kUnimplemented,
       "tokenizer.json: decoder is null"},
      {"root type", [](json& j) { j = json::array(); }, StatusCode::kDataLoss,
       "tokenizer.json: expected a JSON object"},
  };
  for (const Case& c : cases) {
    json j = minimal_json();
    c.mutate(j);
    const Status s = load_error(j);
    EXPECT_EQ(s.code(), c.code) << c.what << ": " << s.to_string();
    EXPECT_EQ(s.message().rfind(c.message, 0), 0u) << c.what << ": " << s.to_string();
  }
  const Status not_json = load_error_text("{\"model\": ");
  EXPECT_EQ(not_json.code(), StatusCode::kDataLoss);
  EXPECT_EQ(not_json.message().rfind("tokenizer.json: not valid JSON", 0), 0u)
      << not_json.message();
}

}  // namespace
}  // namespace qswap
