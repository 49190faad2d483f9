#include "qswap/io/json_strict.h"

#include <gtest/gtest.h>

#include <string>

namespace qswap {
namespace {

std::string repeat(std::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

TEST(JsonStrictTest, ParsesOrdinaryJson) {
  Result<nlohmann::json> j = parse_json_strict(R"( {"a": [1, -2, 3.5, "x", null, true], "b": {"c": {}}} )");
  ASSERT_TRUE(j.ok()) << j.status().to_string();
  EXPECT_EQ((*j)["a"][0].get<int>(), 1);
  EXPECT_EQ((*j)["a"][1].get<int>(), -2);
  EXPECT_TRUE((*j)["a"][0].is_number_unsigned());
  EXPECT_FALSE((*j)["a"][1].is_number_unsigned());
  EXPECT_DOUBLE_EQ((*j)["a"][2].get<double>(), 3.5);
  EXPECT_EQ((*j)["a"][3].get<std::string>(), "x");
  EXPECT_TRUE((*j)["b"]["c"].is_object());
}

TEST(JsonStrictTest, SameKeyInDifferentObjectsIsFine) {
  Result<nlohmann::json> j = parse_json_strict(R"({"a": {"k": 1}, "b": {"k": 2}, "c": [{"k": 3}, {"k": 4}]})");
  ASSERT_TRUE(j.ok()) << j.status().to_string();
  EXPECT_EQ((*j)["c"][1]["k"].get<int>(), 4);
}

TEST(JsonStrictTest, RepeatedKeysAreErrorsWithTheirPath) {
  Result<nlohmann::json> top = parse_json_strict(R"({"a": 1, "b": 2, "a": 3})");
  ASSERT_FALSE(top.ok());
  EXPECT_EQ(top.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(top.status().message(), "duplicate key 'a'");

  Result<nlohmann::json> nested = parse_json_strict(R"({"t": {"dtype": "F32", "dtype": "F16"}})");
  ASSERT_FALSE(nested.ok());
  EXPECT_EQ(nested.status().message(), "duplicate key 'dtype' in '/t'");

  Result<nlohmann::json> in_array = parse_json_strict(R"({"x": [{"k": 1, "k": 1}]})");
  ASSERT_FALSE(in_array.ok());
  EXPECT_EQ(in_array.status().message(), "duplicate key 'k' in '/x/[]'");
}

TEST(JsonStrictTest, NestingIsBounded) {
  EXPECT_TRUE(parse_json_strict(repeat("[", 8) + repeat("]", 8), 8).ok());
  Result<nlohmann::json> deep = parse_json_strict(repeat("[", 9) + repeat("]", 9), 8);
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().message(), "JSON nested deeper than 8 levels");
  // A deep input far past the limit fails fast instead of building a huge DOM.
  EXPECT_FALSE(parse_json_strict(repeat("[", 1'000'000)).ok());
}

TEST(JsonStrictTest, RejectsWhatJsonRejects) {
  for (std::string_view bad : {"", " ", "{", "{} x", "{'a': 1}", "[1,]", "{\"a\" 1}", "nul", "{\"a\":\"\x01\"}",
                               "{\"\\ud800\": 1}", "01", "{} {}"}) {
    Result<nlohmann::json> j = parse_json_strict(bad);
    EXPECT_FALSE(j.ok()) << "accepted: " << bad;
    if (!j.ok()) {
      EXPECT_NE(j.status().message().find("invalid JSON"), std::string::npos) << j.status().message();
    }
  }
}

TEST(JsonStrictTest, RejectsNulBytes) {
  // nlohmann alone would stop at the NUL and accept the object before it.
  Result<nlohmann::json> j = parse_json_strict(std::string_view("{}\0garbage", 10));
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().message(), "invalid JSON: NUL byte at offset 2");
}

TEST(JsonStrictTest, RejectsByteOrderMark) {
  Result<nlohmann::json> j = parse_json_strict("\xEF\xBB\xBF{}");
  ASSERT_FALSE(j.ok());
  EXPECT_NE(j.status().message().find("byte-order mark"), std::string::npos);
}

TEST(JsonStrictTest, Utf8Validation) {
  EXPECT_EQ(find_invalid_utf8(""), std::nullopt);
  EXPECT_EQ(find_invalid_utf8("plain ascii"), std::nullopt);
  // ü 日 😀 U+10FFFF
  EXPECT_EQ(find_invalid_utf8("\xC3\xBC \xE6\x97\xA5 \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"), std::nullopt);
  EXPECT_EQ(find_invalid_utf8("\xED\x9F\xBF"), std::nullopt);  // U+D7FF, just below the surrogates
  EXPECT_EQ(find_invalid_utf8("ab\xFF"), 2u);
  EXPECT_EQ(find_invalid_utf8("a\xC0\xAF"), 1u);              // overlong '/'
  EXPECT_EQ(find_invalid_utf8("\xE0\x80\xAF"), 0u);           // overlong 3-byte
  EXPECT_EQ(find_invalid_utf8("\xF0\x80\x80\xAF"), 0u);       // overlong 4-byte
  EXPECT_EQ(find_invalid_utf8("x\xED\xA0\x80"), 1u);          // surrogate U+D800
  EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), 0u);       // U+110000
  EXPECT_EQ(find_invalid_utf8("\xF5\x80\x80\x80"), 0u);
  EXPECT_EQ(find_invalid_utf8("abc\xE2\x82"), 3u);            // truncated at the end
  EXPECT_EQ(find_invalid_utf8("\x80"), 0u);                   // lone continuation byte
  EXPECT_EQ(find_invalid_utf8("\xC3\x28"), 0u);               // bad continuation

  Result<nlohmann::json> j = parse_json_strict("{\"a\xFF\": 1}");
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().message(), "not valid UTF-8 (byte 0xff at offset 3)");
}

}  // namespace
}  // namespace qswap
