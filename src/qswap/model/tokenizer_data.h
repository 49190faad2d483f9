// The parsed form of tokenizer.json that Tokenizer runs on (internal to qswap/model).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qswap/base/status.h"
#include "qswap/model/added_tokens.h"
#include "qswap/model/bpe.h"
#include "qswap/model/token_regex.h"
#include "qswap/model/unicode_text.h"

namespace qswap {

// How a Split pre-tokenizer treats the regex matches (Hugging Face SplitDelimiterBehavior).
enum class SplitBehavior { kIsolated, kRemoved, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct PreTokenizerStep {
  enum class Kind { kSplit, kByteLevel };
  Kind kind = Kind::kSplit;
  std::optional<TokenRegex> regex;  // Split; ByteLevel with use_regex (GPT-2's pattern)
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;            // Split: the pieces are the text between matches
  bool add_prefix_space = false;  // ByteLevel: prepend ' ' to a piece not starting with one
};

// One item of a TemplateProcessing "single" template: the encoded text or fixed special ids.
struct TemplateItem {
  bool is_sequence = false;
  std::vector<int32_t> ids;
};

struct TokenizerData {
  std::string name;  // the file, for messages
  std::unique_ptr<BpeModel> bpe;
  AddedTokenMatcher raw_tokens;         // added tokens with normalized == false
  AddedTokenMatcher normalized_tokens;  // added tokens with normalized == true
  StringIdMap added_ids;                // added token content -> id
  std::vector<UnicodeNormalizer> normalizers;
  std::vector<PreTokenizerStep> pre_tokenizer;
  std::vector<std::vector<TemplateItem>> templates;  // post-processors, applied in order

  // By id: vocabulary text, decoded bytes, flags.
  std::vector<std::string> token_text;
  std::vector<std::string> token_bytes;
  std::vector<uint8_t> token_flags;
  static constexpr uint8_t kPresent = 1;
  static constexpr uint8_t kSpecial = 2;

  std::optional<int32_t> bos;
  std::optional<int32_t> eos;
};

// Parses tokenizer.json text; `config_json` (may be empty) is tokenizer_config.json. Messages
// start with `name` / `config_name`.
Result<std::unique_ptr<TokenizerData>> parse_tokenizer_json(std::string_view json,
                                                            std::string_view config_json,
                                                            std::string_view name,
                                                            std::string_view config_name);

}  // namespace qswap
