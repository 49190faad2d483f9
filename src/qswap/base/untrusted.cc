#include "qswap/base/untrusted.h"

#include <fmt/format.h>

namespace qswap {

std::string quote_untrusted(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return fmt::format("'{}'", s);
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<uint8_t>(s[cut]) & 0xC0) == 0x80) --cut;  // stay on a code point
  return fmt::format("'{}...' ({} bytes)", s.substr(0, cut), s.size());
}

}  // namespace qswap
