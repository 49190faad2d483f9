// Shared by the tests: the run's random seed, ISA-capped fixtures and the dtype golden files
// (tests/data/dtype, written by scripts/goldens/make_dtype_goldens.py with torch).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "qswap/base/cpu.h"

namespace qswap::test {

// Fresh per run; QSWAP_TEST_SEED=<seed> replays a failure. Printed once.
inline uint64_t run_seed() {
  static const uint64_t seed = [] {
    const char* env = std::getenv("QSWAP_TEST_SEED");
    uint64_t s = env != nullptr ? std::strtoull(env, nullptr, 10) : std::random_device{}();
    std::cerr << "test seed: " << s << " (QSWAP_TEST_SEED=" << s << " replays)\n";
    return s;
  }();
  return seed;
}

// Runs each test with the ISA level capped to the parameter, then restores the level in force.
class IsaTest : public ::testing::TestWithParam<IsaLevel> {
 protected:
  void SetUp() override {
    saved_ = isa_level();
    set_isa_cap(GetParam());
  }
  void TearDown() override { set_isa_cap(saved_); }

 private:
  IsaLevel saved_ = IsaLevel::kScalar;
};

inline std::string isa_param_name(const ::testing::TestParamInfo<IsaLevel>& info) {
  return info.param == IsaLevel::kScalar ? "Scalar" : "Native";
}

inline std::vector<uint8_t> read_golden_bytes(const std::string& file) {
  std::string path = std::string(QSWAP_TEST_DATA_DIR) + "/dtype/" + file;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline uint32_t le32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

// decode_<fmt>.bin: the f32 bits of every code.
inline std::vector<uint32_t> read_decode_golden(const std::string& fmt, size_t codes) {
  std::vector<uint8_t> bytes = read_golden_bytes("decode_" + fmt + ".bin");
  EXPECT_EQ(bytes.size(), codes * 4) << "decode_" << fmt << ".bin";
  std::vector<uint32_t> out;
  for (size_t i = 0; i + 4 <= bytes.size(); i += 4) out.push_back(le32(&bytes[i]));
  return out;
}

}  // namespace qswap::test
