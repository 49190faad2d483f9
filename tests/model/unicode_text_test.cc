#include "qswap/model/unicode_text.h"

#include <gtest/gtest.h>

#include "qswap/model/token_regex.h"

namespace qswap {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

TEST(Utf8Test, ValidTextIsUnchanged) {
  const std::string s = "plain ASCII, caf\xC3\xA9, \xE4\xB8\xAD, \xF0\x9F\x98\x80";
  EXPECT_TRUE(utf8_is_valid(s));
  EXPECT_EQ(utf8_lossy(s), s);
}

// Expected values: the Unicode Standard's "maximal subpart" practice (chapter 3, U+FFFD
// substitution examples), which Python's errors="replace" and Rust's from_utf8_lossy follow.
TEST(Utf8Test, EachMaximalIllFormedSubpartBecomesOneReplacement) {
  EXPECT_EQ(utf8_lossy("\x80"), kFffd);
  EXPECT_EQ(utf8_lossy("a\xFF" "b"), "a" + kFffd + "b");
  EXPECT_EQ(utf8_lossy("\xC0\xAF"), kFffd + kFffd);              // C0 is never valid
  EXPECT_EQ(utf8_lossy("\xE0\x80\xAF"), kFffd + kFffd + kFffd);  // overlong: E0 needs A0..BF
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), kFffd + kFffd + kFffd);  // surrogate
  EXPECT_EQ(utf8_lossy("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);  // > U+10FFFF
  EXPECT_EQ(utf8_lossy("\xF0\x9F\x98"), kFffd);                  // truncated: one subpart
  EXPECT_EQ(utf8_lossy("\xF0\x9F\x98" "A"), kFffd + "A");
  EXPECT_EQ(utf8_lossy("\xE2\x28\xA1"), kFffd + "(" + kFffd);
  EXPECT_FALSE(utf8_is_valid("\xF0\x9F\x98"));
}

TEST(Utf8Test, IncompleteTailIsHeldBackUnlessFinal) {
  std::string out;
  EXPECT_EQ(utf8_append_lossy("ab\xF0\x9F", out, /*final=*/false), 2u);
  EXPECT_EQ(out, "ab");
  out.clear();
  EXPECT_EQ(utf8_append_lossy("ab\xF0\x9F", out, /*final=*/true), 4u);
  EXPECT_EQ(out, "ab" + kFffd);
  // A tail that can never complete is not held back.
  out.clear();
  EXPECT_EQ(utf8_append_lossy("ab\xF0\x41", out, /*final=*/false), 4u);
  EXPECT_EQ(out, "ab" + kFffd + "A");
}

TEST(Utf8Test, NextAndPrevWalkCodePoints) {
  const std::string s = "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80";
  size_t pos = 0;
  EXPECT_EQ(utf8_next(s, pos), U'a');
  EXPECT_EQ(utf8_next(s, pos), U'\u00E9');
  EXPECT_EQ(utf8_next(s, pos), U'\u4E2D');
  EXPECT_EQ(utf8_next(s, pos), U'\U0001F600');
  EXPECT_EQ(pos, s.size());
  EXPECT_EQ(utf8_prev(s, pos), U'\U0001F600');
  EXPECT_EQ(utf8_prev(s, pos), U'\u4E2D');
  EXPECT_EQ(utf8_prev(s, pos), U'\u00E9');
  EXPECT_EQ(utf8_prev(s, pos), U'a');
  EXPECT_EQ(pos, 0u);
}

// GPT-2's bytes_to_unicode: printable bytes spell themselves, space is U+0120 'Ġ', newline
// U+010A 'Ċ', byte 0 U+0100, 0xAD U+0143.
TEST(ByteLevelTableTest, MatchesGpt2Mapping) {
  const ByteLevelTable& t = ByteLevelTable::get();
  EXPECT_EQ(t.encode('A'), "A");
  EXPECT_EQ(t.encode(' '), "\xC4\xA0");
  EXPECT_EQ(t.encode('\n'), "\xC4\x8A");
  EXPECT_EQ(t.encode(0), "\xC4\x80");
  EXPECT_EQ(t.encode(0xAD), "\xC5\x83");
  EXPECT_EQ(t.encode(0xE9), "\xC3\xA9");
  for (int b = 0; b < 256; ++b) {
    std::string spelled;
    t.encode_append(std::string(1, static_cast<char>(b)), spelled);
    EXPECT_EQ(t.decode_token(spelled), std::string(1, static_cast<char>(b))) << b;
  }
  EXPECT_EQ(t.decode_token("\xC4\xA0the"), " the");
  // Not all code points are byte spellings: such a token stands for its own text.
  EXPECT_EQ(t.decode_token("<|im_end|>\xE4\xB8\xAD"), "<|im_end|>\xE4\xB8\xAD");
}

TEST(NormalizerTest, NfcComposes) {
  auto nfc = UnicodeNormalizer::create(NormalizationForm::kNFC);
  ASSERT_TRUE(nfc.ok());
  std::string scratch;
  EXPECT_EQ(nfc->normalize("cafe\xCC\x81", scratch), "caf\xC3\xA9");
  EXPECT_EQ(nfc->normalize("\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB", scratch), "\xED\x95\x9C");
  EXPECT_EQ(nfc->normalize("already", scratch), "already");
  auto nfd = UnicodeNormalizer::create(NormalizationForm::kNFD);
  ASSERT_TRUE(nfd.ok());
  EXPECT_EQ(nfd->normalize("caf\xC3\xA9", scratch), "cafe\xCC\x81");
}

TEST(CharClassTest, WordAndWhiteSpace) {
  EXPECT_TRUE(is_word_char(U'a'));
  EXPECT_TRUE(is_word_char(U'_'));
  EXPECT_TRUE(is_word_char(U'7'));
  EXPECT_TRUE(is_word_char(U'\u0301'));  // combining mark
  EXPECT_TRUE(is_word_char(U'\u4E2D'));
  EXPECT_FALSE(is_word_char(U'-'));
  EXPECT_FALSE(is_word_char(U' '));
  EXPECT_TRUE(is_white_space(U'\t'));
  EXPECT_TRUE(is_white_space(U'\u0085'));
  EXPECT_TRUE(is_white_space(U'\u3000'));
  EXPECT_FALSE(is_white_space(U'\u200B'));  // zero width space is not White_Space
}

TEST(TokenRegexTest, TranslatesOnigurumaClasses) {
  auto t = translate_oniguruma_pattern(R"(\s+(?!\S)|[^\s\p{L}]|\w|\\s)");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t,
            R"(\p{White_Space}+(?!\P{White_Space})|[^\p{White_Space}\p{L}]|)"
            R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]|\\s)");
  EXPECT_FALSE(translate_oniguruma_pattern(R"(\h)").ok());
  EXPECT_FALSE(translate_oniguruma_pattern(R"([\W])").ok());
  EXPECT_FALSE(translate_oniguruma_pattern("a\\").ok());
}

TEST(TokenRegexTest, FindsNonOverlappingMatches) {
  auto re = TokenRegex::compile(R"(\p{L}+|\p{N})");
  ASSERT_TRUE(re.ok()) << re.status().to_string();
  std::vector<std::pair<size_t, size_t>> m;
  re->find_all("ab 12 caf\xC3\xA9", m);
  const std::vector<std::pair<size_t, size_t>> want{{0, 2}, {3, 4}, {4, 5}, {6, 11}};
  EXPECT_EQ(m, want);
  // Empty matches are skipped without looping forever.
  auto empty = TokenRegex::compile("x*");
  ASSERT_TRUE(empty.ok());
  m.clear();
  empty->find_all("abxxc\xC3\xA9", m);
  EXPECT_EQ(m, (std::vector<std::pair<size_t, size_t>>{{2, 4}}));
}

TEST(TokenRegexTest, LiteralEscapesMetacharacters) {
  auto re = TokenRegex::literal("a.b(");
  ASSERT_TRUE(re.ok()) << re.status().to_string();
  std::vector<std::pair<size_t, size_t>> m;
  re->find_all("axb( a.b(", m);
  EXPECT_EQ(m, (std::vector<std::pair<size_t, size_t>>{{5, 9}}));
}

TEST(TokenRegexTest, BadPatternIsAnError) {
  auto re = TokenRegex::compile("(unclosed");
  ASSERT_FALSE(re.ok());
  EXPECT_NE(re.status().message().find("(unclosed"), std::string::npos);
}

}  // namespace
}  // namespace qswap
