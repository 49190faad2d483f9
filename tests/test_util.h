// Shared by the tests: the run's random seed and ISA-capped fixtures.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>

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

}  // namespace qswap::test
