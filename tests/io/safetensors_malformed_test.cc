// Every entry of tests/data/malformed must be refused with a clear error, never a crash (a file
// added there later is covered without touching this test). expected_errors.json gives, per entry,
// a substring the message must contain; it is checked where present.
// Files are opened as single safetensors files; directories as model directories.
#include <gtest/gtest.h>

#include <algorithm>

#include "io_test_util.h"
#include "qswap/io/safetensors.h"

namespace qswap {
namespace {

using nlohmann::json;

constexpr std::string_view kManifestName = "expected_errors.json";

std::filesystem::path malformed_dir() { return testing::test_data_dir() / "malformed"; }

std::vector<std::string> corpus_entries() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(malformed_dir(), ec)) {
    std::string name = e.path().filename().string();
    if (name != kManifestName && name != "README.md") out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

const json& manifest() {
  static const json kManifest = testing::read_json(malformed_dir() / kManifestName);
  return kManifest;
}

// Opening fails, or reading some tensor of what opened fails.
Status open_and_read_all(Result<std::unique_ptr<TensorSource>> source) {
  if (!source.ok()) return source.status();
  for (const TensorInfo& t : (*source)->tensors()) {
    std::vector<std::byte> buf(t.nbytes);
    QSWAP_RETURN_IF_ERROR((*source)->read(t, 0, buf));
    QSWAP_RETURN_IF_ERROR((*source)->borrow(t).status());
  }
  return {};
}

class MalformedCorpusTest : public ::testing::TestWithParam<std::string> {};

TEST_P(MalformedCorpusTest, IsRefusedWithAClearError) {
  const std::string& name = GetParam();
  std::filesystem::path path = malformed_dir() / name;
  const bool is_dir = std::filesystem::is_directory(path);
  Status status = open_and_read_all(is_dir ? open_safetensors_dir(path) : open_safetensors(path));
  ASSERT_FALSE(status.ok()) << name << " was accepted";
  EXPECT_NE(status.message().find(name), std::string::npos) << "error does not name the file: " << status.message();
  auto it = manifest().find(name);
  if (it != manifest().end()) {
    std::string expected = (*it)["error"].get<std::string>();
    EXPECT_NE(status.message().find(expected), std::string::npos)
        << "expected \"" << expected << "\" in: " << status.message();
  }
  if (!is_dir) {  // the in-memory parser gives the same verdict
    std::vector<std::byte> image = testing::read_bytes(path);
    Status in_memory = open_and_read_all(open_safetensors_memory(image, name));
    ASSERT_FALSE(in_memory.ok());
    EXPECT_EQ(in_memory.code(), status.code());
    if (it != manifest().end()) {
      EXPECT_NE(in_memory.message().find((*it)["error"].get<std::string>()), std::string::npos) << in_memory.message();
    }
  }
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return s;
}

INSTANTIATE_TEST_SUITE_P(Corpus, MalformedCorpusTest, ::testing::ValuesIn(corpus_entries()), test_name);

TEST(MalformedCorpusManifestTest, ListsOnlyExistingEntriesAndCoversTheKinds) {
  std::vector<std::string> entries = corpus_entries();
  EXPECT_GE(entries.size(), 60u);
  for (const auto& [name, expected] : manifest().items()) {
    EXPECT_TRUE(std::find(entries.begin(), entries.end(), name) != entries.end()) << "stale entry " << name;
    EXPECT_FALSE(expected["error"].get<std::string>().empty()) << name;
  }
}

}  // namespace
}  // namespace qswap
