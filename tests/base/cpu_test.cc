#include "qswap/base/cpu.h"

#include <gtest/gtest.h>

namespace qswap {
namespace {

class IsaCapTest : public ::testing::Test {
 protected:
  void TearDown() override { set_isa_cap(IsaLevel::kAvx512); }
};

TEST_F(IsaCapTest, CapLowersTheLevelAndClearsFeatures) {
  set_isa_cap(IsaLevel::kScalar);
  EXPECT_EQ(isa_level(), IsaLevel::kScalar);
  CpuFeatures f = cpu_features();
  EXPECT_FALSE(f.avx2);
  EXPECT_FALSE(f.avx512);
  EXPECT_FALSE(f.avx512_bf16);
  EXPECT_EQ(describe_cpu(), "scalar");
}

TEST_F(IsaCapTest, LevelNeverExceedsWhatIsDetected) {
  set_isa_cap(IsaLevel::kAvx512);
  const CpuFeatures& hw = detected_cpu_features();
  IsaLevel level = isa_level();
  EXPECT_TRUE(level != IsaLevel::kAvx512 || hw.avx512);
  EXPECT_TRUE(level < IsaLevel::kAvx2 || hw.avx2);
  // Feature implications that cpuid decoding must respect.
  EXPECT_TRUE(!hw.avx512_bf16 || hw.avx512);
  EXPECT_TRUE(!hw.avx512_vbmi || hw.avx512);
  EXPECT_TRUE(!hw.gfni || hw.avx512);
  EXPECT_TRUE(!hw.avx512 || hw.avx2);
}

}  // namespace
}  // namespace qswap
