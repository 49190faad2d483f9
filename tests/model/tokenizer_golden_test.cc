// Data-driven comparison with Hugging Face `tokenizers`: every directory under tests/data that
// holds tokenizer.json and tokenizer_goldens.json (written by
// scripts/goldens/make_tokenizer_goldens.py) is one fixture.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qswap/model/tokenizer.h"
#include "qswap/model/unicode_text.h"

namespace qswap {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<std::string> fixture_dirs() {
  std::vector<std::string> dirs;
  const fs::path root = QSWAP_TEST_DATA_DIR;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it.depth() > 3) it.disable_recursion_pending();
    if (it->path().filename() == "tokenizer_goldens.json" &&
        fs::exists(it->path().parent_path() / "tokenizer.json")) {
      dirs.push_back(fs::relative(it->path().parent_path(), root).generic_string());
    }
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

std::string test_name(const testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

json read_json(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

// Where two id lists first differ, with the tokens there, for readable failures.
std::string first_difference(const Tokenizer& tok, const std::vector<int32_t>& got,
                             const std::vector<int32_t>& want) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  auto at = [&](const std::vector<int32_t>& v) {
    return i < v.size() ? fmt::format("{} '{}'", v[i], tok.token_text(v[i])) : std::string("end");
  };
  return fmt::format("first difference at index {}: got {}, want {} (sizes {} vs {})", i, at(got),
                     at(want), got.size(), want.size());
}

class TokenizerGoldenTest : public testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const fs::path dir = fs::path(QSWAP_TEST_DATA_DIR) / GetParam();
    auto tok = Tokenizer::load(dir / "tokenizer.json");
    ASSERT_TRUE(tok.ok()) << tok.status().to_string();
    tokenizer_.emplace(std::move(tok).value());
    golden_ = read_json(dir / "tokenizer_goldens.json");
  }

  // Every id list of the goldens with its expected decodes.
  struct DecodeCase {
    std::string name;
    std::vector<int32_t> ids;
    std::string decoded, decoded_skip_special;
  };
  std::vector<DecodeCase> decode_cases() const {
    std::vector<DecodeCase> cases;
    for (const json& c : golden_["cases"]) {
      cases.push_back({c["name"].get<std::string>(), c["ids"].get<std::vector<int32_t>>(),
                       c["decoded"].get<std::string>(),
                       c["decoded_skip_special"].get<std::string>()});
    }
    int n = 0;
    for (const json& c : golden_["decode_cases"]) {
      // Ids in the goldens are u32; those past int32 cannot be named by qswap's API.
      std::vector<int32_t> ids;
      for (const json& id : c["ids"]) {
        ids.push_back(static_cast<int32_t>(std::min<int64_t>(id.get<int64_t>(), INT32_MAX)));
      }
      cases.push_back({fmt::format("decode_cases[{}]", n++), ids, c["decoded"].get<std::string>(),
                       c["decoded_skip_special"].get<std::string>()});
    }
    return cases;
  }

  std::optional<Tokenizer> tokenizer_;
  json golden_;
};

TEST_P(TokenizerGoldenTest, Encode) {
  for (const json& c : golden_["cases"]) {
    const auto text = c["text"].get<std::string>();
    const auto want = c["ids"].get<std::vector<int32_t>>();
    const auto got = tokenizer_->encode(text);
    EXPECT_EQ(got, want) << c["name"] << ": " << first_difference(*tokenizer_, got, want);
  }
}

// The pre-tokenizer's words, compared with `tokenizers`' pre_tokenize_str: checks the regex
// translation to PCRE2 independently of whether the merges happen to hide a difference.
TEST_P(TokenizerGoldenTest, PreTokenize) {
  for (const json& c : golden_["cases"]) {
    const auto text = c["text"].get<std::string>();
    EXPECT_EQ(tokenizer_->pre_tokenize(text), c["words"].get<std::vector<std::string>>())
        << c["name"];
  }
}

TEST_P(TokenizerGoldenTest, EncodeWithSpecialTokens) {
  for (const json& c : golden_["cases"]) {
    const auto text = c["text"].get<std::string>();
    const auto want = c["ids_with_special"].get<std::vector<int32_t>>();
    const auto got = tokenizer_->encode(text, /*add_special_tokens=*/true);
    EXPECT_EQ(got, want) << c["name"] << ": " << first_difference(*tokenizer_, got, want);
  }
}

TEST_P(TokenizerGoldenTest, Decode) {
  for (const DecodeCase& c : decode_cases()) {
    EXPECT_EQ(tokenizer_->decode(c.ids), c.decoded) << c.name;
    EXPECT_EQ(tokenizer_->decode(c.ids, /*skip_special_tokens=*/true), c.decoded_skip_special)
        << c.name;
  }
}

TEST_P(TokenizerGoldenTest, StreamingDecodeEqualsDecode) {
  for (const DecodeCase& c : decode_cases()) {
    for (bool skip : {false, true}) {
      StreamingDecoder stream(*tokenizer_, skip);
      std::string all;
      for (size_t i = 0; i < c.ids.size(); ++i) {
        const std::string piece = stream.push(c.ids[i]);
        EXPECT_TRUE(utf8_is_valid(piece)) << c.name << ": push #" << i << " emitted bad UTF-8";
        all += piece;
      }
      const std::string rest = stream.flush();
      EXPECT_TRUE(utf8_is_valid(rest)) << c.name;
      all += rest;
      EXPECT_EQ(all, skip ? c.decoded_skip_special : c.decoded) << c.name << " skip=" << skip;
    }
  }
}

TEST_P(TokenizerGoldenTest, VocabularyAndSpecialIds) {
  EXPECT_EQ(tokenizer_->vocab_size(), golden_["vocab_size"].get<int32_t>());
  for (const char* key : {"bos_id", "eos_id"}) {
    if (!golden_.contains(key)) continue;
    const auto got = std::string(key) == "bos_id" ? tokenizer_->bos_id() : tokenizer_->eos_id();
    if (golden_[key].is_null()) {
      EXPECT_FALSE(got.has_value()) << key;
    } else {
      EXPECT_EQ(got, std::optional<int32_t>(golden_[key].get<int32_t>())) << key;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TokenizerGoldenTest, testing::ValuesIn(fixture_dirs()),
                         test_name);

}  // namespace
}  // namespace qswap
