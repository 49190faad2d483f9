// Byte-level BPE tokenizer read from a Hugging Face tokenizer.json (GPT-2, Llama 3, Qwen2/3),
// producing the same ids and text as the `tokenizers` library.
//
// Pipeline of encode(): added tokens are cut out of the raw text (leftmost-longest), the rest is
// normalized (NFC, ...), normalized added tokens are cut out, the pre-tokenizer splits the rest
// into words (PCRE2 regex; ByteLevel spells bytes as GPT-2's printable code points), and each
// word is merged by BPE. add_special_tokens applies the post-processor's template (e.g. the BOS
// of Llama 3).
//
// Bad input never crashes: text that is not valid UTF-8 is encoded as if each ill-formed part
// were U+FFFD; decode() skips ids that name no token (negative or past the vocabulary), as
// Hugging Face does.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qswap/base/status.h"

namespace qswap {

struct TokenizerData;  // parsed tokenizer.json (qswap/model/tokenizer_data.h)

class Tokenizer {
 public:
  // Reads tokenizer.json and, when present next to it, tokenizer_config.json (bos/eos tokens).
  // Errors name the file and the key, e.g. "tokenizer.json: model.merges[12] ...".
  static Result<Tokenizer> load(const std::filesystem::path& tokenizer_json);
  // Same from memory; `name` stands for the file in messages. Empty `config_json` = no config.
  static Result<Tokenizer> from_json(std::string_view tokenizer_json,
                                     std::string_view config_json = {},
                                     std::string_view name = "tokenizer.json");

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Thread-safe (the word cache is internally locked).
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = false) const;
  // Concatenated token bytes as UTF-8, each ill-formed part replaced by U+FFFD.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  // The words the pre-tokenizer makes of normalized `text` (added tokens are not looked for),
  // spelled as the BPE model sees them ("Ġworld"). For tests and debugging.
  std::vector<std::string> pre_tokenize(std::string_view text) const;

  // The token as written in the vocabulary ("Ġthe", "<|im_end|>"); empty for an unknown id.
  std::string_view token_text(int32_t id) const;
  // The bytes the token stands for in decoded text (" the"); empty for an unknown id.
  std::string_view token_bytes(int32_t id) const;
  // One past the largest id (the rows an embedding needs); unused ids in between decode to "".
  int32_t vocab_size() const;
  std::optional<int32_t> token_id(std::string_view token) const;
  // True for added tokens marked special (skipped by decode with skip_special_tokens).
  bool is_special(int32_t id) const;

  // From tokenizer_config.json next to tokenizer.json (bos_token / eos_token; null = none).
  // Without it: the token the post-processor puts first (bos), else a well-known name among
  // the added tokens (<|begin_of_text|>, <s>; <|endoftext|>, <|end_of_text|>, </s>).
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;

 private:
  explicit Tokenizer(std::unique_ptr<TokenizerData> data);
  void encode_text(std::string_view text, std::vector<int32_t>& out) const;
  void encode_normalized(std::string_view text, std::vector<int32_t>& out) const;
  void encode_words(std::string_view text, std::vector<int32_t>& out) const;

  std::unique_ptr<TokenizerData> data_;
};

// Turns generated ids into text as they come, emitting only complete UTF-8: a token that ends
// inside a code point is held back until the next one completes it. The concatenation of all
// push() results and flush() equals Tokenizer::decode() of all the ids. The tokenizer must
// outlive the decoder.
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = false);

  // Text completed by this token (possibly empty). Unknown ids are skipped.
  std::string push(int32_t id);
  // The held-back rest (ill-formed bytes become U+FFFD); the decoder is then empty again.
  std::string flush();

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_tokens_;
  std::string pending_;  // bytes of an incomplete code point (at most 3)
};

}  // namespace qswap
