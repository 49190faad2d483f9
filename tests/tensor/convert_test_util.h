// Shared by the conversion tests: the encode golden files (the decode ones: test_util.h), a
// per-format description, and fresh random inputs.
#pragma once

#include <bit>
#include <cstdint>
#include <cstdlib>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "qswap/tensor/convert.h"
#include "test_util.h"

namespace qswap::test {

struct EncodeGolden {
  std::vector<uint32_t> inputs;   // f32 bits
  std::vector<uint32_t> outputs;  // codes
};

// encode_<fmt>.bin: u32 n, n f32 inputs, n codes of code_bytes each.
inline EncodeGolden read_encode_golden(const std::string& fmt, size_t code_bytes) {
  std::vector<uint8_t> bytes = read_golden_bytes("encode_" + fmt + ".bin");
  EncodeGolden g;
  if (bytes.size() < 4) {
    ADD_FAILURE() << "encode_" << fmt << ".bin is truncated";
    return g;
  }
  size_t n = le32(bytes.data());
  if (bytes.size() != 4 + n * (4 + code_bytes)) {
    ADD_FAILURE() << "encode_" << fmt << ".bin has " << bytes.size() << " bytes for " << n
                  << " inputs";
    return g;
  }
  const uint8_t* p = bytes.data() + 4;
  for (size_t i = 0; i < n; ++i) g.inputs.push_back(le32(p + 4 * i));
  p += 4 * n;
  for (size_t i = 0; i < n; ++i) {
    g.outputs.push_back(code_bytes == 1 ? p[i] : uint32_t{p[2 * i]} | uint32_t{p[2 * i + 1]} << 8);
  }
  return g;
}

inline uint32_t bits(float x) { return std::bit_cast<uint32_t>(x); }
inline float from_bits(uint32_t u) { return std::bit_cast<float>(u); }
inline bool f32_is_nan(uint32_t u) { return (u & 0x7FFFFFFF) > 0x7F800000; }
inline std::vector<float> to_floats(const std::vector<uint32_t>& u) {
  std::vector<float> out(u.size());
  for (size_t i = 0; i < u.size(); ++i) out[i] = from_bits(u[i]);
  return out;
}

// One narrow format, through the one-value reference functions.
struct Format {
  const char* name;     // golden file stem
  size_t code_bytes;
  uint32_t sign_bit;    // 0 for e8m0 (no sign)
  bool (*is_nan)(uint32_t code);
  uint32_t (*decode)(uint32_t code);   // -> f32 bits
  uint32_t (*encode)(uint32_t f32);    // f32 bits -> code
  // Whether torch encodes NaN to the very code qswap does (all but bf16: torch's is 0xFFFF).
  bool torch_nan_code_exact;
};

inline void PrintTo(const Format& f, std::ostream* os) { *os << f.name; }

inline const std::vector<Format>& formats() {
  static const std::vector<Format> all = {
      {"bf16", 2, 0x8000, [](uint32_t c) { return (c & 0x7FFF) > 0x7F80; },
       [](uint32_t c) { return bits(bf16_to_f32(static_cast<uint16_t>(c))); },
       [](uint32_t u) { return uint32_t{f32_to_bf16(from_bits(u))}; }, false},
      {"f16", 2, 0x8000, [](uint32_t c) { return (c & 0x7FFF) > 0x7C00; },
       [](uint32_t c) { return bits(f16_to_f32(static_cast<uint16_t>(c))); },
       [](uint32_t u) { return uint32_t{f32_to_f16(from_bits(u))}; }, true},
      {"e4m3", 1, 0x80, [](uint32_t c) { return (c & 0x7F) == 0x7F; },
       [](uint32_t c) { return bits(e4m3_to_f32(static_cast<uint8_t>(c))); },
       [](uint32_t u) { return uint32_t{f32_to_e4m3(from_bits(u))}; }, true},
      {"e5m2", 1, 0x80, [](uint32_t c) { return (c & 0x7F) > 0x7C; },
       [](uint32_t c) { return bits(e5m2_to_f32(static_cast<uint8_t>(c))); },
       [](uint32_t u) { return uint32_t{f32_to_e5m2(from_bits(u))}; }, true},
      {"e8m0", 1, 0, [](uint32_t c) { return c == 0xFF; },
       [](uint32_t c) { return bits(e8m0_to_f32(static_cast<uint8_t>(c))); },
       [](uint32_t u) { return uint32_t{f32_to_e8m0(from_bits(u))}; }, true},
  };
  return all;
}

// f32 bit patterns: a third anything (NaN payloads included), a third around the narrow
// formats' ranges, a third from `pool` (the golden boundary inputs).
inline std::vector<uint32_t> random_f32_bits(std::mt19937_64& rng, size_t n,
                                             const std::vector<uint32_t>& pool) {
  std::vector<uint32_t> out(n);
  std::uniform_int_distribution<uint32_t> any;
  std::uniform_int_distribution<uint32_t> exp(100, 160);
  std::uniform_int_distribution<size_t> pick(0, pool.empty() ? 0 : pool.size() - 1);
  for (size_t i = 0; i < n; ++i) {
    uint32_t r = any(rng);
    switch (r % 3) {
      case 0: out[i] = any(rng); break;
      case 1: out[i] = (any(rng) & 0x807FFFFF) | exp(rng) << 23; break;
      default: out[i] = pool.empty() ? any(rng) : pool[pick(rng)]; break;
    }
  }
  return out;
}

// Every golden encode input of every format, as one pool of interesting f32 values.
inline const std::vector<uint32_t>& golden_input_pool() {
  static const std::vector<uint32_t> pool = [] {
    std::vector<uint32_t> all;
    for (const Format& f : formats()) {
      EncodeGolden g = read_encode_golden(f.name, f.code_bytes);
      all.insert(all.end(), g.inputs.begin(), g.inputs.end());
    }
    return all;
  }();
  return pool;
}

}  // namespace qswap::test
