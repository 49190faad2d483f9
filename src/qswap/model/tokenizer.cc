#include "qswap/model/tokenizer.h"

#include <algorithm>
#include <deque>
#include <system_error>

#include "qswap/base/mapped_file.h"
#include "qswap/model/tokenizer_data.h"

namespace qswap {
namespace {

// Cuts `piece` at the matches of `regex` and appends the resulting pieces as Hugging Face's
// NormalizedString::split does for each SplitDelimiterBehavior; empty pieces are dropped.
void split_piece(std::string_view piece, const TokenRegex& regex, SplitBehavior behavior,
                 bool invert, std::vector<std::pair<size_t, size_t>>& scratch,
                 std::vector<std::string_view>& out) {
  scratch.clear();
  regex.find_all(piece, scratch);
  if (behavior == SplitBehavior::kIsolated) {  // the common case, without the bookkeeping
    size_t prev = 0;
    for (const auto& [b, e] : scratch) {
      if (prev < b) out.push_back(piece.substr(prev, b - prev));
      out.push_back(piece.substr(b, e - b));
      prev = e;
    }
    if (prev < piece.size()) out.push_back(piece.substr(prev));
    return;
  }
  struct Range {
    size_t begin, end;
    bool match;
  };
  std::vector<Range> ranges;
  ranges.reserve(2 * scratch.size() + 1);
  size_t prev = 0;
  for (const auto& [b, e] : scratch) {
    if (prev < b) ranges.push_back({prev, b, invert});
    ranges.push_back({b, e, !invert});
    prev = e;
  }
  if (prev < piece.size()) ranges.push_back({prev, piece.size(), invert});

  std::vector<Range> kept;  // `match` unused from here on
  kept.reserve(ranges.size());
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::kIsolated:  // handled above
      break;
    case SplitBehavior::kRemoved:
      for (const Range& r : ranges) {
        if (!r.match) kept.push_back(r);
      }
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const Range& r : ranges) {
        if (r.match && !previous_match && !kept.empty()) {
          kept.back().end = r.end;
        } else {
          kept.push_back(r);
        }
        previous_match = r.match;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (auto it = ranges.rbegin(); it != ranges.rend(); ++it) {
        if (it->match && !previous_match && !kept.empty()) {
          kept.back().begin = it->begin;
        } else {
          kept.push_back(*it);
        }
        previous_match = it->match;
      }
      std::reverse(kept.begin(), kept.end());
      break;
    case SplitBehavior::kContiguous:
      for (const Range& r : ranges) {
        if (r.match == previous_match && !kept.empty()) {
          kept.back().end = r.end;
        } else {
          kept.push_back(r);
        }
        previous_match = r.match;
      }
      break;
  }
  for (const Range& r : kept) {
    if (r.end > r.begin) out.push_back(piece.substr(r.begin, r.end - r.begin));
  }
}

// Runs the pre-tokenizer over `text` and calls emit(word) for each word, spelled as the BPE
// model expects it (byte-level when a ByteLevel step is present).
template <typename Emit>
void for_each_word(const TokenizerData& data, std::string_view text, Emit&& emit) {
  if (text.empty()) return;
  const ByteLevelTable& bytes = ByteLevelTable::get();
  std::vector<std::string_view> pieces{text}, next;
  std::deque<std::string> owned;  // rewritten pieces; a deque keeps their addresses
  std::vector<std::pair<size_t, size_t>> scratch;
  bool spell_bytes_last = false;  // ByteLevel was the last step: spell each word just before BPE
  const auto& steps = data.pre_tokenizer;
  for (size_t i = 0; i < steps.size(); ++i) {
    const PreTokenizerStep& step = steps[i];
    next.clear();
    if (step.kind == PreTokenizerStep::Kind::kSplit) {
      for (std::string_view p : pieces) {
        split_piece(p, *step.regex, step.behavior, step.invert, scratch, next);
      }
    } else {
      for (std::string_view p : pieces) {
        if (step.add_prefix_space && p.front() != ' ') {
          std::string& spaced = owned.emplace_back();
          spaced.reserve(p.size() + 1);
          spaced.push_back(' ');
          spaced.append(p);
          p = spaced;
        }
        if (step.regex) {
          split_piece(p, *step.regex, SplitBehavior::kIsolated, false, scratch, next);
        } else {
          next.push_back(p);
        }
      }
      if (i + 1 == steps.size()) {
        spell_bytes_last = true;
      } else {
        for (std::string_view& p : next) {
          owned.emplace_back();
          bytes.encode_append(p, owned.back());
          p = owned.back();
        }
      }
    }
    std::swap(pieces, next);
  }
  std::string word;
  for (std::string_view p : pieces) {
    if (spell_bytes_last) {
      word.clear();
      bytes.encode_append(p, word);
      emit(std::string_view(word));
    } else {
      emit(p);
    }
  }
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<TokenizerData> data) : data_(std::move(data)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Result<Tokenizer> Tokenizer::load(const std::filesystem::path& tokenizer_json) {
  QSWAP_ASSIGN_OR_RETURN(std::string text, read_text_file(tokenizer_json));
  const std::filesystem::path config_path = tokenizer_json.parent_path() / "tokenizer_config.json";
  std::string config;
  std::error_code ec;
  if (std::filesystem::exists(config_path, ec)) {
    QSWAP_ASSIGN_OR_RETURN(config, read_text_file(config_path));
    if (config.empty()) return data_loss("{}: empty file", config_path.string());
  }
  QSWAP_ASSIGN_OR_RETURN(auto data, parse_tokenizer_json(text, config, tokenizer_json.string(),
                                                         config_path.string()));
  return Tokenizer(std::move(data));
}

Result<Tokenizer> Tokenizer::from_json(std::string_view tokenizer_json,
                                       std::string_view config_json, std::string_view name) {
  QSWAP_ASSIGN_OR_RETURN(auto data, parse_tokenizer_json(tokenizer_json, config_json, name,
                                                         "tokenizer_config.json"));
  return Tokenizer(std::move(data));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::string repaired;
  if (!utf8_is_valid(text)) {
    repaired = utf8_lossy(text);
    text = repaired;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  encode_text(text, ids);
  if (!add_special_tokens) return ids;
  for (const auto& tmpl : data_->templates) {
    std::vector<int32_t> wrapped;
    wrapped.reserve(ids.size() + 4);
    for (const TemplateItem& item : tmpl) {
      const auto& part = item.is_sequence ? ids : item.ids;
      wrapped.insert(wrapped.end(), part.begin(), part.end());
    }
    ids = std::move(wrapped);
  }
  return ids;
}

void Tokenizer::encode_text(std::string_view text, std::vector<int32_t>& out) const {
  if (data_->raw_tokens.empty()) return encode_normalized(text, out);
  std::vector<TextSegment> segments;
  data_->raw_tokens.split(text, segments);
  for (const TextSegment& s : segments) {
    if (s.token >= 0) {
      out.push_back(data_->raw_tokens.token(s.token).id);
    } else {
      encode_normalized(text.substr(s.begin, s.end - s.begin), out);
    }
  }
}

void Tokenizer::encode_normalized(std::string_view text, std::vector<int32_t>& out) const {
  std::string buffers[2];
  for (size_t i = 0; i < data_->normalizers.size(); ++i) {
    // Alternate buffers: `text` may point into the one written by the previous normalizer.
    text = data_->normalizers[i].normalize(text, buffers[i % 2]);
  }
  if (data_->normalized_tokens.empty()) return encode_words(text, out);
  std::vector<TextSegment> segments;
  data_->normalized_tokens.split(text, segments);
  for (const TextSegment& s : segments) {
    if (s.token >= 0) {
      out.push_back(data_->normalized_tokens.token(s.token).id);
    } else {
      encode_words(text.substr(s.begin, s.end - s.begin), out);
    }
  }
}

void Tokenizer::encode_words(std::string_view text, std::vector<int32_t>& out) const {
  for_each_word(*data_, text, [&](std::string_view word) { data_->bpe->encode_word(word, out); });
}

std::vector<std::string> Tokenizer::pre_tokenize(std::string_view text) const {
  std::string repaired;
  if (!utf8_is_valid(text)) {
    repaired = utf8_lossy(text);
    text = repaired;
  }
  std::string buffers[2];
  for (size_t i = 0; i < data_->normalizers.size(); ++i) {
    text = data_->normalizers[i].normalize(text, buffers[i % 2]);
  }
  std::vector<std::string> words;
  for_each_word(*data_, text, [&](std::string_view word) { words.emplace_back(word); });
  return words;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) continue;
    const uint8_t flags = data_->token_flags[static_cast<size_t>(id)];
    if ((flags & TokenizerData::kPresent) == 0) continue;
    if (skip_special_tokens && (flags & TokenizerData::kSpecial) != 0) continue;
    bytes += data_->token_bytes[static_cast<size_t>(id)];
  }
  return utf8_lossy(bytes);
}

std::string_view Tokenizer::token_text(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  return data_->token_text[static_cast<size_t>(id)];
}

std::string_view Tokenizer::token_bytes(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  return data_->token_bytes[static_cast<size_t>(id)];
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(data_->token_text.size()); }

std::optional<int32_t> Tokenizer::token_id(std::string_view token) const {
  if (const auto it = data_->added_ids.find(token); it != data_->added_ids.end()) {
    return it->second;
  }
  return data_->bpe->find(token);
}

bool Tokenizer::is_special(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return false;
  return (data_->token_flags[static_cast<size_t>(id)] & TokenizerData::kSpecial) != 0;
}

std::optional<int32_t> Tokenizer::bos_id() const { return data_->bos; }
std::optional<int32_t> Tokenizer::eos_id() const { return data_->eos; }

// --- streaming -------------------------------------------------------------------------------

StreamingDecoder::StreamingDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(&tokenizer), skip_special_tokens_(skip_special_tokens) {}

std::string StreamingDecoder::push(int32_t id) {
  if (skip_special_tokens_ && tokenizer_->is_special(id)) return {};
  pending_ += tokenizer_->token_bytes(id);
  std::string out;
  const size_t used = utf8_append_lossy(pending_, out, /*final=*/false);
  pending_.erase(0, used);
  return out;
}

std::string StreamingDecoder::flush() {
  std::string out;
  utf8_append_lossy(pending_, out, /*final=*/true);
  pending_.clear();
  return out;
}

}  // namespace qswap
