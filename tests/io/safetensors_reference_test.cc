// Files written by the reference implementation (Python safetensors 0.8.0, huggingface_hub 2.4.0;
// scripts/goldens/make_safetensors_corpus.py) read back exactly as manifest.json describes them.
#include <gtest/gtest.h>

#include "io_test_util.h"
#include "qswap/io/safetensors.h"

namespace qswap {
namespace {

using nlohmann::json;
using testing::from_hex;
using testing::test_data_dir;

std::filesystem::path valid_dir() { return test_data_dir() / "safetensors"; }

void expect_matches_manifest(const TensorSource& source, const json& want, const std::string& what) {
  SCOPED_TRACE(what);
  std::vector<std::string> order;
  for (const TensorInfo& t : source.tensors()) order.push_back(t.name);
  EXPECT_EQ(order, want["order"].get<std::vector<std::string>>());
  EXPECT_EQ(source.metadata(), (want["metadata"].get<std::map<std::string, std::string>>()));
  ASSERT_EQ(source.tensors().size(), want["tensors"].size());
  size_t total = 0;
  for (const auto& [name, w] : want["tensors"].items()) {
    SCOPED_TRACE(name);
    const TensorInfo* t = source.find(name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(dtype_info(t->dtype).safetensors, w["dtype"].get<std::string>());
    EXPECT_EQ(t->shape, w["shape"].get<Shape>());
    std::vector<std::byte> expected = from_hex(w["hex"].get<std::string>());
    EXPECT_EQ(t->nbytes, expected.size());
    std::vector<std::byte> got(t->nbytes);
    ASSERT_TRUE(source.read(*t, 0, got).ok());
    EXPECT_EQ(got, expected);
    Result<std::span<const std::byte>> view = source.borrow(*t);
    ASSERT_TRUE(view.ok());
    EXPECT_TRUE(std::equal(view->begin(), view->end(), expected.begin(), expected.end()));
    total += expected.size();
  }
  EXPECT_EQ(source.total_bytes(), total);
}

TEST(SafetensorsReferenceTest, ManifestCoversEveryDtypeAndShapeKind) {
  json manifest = testing::read_json(valid_dir() / "manifest.json");
  std::set<std::string> dtypes;
  bool scalar = false, zero_size = false;
  for (const auto& [file, f] : manifest["files"].items()) {
    for (const auto& [name, t] : f["tensors"].items()) {
      dtypes.insert(t["dtype"].get<std::string>());
      scalar |= t["shape"].empty();
      for (const json& d : t["shape"]) zero_size |= d.get<int>() == 0;
    }
  }
  for (int i = 0; i < kNumDTypes; ++i) {
    EXPECT_TRUE(dtypes.contains(std::string(dtype_info(static_cast<DType>(i)).safetensors)))
        << dtype_info(static_cast<DType>(i)).safetensors;
  }
  EXPECT_TRUE(scalar);
  EXPECT_TRUE(zero_size);
}

TEST(SafetensorsReferenceTest, SingleFilesMatchManifest) {
  json manifest = testing::read_json(valid_dir() / "manifest.json");
  int files = 0;
  for (const auto& [file, want] : manifest["files"].items()) {
    if (!file.ends_with(".safetensors")) continue;
    ++files;
    std::filesystem::path path = valid_dir() / file;
    Result<std::unique_ptr<TensorSource>> source = open_safetensors(path);
    ASSERT_TRUE(source.ok()) << source.status().to_string();
    expect_matches_manifest(**source, want, file);
    for (const TensorInfo& t : (*source)->tensors()) EXPECT_EQ(t.location, file);

    std::vector<std::byte> image = testing::read_bytes(path);
    Result<std::unique_ptr<TensorSource>> in_memory = open_safetensors_memory(image, file);
    ASSERT_TRUE(in_memory.ok()) << in_memory.status().to_string();
    expect_matches_manifest(**in_memory, want, file + " (memory)");
  }
  EXPECT_GE(files, 5);
}

TEST(SafetensorsReferenceTest, HubShardedCheckpointMatchesManifest) {
  json manifest = testing::read_json(valid_dir() / "manifest.json");
  const json& want = manifest["files"]["sharded_hf"];
  Result<std::unique_ptr<TensorSource>> source = open_safetensors_dir(valid_dir() / "sharded_hf");
  ASSERT_TRUE(source.ok()) << source.status().to_string();
  expect_matches_manifest(**source, want, "sharded_hf");
  for (const auto& [shard, tensors] : want["shards"].items()) {
    for (const json& name : tensors) {
      const TensorInfo* t = (*source)->find(name.get<std::string>());
      ASSERT_NE(t, nullptr);
      EXPECT_EQ(t->location, shard);
    }
  }
}

}  // namespace
}  // namespace qswap
