#include "qswap/model/added_tokens.h"

#include <algorithm>

#include "qswap/model/unicode_text.h"

namespace qswap {
namespace {

bool child_before(const std::pair<unsigned char, int32_t>& child, unsigned char byte) {
  return child.first < byte;
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens,
                                     const std::vector<std::string>& patterns)
    : tokens_(std::move(tokens)) {
  trie_.emplace_back();
  for (size_t t = 0; t < tokens_.size(); ++t) {
    const std::string& pattern = patterns[t];
    if (pattern.empty()) continue;
    size_t node = 0;
    for (char ch : pattern) {
      const auto byte = static_cast<unsigned char>(ch);
      auto& children = trie_[node].children;
      auto it = std::lower_bound(children.begin(), children.end(), byte, child_before);
      if (it == children.end() || it->first != byte) {
        const auto fresh = static_cast<int32_t>(trie_.size());
        it = children.insert(it, {byte, fresh});
        trie_.emplace_back();  // invalidates `children`, not the index we hold
        node = static_cast<size_t>(fresh);
      } else {
        node = static_cast<size_t>(it->second);
      }
    }
    if (trie_[node].token < 0) trie_[node].token = static_cast<int32_t>(t);  // first one wins
  }
}

std::pair<size_t, int32_t> AddedTokenMatcher::longest_at(std::string_view text,
                                                         size_t pos) const {
  std::pair<size_t, int32_t> best{0, -1};
  size_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const auto& children = trie_[node].children;
    const auto it = std::lower_bound(children.begin(), children.end(), byte, child_before);
    if (it == children.end() || it->first != byte) break;
    node = static_cast<size_t>(it->second);
    if (trie_[node].token >= 0) best = {i + 1 - pos, trie_[node].token};
  }
  return best;
}

void AddedTokenMatcher::split(std::string_view text, std::vector<TextSegment>& out) const {
  if (text.empty()) return;
  size_t done = 0;  // end of the last emitted segment
  size_t pos = 0;
  while (pos < text.size() && !tokens_.empty()) {
    const auto [len, index] = longest_at(text, pos);
    if (index < 0) {
      ++pos;
      continue;
    }
    const AddedToken& tok = tokens_[static_cast<size_t>(index)];
    size_t begin = pos;
    size_t end = pos + len;
    pos = end;  // matches never overlap, even one rejected below
    if (tok.single_word) {
      size_t before = begin;
      size_t after = end;
      const bool word_before = begin > 0 && is_word_char(utf8_prev(text, before));
      const bool word_after = end < text.size() && is_word_char(utf8_next(text, after));
      if (word_before || word_after) continue;
    }
    if (tok.lstrip) {
      size_t p = begin;
      while (p > done) {
        size_t q = p;
        if (!is_white_space(utf8_prev(text, q))) break;
        p = q;
      }
      begin = p;
    }
    if (tok.rstrip) {
      while (end < text.size()) {
        size_t q = end;
        if (!is_white_space(utf8_next(text, q))) break;
        end = q;
      }
      pos = end;
    }
    if (done < begin) out.push_back({done, begin, -1});
    out.push_back({begin, end, index});
    done = end;
  }
  if (done < text.size()) out.push_back({done, text.size(), -1});
}

}  // namespace qswap
