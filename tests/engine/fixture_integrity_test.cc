// The committed fixtures are exactly what scripts/fixtures/make_fixtures.py recorded: a fixture
// regenerated with different weights, or a golden edited by hand, fails here loudly. Every model
// directory also reads cleanly and holds exactly the tensors its architecture expects.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <set>

#include "fixtures.h"
#include "qswap/base/mapped_file.h"
#include "qswap/engine/inspect.h"
#include "qswap/model/tokenizer.h"

namespace qswap {
namespace {

using testing::data_dir;
using testing::read_json;

std::string sha256_hex(std::span<const std::byte> bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

TEST(FixtureIntegrityTest, FilesMatchTheRecordedChecksums) {
  const nlohmann::json manifest = read_json(data_dir() / "fixtures.sha256.json");
  ASSERT_FALSE(manifest.is_discarded());
  ASSERT_EQ(manifest.at("format"), "qswap-fixtures-sha256/1");
  const auto& files = manifest.at("files");
  ASSERT_GE(files.size(), 50u);
  std::set<std::string> listed;
  for (const auto& [path, sha] : files.items()) {
    listed.insert(path);
    auto file = MappedFile::open(data_dir() / path);
    ASSERT_TRUE(file.ok()) << file.status().to_string();
    EXPECT_EQ(sha256_hex(file->bytes()), sha.get<std::string>()) << path << " differs from what the script recorded";
  }
  // Every file of a fixture directory is in the manifest: nothing was added behind its back.
  for (const std::string& fixture : testing::golden_fixtures()) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(data_dir() / fixture)) {
      if (!entry.is_regular_file()) continue;
      const std::string rel = std::filesystem::relative(entry.path(), data_dir()).string();
      EXPECT_TRUE(listed.contains(rel)) << rel << " is not in fixtures.sha256.json";
    }
  }
}

TEST(FixtureIntegrityTest, EveryModelHoldsExactlyItsArchitecturesTensors) {
  ASSERT_EQ(testing::golden_fixtures().size(), 6u);
  for (const std::string& fixture : testing::golden_fixtures()) {
    auto report = inspect_checkpoint(data_dir() / fixture);
    ASSERT_TRUE(report.ok()) << fixture << ": " << report.status().to_string();
    EXPECT_TRUE(report->missing.empty()) << fixture;
    EXPECT_TRUE(report->unexpected.empty()) << fixture;
    EXPECT_TRUE(report->mismatched.empty()) << fixture;
    EXPECT_EQ(report->dtype_bytes.size(), 1u) << fixture << ": all weights bf16";
    EXPECT_TRUE(report->dtype_bytes.contains("bf16")) << fixture;
  }
  auto mul = inspect_checkpoint(data_dir() / "arith-mul");
  ASSERT_TRUE(mul.ok());
  std::set<std::string> shards;
  for (const TensorInfo& t : mul->tensors) shards.insert(t.location);
  EXPECT_GE(shards.size(), 2u) << "arith-mul is saved in several shards with an index";
}

// Token ids of the `tokenizers` library for each fixture's stress strings, through our tokenizer.
TEST(FixtureIntegrityTest, TokenizerMatchesTheTokenizersLibrary) {
  for (const std::string& fixture : testing::golden_fixtures()) {
    SCOPED_TRACE(fixture);
    auto tok = Tokenizer::load(data_dir() / fixture / "tokenizer.json");
    ASSERT_TRUE(tok.ok()) << tok.status().to_string();
    const nlohmann::json cases = read_json(data_dir() / fixture / "golden" / "tokenizer_cases.json");
    ASSERT_FALSE(cases.is_discarded());
    ASSERT_GE(cases.at("cases").size(), 20u);
    for (const auto& c : cases.at("cases")) {
      const std::string text = c.at("text");
      const auto ids = c.at("ids").get<std::vector<int32_t>>();
      EXPECT_EQ(tok->encode(text, true), ids) << text;
      EXPECT_EQ(tok->encode(text, false), c.at("ids_no_special").get<std::vector<int32_t>>()) << text;
      EXPECT_EQ(tok->decode(ids, false), c.at("decoded").get<std::string>()) << text;
      EXPECT_EQ(tok->decode(ids, true), c.at("decoded_skip_special").get<std::string>()) << text;
    }
  }
}

}  // namespace
}  // namespace qswap
