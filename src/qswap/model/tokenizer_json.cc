// tokenizer.json / tokenizer_config.json -> TokenizerData. Every type is checked before use, so
// a malformed file gives a Status naming the key, never an exception or a crash.
#include <algorithm>
#include <array>

#include <nlohmann/json.hpp>

#include "qswap/model/tokenizer_data.h"

namespace qswap {
namespace {

using json = nlohmann::json;

// Ids beyond this are taken as corruption rather than allocated (the largest real
// vocabularies have ~260K tokens).
constexpr int64_t kMaxTokenId = (int64_t{1} << 24) - 1;

// Hugging Face's ByteLevel pre-tokenizer pattern (GPT-2's), used when use_regex is true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

Result<json> parse_json(std::string_view text) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    return data_loss("not valid JSON: {}", e.what());
  }
}

const json* member(const json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  const auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

bool null_or_absent(const json* v) { return v == nullptr || v->is_null(); }

Result<std::string> string_value(const json& v, std::string_view where) {
  if (!v.is_string()) return data_loss("{}: expected a string, got {}", where, v.type_name());
  return v.get<std::string>();
}

Result<const json*> object_member(const json& obj, std::string_view key, std::string_view where) {
  const json* v = member(obj, key);
  if (v == nullptr) return data_loss("{}: missing key '{}'", where, key);
  if (!v->is_object()) {
    return data_loss("{}.{}: expected an object, got {}", where, key, v->type_name());
  }
  return v;
}

Result<const json*> array_member(const json& obj, std::string_view key, std::string_view where) {
  const json* v = member(obj, key);
  if (v == nullptr) return data_loss("{}: missing key '{}'", where, key);
  if (!v->is_array()) {
    return data_loss("{}.{}: expected an array, got {}", where, key, v->type_name());
  }
  return v;
}

Result<bool> bool_or(const json& obj, std::string_view key, std::string_view where, bool dflt) {
  const json* v = member(obj, key);
  if (null_or_absent(v)) return dflt;
  if (!v->is_boolean()) {
    return data_loss("{}.{}: expected a boolean, got {}", where, key, v->type_name());
  }
  return v->get<bool>();
}

Result<int32_t> token_id_value(const json& v, std::string_view where) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > kMaxTokenId) {
    return data_loss("{}: expected a token id in [0, {}], got {}", where, kMaxTokenId, v.dump());
  }
  return static_cast<int32_t>(v.get<int64_t>());
}

// The "type" of a component; a view into `obj`.
Result<std::string_view> type_of(const json& obj, std::string_view where) {
  if (!obj.is_object()) return data_loss("{}: expected an object, got {}", where, obj.type_name());
  const json* t = member(obj, "type");
  if (t == nullptr) return data_loss("{}: missing key 'type'", where);
  if (!t->is_string()) {
    return data_loss("{}.type: expected a string, got {}", where, t->type_name());
  }
  return std::string_view(t->get_ref<const std::string&>());
}

// --- model -----------------------------------------------------------------------------------

Result<std::pair<std::string, std::string>> parse_merge(const json& m, std::string_view where) {
  if (m.is_string()) {
    // "a b": byte-level tokens never hold a space (it is spelled 'Ġ').
    const auto& s = m.get_ref<const std::string&>();
    const size_t space = s.find(' ');
    if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
      return data_loss("{}: expected \"left right\" with one space, got '{}'", where, s);
    }
    return std::pair{s.substr(0, space), s.substr(space + 1)};
  }
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
    return std::pair{m[0].get<std::string>(), m[1].get<std::string>()};
  }
  return data_loss("{}: expected \"left right\" or [left, right], got {}", where, m.dump());
}

Status parse_model(const json& root, TokenizerData& data) {
  QSWAP_ASSIGN_OR_RETURN(const json* model, object_member(root, "model", "top level"));
  if (const json* type = member(*model, "type")) {
    QSWAP_ASSIGN_OR_RETURN(std::string t, string_value(*type, "model.type"));
    if (t != "BPE") return unimplemented("model.type '{}' is not supported (only BPE)", t);
  }
  QSWAP_ASSIGN_OR_RETURN(bool byte_fallback, bool_or(*model, "byte_fallback", "model", false));
  if (byte_fallback) {
    return unimplemented("model.byte_fallback is true (SentencePiece-style BPE is not supported)");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json* v = member(*model, key);
    if (!null_or_absent(v) && !(v->is_string() && v->get_ref<const std::string&>().empty())) {
      return unimplemented("model.{} = {} is not supported", key, v->dump());
    }
  }
  if (const json* dropout = member(*model, "dropout");
      !null_or_absent(dropout) && !(dropout->is_number() && dropout->get<double>() <= 0.0)) {
    return unimplemented("model.dropout = {} is not supported (BPE dropout is for training)",
                         dropout->dump());
  }

  QSWAP_ASSIGN_OR_RETURN(const json* vocab_json, object_member(*model, "vocab", "model"));
  StringIdMap vocab;
  vocab.reserve(vocab_json->size());
  for (const auto& [token, id_json] : vocab_json->items()) {
    QSWAP_ASSIGN_OR_RETURN(int32_t id,
                           token_id_value(id_json, fmt::format("model.vocab['{}']", token)));
    vocab.emplace(token, id);
  }

  QSWAP_ASSIGN_OR_RETURN(const json* merges_json, array_member(*model, "merges", "model"));
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(merges_json->size());
  for (size_t i = 0; i < merges_json->size(); ++i) {
    QSWAP_ASSIGN_OR_RETURN(auto merge,
                           parse_merge((*merges_json)[i], fmt::format("model.merges[{}]", i)));
    merges.push_back(std::move(merge));
  }

  BpeOptions options;
  QSWAP_ASSIGN_OR_RETURN(options.fuse_unk, bool_or(*model, "fuse_unk", "model", false));
  QSWAP_ASSIGN_OR_RETURN(options.ignore_merges, bool_or(*model, "ignore_merges", "model", false));
  if (const json* unk = member(*model, "unk_token"); !null_or_absent(unk)) {
    QSWAP_ASSIGN_OR_RETURN(std::string unk_token, string_value(*unk, "model.unk_token"));
    const auto it = vocab.find(unk_token);
    if (it == vocab.end()) {
      return data_loss("model.unk_token '{}' is not in model.vocab", unk_token);
    }
    options.unk_id = it->second;
  }
  QSWAP_ASSIGN_OR_RETURN(data.bpe,
                         BpeModel::create(std::move(vocab), merges, options, "model.merges"));
  return {};
}

// --- added tokens ----------------------------------------------------------------------------

Result<std::vector<AddedToken>> parse_added_tokens(const json& root) {
  std::vector<AddedToken> tokens;
  const json* list = member(root, "added_tokens");
  if (null_or_absent(list)) return tokens;
  if (!list->is_array()) {
    return data_loss("added_tokens: expected an array, got {}", list->type_name());
  }
  for (size_t i = 0; i < list->size(); ++i) {
    const json& t = (*list)[i];
    const std::string where = fmt::format("added_tokens[{}]", i);
    if (!t.is_object()) return data_loss("{}: expected an object, got {}", where, t.type_name());
    AddedToken tok;
    const json* id = member(t, "id");
    if (id == nullptr) return data_loss("{}: missing key 'id'", where);
    QSWAP_ASSIGN_OR_RETURN(tok.id, token_id_value(*id, where + ".id"));
    const json* content = member(t, "content");
    if (content == nullptr) return data_loss("{}: missing key 'content'", where);
    QSWAP_ASSIGN_OR_RETURN(tok.content, string_value(*content, where + ".content"));
    QSWAP_ASSIGN_OR_RETURN(tok.special, bool_or(t, "special", where, false));
    QSWAP_ASSIGN_OR_RETURN(tok.single_word, bool_or(t, "single_word", where, false));
    QSWAP_ASSIGN_OR_RETURN(tok.lstrip, bool_or(t, "lstrip", where, false));
    QSWAP_ASSIGN_OR_RETURN(tok.rstrip, bool_or(t, "rstrip", where, false));
    QSWAP_ASSIGN_OR_RETURN(tok.normalized, bool_or(t, "normalized", where, !tok.special));
    if (!utf8_is_valid(tok.content)) return data_loss("{}.content is not valid UTF-8", where);
    if (tok.content.empty()) continue;  // Hugging Face ignores empty added tokens
    tokens.push_back(std::move(tok));
  }
  return tokens;
}

// --- normalizer ------------------------------------------------------------------------------

Status parse_normalizer(const json* n, std::string_view where, TokenizerData& data) {
  if (null_or_absent(n)) return {};
  QSWAP_ASSIGN_OR_RETURN(std::string_view type, type_of(*n, where));
  if (type == "Sequence") {
    QSWAP_ASSIGN_OR_RETURN(const json* list, array_member(*n, "normalizers", where));
    for (size_t i = 0; i < list->size(); ++i) {
      QSWAP_RETURN_IF_ERROR(
          parse_normalizer(&(*list)[i], fmt::format("{}.normalizers[{}]", where, i), data));
    }
    return {};
  }
  static constexpr std::array<std::pair<std::string_view, NormalizationForm>, 4> kForms{{
      {"NFC", NormalizationForm::kNFC},
      {"NFD", NormalizationForm::kNFD},
      {"NFKC", NormalizationForm::kNFKC},
      {"NFKD", NormalizationForm::kNFKD},
  }};
  for (const auto& [name, form] : kForms) {
    if (type == name) {
      QSWAP_ASSIGN_OR_RETURN(UnicodeNormalizer normalizer, UnicodeNormalizer::create(form));
      data.normalizers.push_back(normalizer);
      return {};
    }
  }
  return unimplemented("{}.type '{}' is not supported (NFC, NFD, NFKC, NFKD, Sequence)", where,
                       type);
}

// --- pre-tokenizer ---------------------------------------------------------------------------

Result<SplitBehavior> split_behavior(const json& obj, std::string_view where) {
  const json* b = member(obj, "behavior");
  if (b == nullptr) return data_loss("{}: missing key 'behavior'", where);
  QSWAP_ASSIGN_OR_RETURN(std::string name, string_value(*b, fmt::format("{}.behavior", where)));
  static constexpr std::array<std::pair<std::string_view, SplitBehavior>, 5> kBehaviors{{
      {"Isolated", SplitBehavior::kIsolated},
      {"Removed", SplitBehavior::kRemoved},
      {"MergedWithPrevious", SplitBehavior::kMergedWithPrevious},
      {"MergedWithNext", SplitBehavior::kMergedWithNext},
      {"Contiguous", SplitBehavior::kContiguous},
  }};
  for (const auto& [n, behavior] : kBehaviors) {
    if (name == n) return behavior;
  }
  return data_loss("{}.behavior '{}' is not a split behavior", where, name);
}

Status parse_pre_tokenizer(const json* p, std::string_view where, TokenizerData& data) {
  if (null_or_absent(p)) return {};
  QSWAP_ASSIGN_OR_RETURN(std::string_view type, type_of(*p, where));
  if (type == "Sequence") {
    QSWAP_ASSIGN_OR_RETURN(const json* list, array_member(*p, "pretokenizers", where));
    for (size_t i = 0; i < list->size(); ++i) {
      QSWAP_RETURN_IF_ERROR(
          parse_pre_tokenizer(&(*list)[i], fmt::format("{}.pretokenizers[{}]", where, i), data));
    }
    return {};
  }
  PreTokenizerStep step;
  if (type == "Split") {
    step.kind = PreTokenizerStep::Kind::kSplit;
    QSWAP_ASSIGN_OR_RETURN(const json* pattern, object_member(*p, "pattern", where));
    const json* regex = member(*pattern, "Regex");
    const json* literal = member(*pattern, "String");
    if (regex == nullptr && literal == nullptr) {
      return data_loss("{}.pattern: expected a 'Regex' or 'String' key, got {}", where,
                       pattern->dump());
    }
    const std::string at = fmt::format("{}.pattern.{}", where, regex ? "Regex" : "String");
    QSWAP_ASSIGN_OR_RETURN(std::string s, string_value(regex ? *regex : *literal, at));
    auto compiled = regex ? TokenRegex::compile(s) : TokenRegex::literal(s);
    if (!compiled.ok()) return compiled.status().with_context(at);
    step.regex = std::move(compiled).value();
    QSWAP_ASSIGN_OR_RETURN(step.behavior, split_behavior(*p, where));
    QSWAP_ASSIGN_OR_RETURN(step.invert, bool_or(*p, "invert", where, false));
  } else if (type == "ByteLevel") {
    step.kind = PreTokenizerStep::Kind::kByteLevel;
    QSWAP_ASSIGN_OR_RETURN(step.add_prefix_space, bool_or(*p, "add_prefix_space", where, true));
    QSWAP_ASSIGN_OR_RETURN(bool use_regex, bool_or(*p, "use_regex", where, true));
    if (use_regex) {
      QSWAP_ASSIGN_OR_RETURN(TokenRegex regex, TokenRegex::compile(kGpt2Pattern));
      step.regex = std::move(regex);
    }
  } else {
    return unimplemented("{}.type '{}' is not supported (Split, ByteLevel, Sequence)", where, type);
  }
  data.pre_tokenizer.push_back(std::move(step));
  return {};
}

// --- post-processor --------------------------------------------------------------------------

Status parse_template(const json& p, std::string_view where, TokenizerData& data) {
  QSWAP_ASSIGN_OR_RETURN(const json* single, array_member(p, "single", where));
  const json* specials = member(p, "special_tokens");
  std::vector<TemplateItem> items;
  for (size_t i = 0; i < single->size(); ++i) {
    const json& item = (*single)[i];
    const std::string at = fmt::format("{}.single[{}]", where, i);
    TemplateItem out;
    if (const json* seq = member(item, "Sequence")) {
      const json* id = member(*seq, "id");
      if (id == nullptr || !id->is_string() || id->get_ref<const std::string&>() != "A") {
        return unimplemented("{}: only the sequence 'A' is supported in a single template", at);
      }
      out.is_sequence = true;
    } else if (const json* special = member(item, "SpecialToken")) {
      const json* id = member(*special, "id");
      if (id == nullptr) return data_loss("{}.SpecialToken: missing key 'id'", at);
      QSWAP_ASSIGN_OR_RETURN(std::string name, string_value(*id, at + ".SpecialToken.id"));
      const json* entry = specials == nullptr ? nullptr : member(*specials, name);
      if (entry == nullptr) {
        return data_loss("{}: special token '{}' is not in {}.special_tokens", at, name, where);
      }
      const std::string entry_where = fmt::format("{}.special_tokens['{}']", where, name);
      QSWAP_ASSIGN_OR_RETURN(const json* ids, array_member(*entry, "ids", entry_where));
      for (size_t k = 0; k < ids->size(); ++k) {
        QSWAP_ASSIGN_OR_RETURN(
            int32_t tid, token_id_value((*ids)[k], fmt::format("{}.ids[{}]", entry_where, k)));
        out.ids.push_back(tid);
      }
    } else {
      return data_loss("{}: expected a 'Sequence' or 'SpecialToken' item, got {}", at, item.dump());
    }
    items.push_back(std::move(out));
  }
  data.templates.push_back(std::move(items));
  return {};
}

Status parse_post_processor(const json* p, std::string_view where, TokenizerData& data) {
  if (null_or_absent(p)) return {};
  QSWAP_ASSIGN_OR_RETURN(std::string_view type, type_of(*p, where));
  if (type == "ByteLevel") return {};  // only trims offsets, which qswap does not report
  if (type == "TemplateProcessing") return parse_template(*p, where, data);
  if (type == "Sequence") {
    QSWAP_ASSIGN_OR_RETURN(const json* list, array_member(*p, "processors", where));
    for (size_t i = 0; i < list->size(); ++i) {
      QSWAP_RETURN_IF_ERROR(
          parse_post_processor(&(*list)[i], fmt::format("{}.processors[{}]", where, i), data));
    }
    return {};
  }
  return unimplemented("{}.type '{}' is not supported (TemplateProcessing, ByteLevel, Sequence)",
                       where, type);
}

// --- decoder ---------------------------------------------------------------------------------

Status check_decoder(const json* d, std::string_view where) {
  if (null_or_absent(d)) {
    return unimplemented("{} is null; only the ByteLevel decoder is supported", where);
  }
  QSWAP_ASSIGN_OR_RETURN(std::string_view type, type_of(*d, where));
  if (type == "ByteLevel") return {};
  if (type == "Sequence") {
    QSWAP_ASSIGN_OR_RETURN(const json* list, array_member(*d, "decoders", where));
    if (list->empty()) return unimplemented("{}.decoders is empty", where);
    for (size_t i = 0; i < list->size(); ++i) {
      QSWAP_RETURN_IF_ERROR(check_decoder(&(*list)[i], fmt::format("{}.decoders[{}]", where, i)));
    }
    return {};
  }
  return unimplemented("{}.type '{}' is not supported (only ByteLevel)", where, type);
}

// --- assembly --------------------------------------------------------------------------------

Status build_tables(TokenizerData& data, const std::vector<AddedToken>& added) {
  const StringIdMap& vocab = data.bpe->vocab();
  int64_t max_id = -1;
  for (const auto& [token, id] : vocab) max_id = std::max<int64_t>(max_id, id);
  for (const AddedToken& t : added) max_id = std::max<int64_t>(max_id, t.id);
  const auto size = static_cast<size_t>(max_id + 1);
  // Ids are dense in real files; a few huge ids would make the tables below absurdly large.
  if (size > 2 * (vocab.size() + added.size()) + 4096) {
    return data_loss("largest token id {} is far beyond the {} tokens of model.vocab and "
                     "added_tokens", max_id, vocab.size() + added.size());
  }
  data.token_text.assign(size, {});
  data.token_flags.assign(size, 0);
  for (const auto& [token, id] : vocab) {
    const auto i = static_cast<size_t>(id);
    if (data.token_flags[i] != 0) {
      return data_loss("model.vocab: id {} is given to both '{}' and '{}'", id,
                       data.token_text[i], token);
    }
    data.token_text[i] = token;
    data.token_flags[i] = TokenizerData::kPresent;
  }
  // Added tokens take precedence over the model vocabulary, as in Hugging Face.
  for (const AddedToken& t : added) {
    const auto id = static_cast<size_t>(t.id);
    data.token_text[id] = t.content;
    data.token_flags[id] = TokenizerData::kPresent | (t.special ? TokenizerData::kSpecial : 0);
    data.added_ids.insert_or_assign(t.content, t.id);
  }
  const ByteLevelTable& table = ByteLevelTable::get();
  data.token_bytes.resize(size);
  for (size_t id = 0; id < size; ++id) {
    data.token_bytes[id] = table.decode_token(data.token_text[id]);
  }

  // Matchers: special tokens first, then the others, each in file order (Hugging Face's order,
  // which decides between two tokens with the same text).
  std::vector<AddedToken> raw, normalized;
  std::vector<std::string> raw_patterns, normalized_patterns;
  for (int pass = 0; pass < 2; ++pass) {
    for (const AddedToken& t : added) {
      if (t.special != (pass == 0)) continue;
      if (t.normalized) {
        std::string pattern(t.content), scratch;
        for (const UnicodeNormalizer& n : data.normalizers) {
          pattern = std::string(n.normalize(pattern, scratch));
        }
        normalized.push_back(t);
        normalized_patterns.push_back(std::move(pattern));
      } else {
        raw.push_back(t);
        raw_patterns.push_back(t.content);
      }
    }
  }
  data.raw_tokens = AddedTokenMatcher(std::move(raw), raw_patterns);
  data.normalized_tokens = AddedTokenMatcher(std::move(normalized), normalized_patterns);
  return {};
}

std::optional<int32_t> lookup(const TokenizerData& data, std::string_view token) {
  if (const auto it = data.added_ids.find(token); it != data.added_ids.end()) return it->second;
  return data.bpe->find(token);
}

Status parse_config(std::string_view config_text, TokenizerData& data, bool& has_bos,
                    bool& has_eos) {
  QSWAP_ASSIGN_OR_RETURN(json config, parse_json(config_text));
  if (!config.is_object()) return data_loss("expected a JSON object, got {}", config.type_name());
  for (const char* key : {"bos_token", "eos_token"}) {
    const json* v = member(config, key);
    if (v == nullptr) continue;
    std::optional<int32_t> id;
    if (!v->is_null()) {
      const json* content = v->is_object() ? member(*v, "content") : v;
      if (content == nullptr) return data_loss("{}: missing key 'content'", key);
      QSWAP_ASSIGN_OR_RETURN(std::string token, string_value(*content, key));
      id = lookup(data, token);
      if (!id) return data_loss("{} '{}' is not a token of {}", key, token, data.name);
    }
    const bool bos = std::string_view(key) == "bos_token";
    (bos ? data.bos : data.eos) = id;
    (bos ? has_bos : has_eos) = true;
  }
  return {};
}

void default_special_ids(TokenizerData& data, bool has_bos, bool has_eos) {
  if (!has_bos) {
    for (const auto& tmpl : data.templates) {
      if (!tmpl.empty() && !tmpl.front().is_sequence && !tmpl.front().ids.empty()) {
        data.bos = tmpl.front().ids.front();
        break;
      }
    }
    for (std::string_view name : {"<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>"}) {
      if (data.bos) break;
      data.bos = lookup(data, name);
    }
  }
  if (!has_eos) {
    for (std::string_view name : {"<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>"}) {
      if (data.eos) break;
      data.eos = lookup(data, name);
    }
  }
}

Status parse_all(const json& root, TokenizerData& data) {
  if (!root.is_object()) return data_loss("expected a JSON object, got {}", root.type_name());
  QSWAP_RETURN_IF_ERROR(parse_model(root, data));
  QSWAP_ASSIGN_OR_RETURN(std::vector<AddedToken> added, parse_added_tokens(root));
  QSWAP_RETURN_IF_ERROR(parse_normalizer(member(root, "normalizer"), "normalizer", data));
  QSWAP_RETURN_IF_ERROR(parse_pre_tokenizer(member(root, "pre_tokenizer"), "pre_tokenizer", data));
  QSWAP_RETURN_IF_ERROR(
      parse_post_processor(member(root, "post_processor"), "post_processor", data));
  QSWAP_RETURN_IF_ERROR(check_decoder(member(root, "decoder"), "decoder"));
  return build_tables(data, added);
}

}  // namespace

Result<std::unique_ptr<TokenizerData>> parse_tokenizer_json(std::string_view json_text,
                                                            std::string_view config_json,
                                                            std::string_view name,
                                                            std::string_view config_name) {
  auto data = std::make_unique<TokenizerData>();
  data->name = std::string(name);
  Status status;
  try {
    auto root = parse_json(json_text);
    status = root.ok() ? parse_all(*root, *data) : root.status();
  } catch (const std::exception& e) {  // nlohmann or allocation: never let one escape
    status = data_loss("{}", e.what());
  }
  if (!status.ok()) return std::move(status).with_context(name);

  bool has_bos = false, has_eos = false;
  if (!config_json.empty()) {
    try {
      status = parse_config(config_json, *data, has_bos, has_eos);
    } catch (const std::exception& e) {
      status = data_loss("{}", e.what());
    }
    if (!status.ok()) return std::move(status).with_context(config_name);
  }
  default_special_ids(*data, has_bos, has_eos);
  return data;
}

}  // namespace qswap
