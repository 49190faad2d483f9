// The BPE model of a tokenizer.json: vocabulary, merges by rank, and the merge loop for one
// pre-tokenized word (priority queue over a linked list of symbols, O(n log n) per word) with a
// bounded cache of recent words.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "qswap/base/status.h"

namespace qswap {

// std::string keys looked up by string_view without a copy.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct BpeOptions {
  std::optional<int32_t> unk_id;  // unknown characters become this id (else they are dropped)
  bool fuse_unk = false;          // consecutive unknown characters share one unk id
  bool ignore_merges = false;     // a word found whole in the vocabulary is one token
};

class BpeModel {
 public:
  // `merges` in rank order; each pair must name vocabulary tokens whose concatenation is also in
  // the vocabulary. `where` prefixes error messages ("tokenizer.json: model.merges").
  static Result<std::unique_ptr<BpeModel>> create(
      StringIdMap vocab, const std::vector<std::pair<std::string, std::string>>& merges,
      BpeOptions options, std::string_view where);

  // Appends the ids of one pre-tokenized word (already byte-level spelled).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  std::optional<int32_t> find(std::string_view token) const;
  const StringIdMap& vocab() const { return vocab_; }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  BpeModel() = default;
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
  const Merge* find_merge(int32_t left, int32_t right) const;

  StringIdMap vocab_;
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) -> merge
  BpeOptions options_;

  // Cache of word -> ids. Bounded: once full it stops growing (like Hugging Face's).
  static constexpr size_t kCacheCapacity = 1 << 16;
  static constexpr size_t kMaxCachedWordBytes = 256;
  mutable std::shared_mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>>
      cache_;
};

}  // namespace qswap
