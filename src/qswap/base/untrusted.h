// Helpers for bytes that come from outside (file headers, network frames): quoting them in error
// messages without flooding the log, and reading little-endian integers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace qswap {

// 'text', or 'the first max bytes...' (N bytes), cut on a UTF-8 code point boundary.
std::string quote_untrusted(std::string_view s, size_t max_bytes = 64);

// The `bytes`-byte little-endian unsigned integer at p (bytes <= 8).
inline uint64_t load_le(const std::byte* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

}  // namespace qswap
