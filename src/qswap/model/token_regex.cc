#include "qswap/model/token_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "qswap/base/log.h"
#include "qswap/model/unicode_text.h"

namespace qswap {
namespace {

// Oniguruma's \w for Unicode encodings.
constexpr std::string_view kWordItems = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}";

struct MatchDataDeleter {
  void operator()(pcre2_match_data* md) const { pcre2_match_data_free(md); }
};

}  // namespace

Result<std::string> translate_oniguruma_pattern(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 32);
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\') {
      if (i + 1 >= pattern.size()) return invalid_argument("regex ends with a lone backslash");
      const char e = pattern[++i];
      switch (e) {
        case 's': out += "\\p{White_Space}"; break;
        case 'S': out += "\\P{White_Space}"; break;
        case 'w':
          out += in_class ? std::string(kWordItems) : fmt::format("[{}]", kWordItems);
          break;
        case 'W':
          if (in_class) {
            return unimplemented("regex uses \\W inside a character class at offset {}", i - 1);
          }
          out += fmt::format("[^{}]", kWordItems);
          break;
        case 'h':
        case 'H':
          // Oniguruma: hexadecimal digit; PCRE2: horizontal space.
          return unimplemented("regex uses \\{} (hex digit in Oniguruma) at offset {}", e, i - 1);
        default:
          out += c;
          out += e;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal member, not the end of the class.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (in_class && c == '[' && i + 1 < pattern.size() && pattern[i + 1] == ':') {
      const size_t end = pattern.find(":]", i + 2);  // POSIX class [:alpha:]
      if (end != std::string_view::npos) {
        out.append(pattern.substr(i, end + 2 - i));
        i = end + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

Result<TokenRegex> TokenRegex::compile(std::string_view onig_pattern) {
  QSWAP_ASSIGN_OR_RETURN(std::string translated, translate_oniguruma_pattern(onig_pattern));
  return compile_pcre2(std::move(translated));
}

Result<TokenRegex> TokenRegex::literal(std::string_view text) {
  std::string quoted;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    const bool plain = u >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                       (c >= 'A' && c <= 'Z') || c == '_';
    if (!plain) quoted += '\\';
    quoted += c;
  }
  return compile_pcre2(std::move(quoted));
}

Result<TokenRegex> TokenRegex::compile_pcre2(std::string pattern) {
  if (!utf8_is_valid(pattern)) return invalid_argument("regex is not valid UTF-8");
  int error = 0;
  PCRE2_SIZE offset = 0;
  // MULTILINE: in Oniguruma's Ruby syntax ^ and $ are line anchors.
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &error, &offset,
                                   nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    return invalid_argument("regex '{}' does not compile at offset {}: {}", pattern, offset,
                            reinterpret_cast<const char*>(message));
  }
  // JIT is an optimization: without it (unsupported CPU, no executable memory) matching still
  // works through the interpreter.
  const int jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  if (jit != 0) QSWAP_LOG_DEBUG("tokenizer: PCRE2 JIT unavailable ({}), interpreting", jit);
  return TokenRegex(std::shared_ptr<pcre2_code>(code, pcre2_code_free), std::move(pattern));
}

void TokenRegex::find_all(std::string_view text,
                          std::vector<std::pair<size_t, size_t>>& matches) const {
  std::unique_ptr<pcre2_match_data, MatchDataDeleter> md(
      pcre2_match_data_create_from_pattern(code_.get(), nullptr));
  if (md == nullptr) {
    QSWAP_LOG_ERROR("tokenizer: out of memory for PCRE2 match data");
    return;
  }
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos < text.size()) {
    // NO_UTF_CHECK: the caller guarantees valid UTF-8, and checking the whole subject on every
    // call would make the scan quadratic.
    int rc = pcre2_match(code_.get(), subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md.get(),
                         nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      rc = pcre2_match(code_.get(), subject, text.size(), pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                       md.get(), nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) return;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof(message));
      QSWAP_LOG_WARN("tokenizer: regex '{}' failed at byte {}: {}; rest of the text is one piece",
                     pattern_, pos, reinterpret_cast<const char*>(message));
      return;
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    const size_t begin = ov[0], end = ov[1];
    if (end > begin) {
      matches.emplace_back(begin, end);
      pos = end;
    } else {
      // Empty match (or \K trickery): like Oniguruma's iterator, move on by one code point.
      size_t next = std::max(begin, pos);
      if (next >= text.size()) return;
      utf8_next(text, next);
      pos = next;
    }
  }
}

}  // namespace qswap
