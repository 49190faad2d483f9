// UTF-8 and Unicode helpers for the tokenizer: lossy decoding (U+FFFD per maximal ill-formed
// subpart, as Rust's String::from_utf8_lossy and Python's errors="replace"), GPT-2's
// byte-to-unicode table, Unicode normalization (ICU) and the character classes that added-token
// matching needs.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "qswap/base/status.h"

namespace qswap {

// Appends `in` to `out` as valid UTF-8, each maximal ill-formed subpart replaced by U+FFFD.
// With `final` false, a trailing sequence that is incomplete but could still become valid is
// left unconsumed. Returns the number of bytes of `in` consumed.
size_t utf8_append_lossy(std::string_view in, std::string& out, bool final = true);

// Whole-string form of the above.
std::string utf8_lossy(std::string_view in);

// True if `in` is well-formed UTF-8.
bool utf8_is_valid(std::string_view in);

// Decodes the code point starting at `pos` of valid UTF-8 and advances `pos`.
char32_t utf8_next(std::string_view s, size_t& pos);
// Decodes the code point ending at `pos` of valid UTF-8 and moves `pos` to its start.
char32_t utf8_prev(std::string_view s, size_t& pos);
void utf8_append(char32_t cp, std::string& out);

// GPT-2 byte-level BPE: every byte is spelled as one printable code point in the vocabulary.
class ByteLevelTable {
 public:
  static const ByteLevelTable& get();
  // The UTF-8 spelling of byte b (1 or 2 bytes).
  std::string_view encode(uint8_t b) const { return {spelling_[b].data(), spelling_len_[b]}; }
  // The byte that code point cp spells, or -1 if cp is not one of the 256 spellings.
  int decode(char32_t cp) const { return cp < kCodePoints ? byte_of_[cp] : -1; }
  // Appends the byte-level spelling of `raw` to `out`.
  void encode_append(std::string_view raw, std::string& out) const;
  // The bytes a token spells: its code points mapped back through the table, or, if any code
  // point is not a byte spelling (added tokens like "<think> "), the token's own UTF-8 bytes.
  std::string decode_token(std::string_view token) const;

 private:
  ByteLevelTable();
  static constexpr char32_t kCodePoints = 512;
  std::array<std::array<char, 2>, 256> spelling_{};
  std::array<uint8_t, 256> spelling_len_{};
  std::array<int16_t, kCodePoints> byte_of_{};
};

enum class NormalizationForm { kNFC, kNFD, kNFKC, kNFKD };

// A Unicode normalizer backed by ICU. Input must be valid UTF-8.
class UnicodeNormalizer {
 public:
  static Result<UnicodeNormalizer> create(NormalizationForm form);
  // Returns `in` normalized; `scratch` holds the result when it differs from `in`.
  std::string_view normalize(std::string_view in, std::string& scratch) const;

 private:
  explicit UnicodeNormalizer(const void* icu) : icu_(icu) {}
  const void* icu_;  // const icu::Normalizer2*, a process-wide singleton owned by ICU
};

// Rust regex's `\w` (Alphabetic, M, Nd, Pc, Join_Control) and `\s` (White_Space), the classes
// Hugging Face uses for the single_word / lstrip / rstrip options of added tokens.
bool is_word_char(char32_t cp);
bool is_white_space(char32_t cp);

}  // namespace qswap
