#include "qswap/model/unicode_text.h"

#include <limits>

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>
#include <unicode/uchar.h>

#include "qswap/base/log.h"

namespace qswap {
namespace {

enum class Utf8Kind { kValid, kInvalid, kTruncated };
struct Utf8Step {
  Utf8Kind kind;
  size_t len;  // bytes of the valid sequence, of the ill-formed subpart, or seen before the end
};

// One step of UTF-8 decoding per the Unicode "maximal subpart" practice (Unicode 15, §3.9,
// table 3-7): the ill-formed subpart ends at the first byte that cannot continue the sequence.
Utf8Step utf8_step(const unsigned char* p, size_t n) {
  const unsigned c = p[0];
  if (c < 0x80) return {Utf8Kind::kValid, 1};
  size_t need = 0;
  unsigned lo = 0x80, hi = 0xBF;  // range of the first continuation byte
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0) lo = 0xA0;  // no overlong forms
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0) lo = 0x90;  // no overlong forms
    if (c == 0xF4) hi = 0x8F;  // nothing past U+10FFFF
  } else {
    return {Utf8Kind::kInvalid, 1};
  }
  for (size_t k = 1; k <= need; ++k) {
    if (k >= n) return {Utf8Kind::kTruncated, k};
    if (p[k] < lo || p[k] > hi) return {Utf8Kind::kInvalid, k};
    lo = 0x80;
    hi = 0xBF;
  }
  return {Utf8Kind::kValid, need + 1};
}

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace

size_t utf8_append_lossy(std::string_view in, std::string& out, bool final) {
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  const size_t n = in.size();
  size_t i = 0;
  size_t run = 0;  // start of the pending run of valid bytes
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    const Utf8Step step = utf8_step(p + i, n - i);
    if (step.kind == Utf8Kind::kValid) {
      i += step.len;
      continue;
    }
    out.append(in.data() + run, i - run);
    if (step.kind == Utf8Kind::kTruncated && !final) return i;
    out.append(kReplacement);
    i += step.len;
    run = i;
  }
  out.append(in.data() + run, n - run);
  return n;
}

std::string utf8_lossy(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  utf8_append_lossy(in, out, true);
  return out;
}

bool utf8_is_valid(std::string_view in) {
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  for (size_t i = 0; i < in.size();) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    const Utf8Step step = utf8_step(p + i, in.size() - i);
    if (step.kind != Utf8Kind::kValid) return false;
    i += step.len;
  }
  return true;
}

char32_t utf8_next(std::string_view s, size_t& pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const unsigned c = p[pos];
  if (c < 0x80) {
    ++pos;
    return c;
  }
  const size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
  char32_t cp = c & (0x7F >> len);
  for (size_t k = 1; k < len && pos + k < s.size(); ++k) cp = (cp << 6) | (p[pos + k] & 0x3F);
  pos += len;
  return cp;
}

char32_t utf8_prev(std::string_view s, size_t& pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t start = pos - 1;
  while (start > 0 && (p[start] & 0xC0) == 0x80 && pos - start < 4) --start;
  size_t next = start;
  const char32_t cp = utf8_next(s, next);
  pos = start;
  return cp;
}

void utf8_append(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// --- byte-level table ------------------------------------------------------------------------

ByteLevelTable::ByteLevelTable() {
  // Printable Latin-1 bytes spell themselves; the other 68 bytes take U+0100, U+0101, ... in
  // byte order (GPT-2's bytes_to_unicode).
  byte_of_.fill(-1);
  char32_t next_extra = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    const char32_t cp = printable ? static_cast<char32_t>(b) : next_extra++;
    std::string s;
    utf8_append(cp, s);
    for (size_t k = 0; k < s.size(); ++k) spelling_[b][k] = s[k];
    spelling_len_[b] = static_cast<uint8_t>(s.size());
    byte_of_[cp] = static_cast<int16_t>(b);
  }
}

const ByteLevelTable& ByteLevelTable::get() {
  static const ByteLevelTable table;
  return table;
}

void ByteLevelTable::encode_append(std::string_view raw, std::string& out) const {
  for (char c : raw) out.append(encode(static_cast<uint8_t>(c)));
}

std::string ByteLevelTable::decode_token(std::string_view token) const {
  std::string bytes;
  bytes.reserve(token.size());
  for (size_t pos = 0; pos < token.size();) {
    const int b = decode(utf8_next(token, pos));
    if (b < 0) return std::string(token);
    bytes.push_back(static_cast<char>(b));
  }
  return bytes;
}

// --- normalization ---------------------------------------------------------------------------

Result<UnicodeNormalizer> UnicodeNormalizer::create(NormalizationForm form) {
  UErrorCode err = U_ZERO_ERROR;
  const icu::Normalizer2* n = nullptr;
  switch (form) {
    case NormalizationForm::kNFC: n = icu::Normalizer2::getNFCInstance(err); break;
    case NormalizationForm::kNFD: n = icu::Normalizer2::getNFDInstance(err); break;
    case NormalizationForm::kNFKC: n = icu::Normalizer2::getNFKCInstance(err); break;
    case NormalizationForm::kNFKD: n = icu::Normalizer2::getNFKDInstance(err); break;
  }
  if (U_FAILURE(err) || n == nullptr) {
    return internal_error("ICU could not provide a Unicode normalizer: {}", u_errorName(err));
  }
  return UnicodeNormalizer(n);
}

std::string_view UnicodeNormalizer::normalize(std::string_view in, std::string& scratch) const {
  if (in.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    QSWAP_LOG_WARN("tokenizer: text of {} bytes is too long to normalize; left as is", in.size());
    return in;
  }
  const auto* n = static_cast<const icu::Normalizer2*>(icu_);
  const icu::StringPiece piece(in.data(), static_cast<int32_t>(in.size()));
  UErrorCode err = U_ZERO_ERROR;
  if (n->isNormalizedUTF8(piece, err) && U_SUCCESS(err)) return in;
  scratch.clear();
  icu::StringByteSink<std::string> sink(&scratch, static_cast<int32_t>(in.size()));
  err = U_ZERO_ERROR;
  n->normalizeUTF8(0, piece, sink, nullptr, err);
  if (U_FAILURE(err)) {
    QSWAP_LOG_WARN("tokenizer: ICU normalization failed ({}); text left as is", u_errorName(err));
    return in;
  }
  return scratch;
}

// --- character classes -----------------------------------------------------------------------

bool is_word_char(char32_t cp) {
  const auto c = static_cast<UChar32>(cp);
  return u_hasBinaryProperty(c, UCHAR_ALPHABETIC) ||
         (U_GET_GC_MASK(c) & (U_GC_M_MASK | U_GC_ND_MASK | U_GC_PC_MASK)) != 0 ||
         u_hasBinaryProperty(c, UCHAR_JOIN_CONTROL);
}

bool is_white_space(char32_t cp) { return u_isUWhiteSpace(static_cast<UChar32>(cp)); }

}  // namespace qswap
