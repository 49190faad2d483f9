#include "qswap/base/status.h"

#include <gtest/gtest.h>

#include <memory>

namespace qswap {
namespace {

Result<int> parse_positive(int x) {
  if (x <= 0) return invalid_argument("expected a positive value, got {}", x);
  return x;
}

Result<int> doubled(int x) {
  QSWAP_ASSIGN_OR_RETURN(int v, parse_positive(x));
  return 2 * v;
}

Status check_all(std::initializer_list<int> xs) {
  for (int x : xs) QSWAP_RETURN_IF_ERROR(parse_positive(x).status());
  return {};
}

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.to_string(), "ok");
}

TEST(StatusTest, ErrorCarriesCodeAndFormattedMessage) {
  Status s = data_loss("tensor '{}' has wrong shape; expected {}, got {}", "w", "[2, 3]", "[3, 2]");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(s.to_string(), "data loss: tensor 'w' has wrong shape; expected [2, 3], got [3, 2]");
}

TEST(StatusTest, ContextIsPrependedOnlyToErrors) {
  EXPECT_EQ(io_error("short read").with_context("model.safetensors").message(),
            "model.safetensors: short read");
  EXPECT_TRUE(Status().with_context("file").ok());
  EXPECT_EQ(Status().with_context("file").message(), "");
}

TEST(ResultTest, ValueAndErrorPropagate) {
  Result<int> good = doubled(21);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 42);
  Result<int> bad = doubled(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "expected a positive value, got -1");
  EXPECT_TRUE(check_all({1, 2, 3}).ok());
  EXPECT_EQ(check_all({1, 0, 3}).message(), "expected a positive value, got 0");
}

TEST(ResultTest, HoldsMoveOnlyValues) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

}  // namespace
}  // namespace qswap
