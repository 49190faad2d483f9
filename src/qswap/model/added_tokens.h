// Added tokens (special tokens like <|im_end|> and user-added ones like <think>): found in the
// text before pre-tokenization, leftmost-longest, honouring Hugging Face's single_word, lstrip
// and rstrip options.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace qswap {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool single_word = false;  // match only where not inside a word
  bool lstrip = false;       // also swallow the white space on the left
  bool rstrip = false;       // also swallow the white space on the right
  bool normalized = false;   // match in the normalized text (else in the raw text)
};

// A piece of the text: an added token (token >= 0, an index into the matcher's tokens) or
// plain text to pre-tokenize (token == -1).
struct TextSegment {
  size_t begin;
  size_t end;
  int32_t token;
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  // `patterns[i]` is what tokens[i] matches (its content, normalized for normalized tokens).
  AddedTokenMatcher(std::vector<AddedToken> tokens, const std::vector<std::string>& patterns);

  bool empty() const { return tokens_.empty(); }
  const AddedToken& token(int32_t index) const { return tokens_[static_cast<size_t>(index)]; }

  // Splits valid UTF-8 `text` into segments covering it in order; empty text gives none.
  void split(std::string_view text, std::vector<TextSegment>& out) const;

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> children;  // sorted by byte
    int32_t token = -1;                                         // token ending here
  };
  // Length and token of the longest pattern starting at `pos`, or {0, -1}.
  std::pair<size_t, int32_t> longest_at(std::string_view text, size_t pos) const;

  std::vector<AddedToken> tokens_;
  std::vector<Node> trie_;
};

}  // namespace qswap
