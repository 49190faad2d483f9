#include "qswap/model/bpe.h"

#include <algorithm>
#include <mutex>

#include "qswap/model/unicode_text.h"

namespace qswap {
namespace {

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
         static_cast<uint32_t>(right);
}

struct Symbol {
  int32_t id;
  int32_t prev;  // index of the previous live symbol, -1 at the start
  int32_t next;  // index of the next live symbol, -1 at the end
  int32_t len;   // bytes of the word it covers; 0 once merged into its left neighbour
};

// A candidate merge of the symbol at `pos` with its right neighbour.
struct Candidate {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
};

// Heap order: lowest rank first, then leftmost, as in Hugging Face's Word::merge_all.
struct CandidateAfter {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};

}  // namespace

Result<std::unique_ptr<BpeModel>> BpeModel::create(
    StringIdMap vocab, const std::vector<std::pair<std::string, std::string>>& merges,
    BpeOptions options, std::string_view where) {
  std::unique_ptr<BpeModel> model(new BpeModel());
  model->merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    const auto ia = vocab.find(a);
    const auto ib = vocab.find(b);
    const auto iab = vocab.find(a + b);
    const char* missing = ia == vocab.end() ? "left token" : ib == vocab.end() ? "right token"
                          : iab == vocab.end() ? "merged token" : nullptr;
    if (missing != nullptr) {
      return data_loss("{}[{}] ('{}' + '{}'): {} is not in model.vocab", where, rank, a, b,
                       missing);
    }
    // A later duplicate overrides an earlier one, as when Hugging Face builds its merge map.
    model->merges_.insert_or_assign(pair_key(ia->second, ib->second),
                                    Merge{static_cast<int32_t>(rank), iab->second});
  }
  model->vocab_ = std::move(vocab);
  model->options_ = options;
  return model;
}

std::optional<int32_t> BpeModel::find(std::string_view token) const {
  const auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const BpeModel::Merge* BpeModel::find_merge(int32_t left, int32_t right) const {
  const auto it = merges_.find(pair_key(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    if (const auto id = find(word)) {
      out.push_back(*id);
      return;
    }
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    std::shared_lock lock(cache_mutex_);
    const auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::unique_lock lock(cache_mutex_);
    if (cache_.size() < kCacheCapacity) {
      cache_.try_emplace(std::string(word), out.begin() + static_cast<std::ptrdiff_t>(first),
                         out.end());
    }
  }
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  // Initial symbols: one per character found in the vocabulary; unknown characters become the
  // unk id (fused when asked) or are dropped.
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  auto add = [&](int32_t id, int32_t len) {
    const auto index = static_cast<int32_t>(symbols.size());
    if (!symbols.empty()) symbols.back().next = index;
    symbols.push_back(Symbol{id, index - 1, -1, len});
  };
  int32_t pending_unk_len = 0;
  for (size_t pos = 0; pos < word.size();) {
    const size_t start = pos;
    utf8_next(word, pos);
    pos = std::min(pos, word.size());
    const auto len = static_cast<int32_t>(pos - start);
    if (const auto id = find(word.substr(start, pos - start))) {
      if (pending_unk_len > 0) add(*options_.unk_id, pending_unk_len);
      pending_unk_len = 0;
      add(*id, len);
    } else if (options_.unk_id) {
      if (pending_unk_len > 0 && !options_.fuse_unk) {
        add(*options_.unk_id, pending_unk_len);
        pending_unk_len = 0;
      }
      pending_unk_len += len;
    }
  }
  if (pending_unk_len > 0) add(*options_.unk_id, pending_unk_len);

  std::vector<Candidate> heap;
  heap.reserve(symbols.size());
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const Merge* m = find_merge(symbols[i].id, symbols[i + 1].id)) {
      heap.push_back(Candidate{m->rank, static_cast<int32_t>(i), m->new_id});
    }
  }
  std::make_heap(heap.begin(), heap.end(), CandidateAfter{});
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), CandidateAfter{});
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[static_cast<size_t>(top.pos)];
    if (left.len == 0 || left.next < 0) continue;
    const Symbol right = symbols[static_cast<size_t>(left.next)];
    // Entries go stale when a neighbour merged first; the pair must still make this token.
    const Merge* still = find_merge(left.id, right.id);
    if (still == nullptr || still->new_id != top.new_id) continue;
    symbols[static_cast<size_t>(left.next)].len = 0;
    left.id = top.new_id;
    left.len += right.len;
    left.next = right.next;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = top.pos;
    if (left.prev >= 0) {
      if (const Merge* m = find_merge(symbols[static_cast<size_t>(left.prev)].id, left.id)) {
        heap.push_back(Candidate{m->rank, left.prev, m->new_id});
        std::push_heap(heap.begin(), heap.end(), CandidateAfter{});
      }
    }
    if (left.next >= 0) {
      if (const Merge* m = find_merge(left.id, symbols[static_cast<size_t>(left.next)].id)) {
        heap.push_back(Candidate{m->rank, top.pos, m->new_id});
        std::push_heap(heap.begin(), heap.end(), CandidateAfter{});
      }
    }
  }
  for (const Symbol& s : symbols) {
    if (s.len != 0) out.push_back(s.id);
  }
}

}  // namespace qswap
