#include "qswap/io/json_strict.h"

#include <string>
#include <utility>
#include <vector>

namespace qswap {
namespace {

using nlohmann::json;

// Builds the DOM like nlohmann's own SAX DOM parser, but refuses repeated keys and deep nesting.
class StrictDomBuilder final : public nlohmann::json_sax<json> {
 public:
  explicit StrictDomBuilder(size_t max_depth) : max_depth_(max_depth) {}

  bool null() override { return add(json(nullptr)) != nullptr; }
  bool boolean(bool v) override { return add(json(v)) != nullptr; }
  bool number_integer(number_integer_t v) override { return add(json(v)) != nullptr; }
  bool number_unsigned(number_unsigned_t v) override { return add(json(v)) != nullptr; }
  bool number_float(number_float_t v, const string_t& /*text*/) override {
    return add(json(v)) != nullptr;
  }
  bool string(string_t& v) override { return add(json(std::move(v))) != nullptr; }
  bool binary(binary_t& /*v*/) override { return fail("binary values are not JSON"); }

  bool start_object(size_t /*elements*/) override { return open(json::object()); }
  bool key(string_t& k) override {
    auto& object = stack_.back()->get_ref<json::object_t&>();
    auto [it, inserted] = object.emplace(k, nullptr);
    if (!inserted) {
      return fail(stack_.size() == 1 ? fmt::format("duplicate key '{}'", k)
                                     : fmt::format("duplicate key '{}' in '{}'", k, path()));
    }
    slot_ = &it->second;
    key_ = k;
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(size_t /*elements*/) override { return open(json::array()); }
  bool end_array() override { return close(); }

  bool parse_error(size_t position, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& ex) override {
    std::string_view what = ex.what();
    // Drop nlohmann's "[json.exception.parse_error.101] " tag.
    if (size_t end = what.find("] "); what.starts_with("[json.exception") && end != what.npos) {
      what.remove_prefix(end + 2);
    }
    return fail(fmt::format("invalid JSON at byte {}: {}", position, what));
  }

  json take_root() { return std::move(root_); }
  const std::string& error() const { return error_; }

 private:
  // Places `value` where the grammar says the next value goes and returns it.
  json* add(json value) {
    if (stack_.empty()) {
      root_ = std::move(value);
      return &root_;
    }
    json* parent = stack_.back();
    if (parent->is_array()) {
      parent->push_back(std::move(value));
      return &parent->back();
    }
    *slot_ = std::move(value);
    return slot_;
  }
  bool open(json container) {
    if (stack_.size() >= max_depth_) {
      return fail(fmt::format("JSON nested deeper than {} levels", max_depth_));
    }
    std::string name;
    if (!stack_.empty()) name = stack_.back()->is_object() ? key_ : "[]";
    stack_.push_back(add(std::move(container)));
    names_.push_back(std::move(name));
    return true;
  }
  bool close() {
    stack_.pop_back();
    names_.pop_back();
    return true;
  }
  // "/a/shape": where the innermost open container sits, for error messages.
  std::string path() const {
    std::string p;
    for (size_t i = 1; i < names_.size(); ++i) p += "/" + names_[i];
    return p;
  }
  bool fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return false;
  }

  size_t max_depth_;
  json root_;
  std::vector<json*> stack_;        // open containers, innermost last (stable: see add())
  std::vector<std::string> names_;  // per open container, the key (or "[]") it sits under
  std::string key_;                 // the last key read
  json* slot_ = nullptr;            // its value slot
  std::string error_;
};

// Length of the UTF-8 sequence starting at text[i] if it is well formed, else 0.
size_t utf8_sequence_length(std::string_view text, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // past U+10FFFF
  } else {
    return 0;
  }
  if (text.size() - i < len) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  return len;
}

}  // namespace

std::optional<size_t> find_invalid_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    size_t len = utf8_sequence_length(text, i);
    if (len == 0) return i;
    i += len;
  }
  return std::nullopt;
}

std::string_view json_type_name(const nlohmann::json& value) {
  if (value.is_number_integer()) return "integer";
  if (value.is_number_float()) return "number";
  return value.type_name();
}

Result<nlohmann::json> parse_json_strict(std::string_view text, size_t max_depth) {
  if (std::optional<size_t> bad = find_invalid_utf8(text)) {
    return data_loss("not valid UTF-8 (byte 0x{:02x} at offset {})",
                     static_cast<unsigned char>(text[*bad]), *bad);
  }
  // nlohmann's lexer ends the input at a NUL byte, so "{}\0garbage" would parse; JSON has no raw
  // NUL anywhere (inside strings it must be escaped).
  if (size_t nul = text.find('\0'); nul != text.npos) {
    return data_loss("invalid JSON: NUL byte at offset {}", nul);
  }
  // nlohmann skips a byte-order mark; JSON (RFC 8259) and the Rust reference do not.
  if (text.starts_with("\xEF\xBB\xBF")) return data_loss("invalid JSON: starts with a byte-order mark");
  StrictDomBuilder builder(max_depth);
  bool ok = false;
  try {
    ok = json::sax_parse(text.begin(), text.end(), &builder, json::input_format_t::json,
                         /*strict=*/true, /*ignore_comments=*/false);
  } catch (const std::exception& e) {  // only allocation failure is expected here
    return data_loss("cannot parse JSON: {}", e.what());
  }
  if (!ok) return data_loss("{}", builder.error().empty() ? "invalid JSON" : builder.error());
  return builder.take_root();
}

}  // namespace qswap
