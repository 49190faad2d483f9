// The pre-tokenizer regex: Hugging Face compiles tokenizer.json patterns with Oniguruma; qswap
// uses PCRE2 (UTF + Unicode properties, JIT when available) after translating the few
// constructs whose meaning differs between the two.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "qswap/base/status.h"

struct pcre2_real_code_8;

namespace qswap {

// Rewrites an Oniguruma (Ruby syntax) pattern for PCRE2: `\s`/`\S` become White_Space (Onig's
// space class also holds U+0085, PCRE2's does not) and `\w`/`\W` become Onig's word class.
// Constructs that cannot be translated faithfully (`\h`, `\W` inside a class) are an error.
Result<std::string> translate_oniguruma_pattern(std::string_view pattern);

class TokenRegex {
 public:
  // Compiles an Oniguruma pattern (translated as above).
  static Result<TokenRegex> compile(std::string_view onig_pattern);
  // Compiles a literal string (tokenizer.json's {"String": ...} split patterns).
  static Result<TokenRegex> literal(std::string_view text);

  // Appends the [begin, end) byte ranges of the successive non-overlapping, non-empty matches in
  // `text`, which must be valid UTF-8.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& matches) const;

  const std::string& pattern() const { return pattern_; }

 private:
  TokenRegex(std::shared_ptr<pcre2_real_code_8> code, std::string pattern)
      : code_(std::move(code)), pattern_(std::move(pattern)) {}
  static Result<TokenRegex> compile_pcre2(std::string pattern);

  std::shared_ptr<pcre2_real_code_8> code_;  // immutable after compile: shared by copies
  std::string pattern_;                      // the PCRE2 pattern, for messages
};

}  // namespace qswap
