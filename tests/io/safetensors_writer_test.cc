// The writer: byte-exact output (the golden is checked against the reference reader by
// scripts/goldens/make_safetensors_corpus.py), round trips, streaming, errors, and sharding as
// huggingface_hub / transformers do it.
#include "qswap/io/safetensors_writer.h"

#include <gtest/gtest.h>

#include "io_test_util.h"
#include "qswap/io/safetensors.h"

namespace qswap {
namespace {

using nlohmann::json;
using testing::read_bytes;
using testing::ScratchDir;

std::filesystem::path valid_dir() { return testing::test_data_dir() / "safetensors"; }

// Mirrored by qswap_written_tensors() in the golden script: byte i of tensor k is
// (37k + 11i + 5) % 256.
const std::vector<TensorDecl>& written_decls() {
  static const std::vector<TensorDecl> kDecls = {
      {"z.first.u8", DType::kU8, {0}},       {"blk.0.w", DType::kF32, {2, 3}},
      {"blk.0.b", DType::kBF16, {3, 1}},     {"fp8.e4m3", DType::kF8E4M3, {5}},
      {"scale.e8m0", DType::kF8E8M0, {3}},   {"ids", DType::kI64, {2}},
      {"scalar", DType::kF16, {}},           {"mask", DType::kU8, {4}},
  };
  return kDecls;
}
const std::map<std::string, std::string> kWrittenMetadata = {{"format", "pt"}, {"writer", "qswap"}};

std::vector<std::byte> pattern(size_t k, size_t n) {
  std::vector<std::byte> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<std::byte>((37 * k + 11 * i + 5) % 256);
  return out;
}

size_t decl_bytes(const TensorDecl& d) {
  return static_cast<size_t>(num_elements(d.shape)) * dtype_size(d.dtype);
}

std::vector<std::vector<std::byte>> written_payloads() {
  std::vector<std::vector<std::byte>> out;
  for (size_t k = 0; k < written_decls().size(); ++k) out.push_back(pattern(k, decl_bytes(written_decls()[k])));
  return out;
}

TEST(SafetensorsWriterTest, OutputMatchesTheReferenceCheckedGolden) {
  ScratchDir dir;
  std::vector<std::vector<std::byte>> payloads = written_payloads();
  Result<SafetensorsWriter> w = SafetensorsWriter::create(dir / "out.safetensors", written_decls(), kWrittenMetadata);
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  // Out of order and in pieces: the file must not depend on how the bytes arrived.
  for (size_t k = written_decls().size(); k-- > 0;) {
    std::span<const std::byte> p = payloads[k];
    size_t half = p.size() / 2;
    ASSERT_TRUE(w->write(written_decls()[k].name, p.first(half)).ok());
    ASSERT_TRUE(w->write(written_decls()[k].name, p.subspan(half)).ok());
  }
  ASSERT_TRUE(w->finish().ok());
  EXPECT_FALSE(std::filesystem::exists(dir / "out.safetensors.tmp"));

  std::vector<std::byte> actual = read_bytes(dir / "out.safetensors");
  std::vector<std::byte> golden = read_bytes(valid_dir() / "written_by_qswap.safetensors");
  if (actual != golden) {
    std::filesystem::path keep = std::filesystem::temp_directory_path() / "written_by_qswap.actual.safetensors";
    std::filesystem::copy_file(dir / "out.safetensors", keep, std::filesystem::copy_options::overwrite_existing);
    FAIL() << "writer output differs from tests/data/safetensors/written_by_qswap.safetensors; the actual "
              "file is at " << keep << " (if the change is intended, copy it there and run "
              "make_safetensors_corpus.py --check-only to validate it with the reference reader)";
  }

  std::vector<TensorData> data;
  for (size_t k = 0; k < payloads.size(); ++k) {
    const TensorDecl& d = written_decls()[k];
    data.push_back({d.name, d.dtype, d.shape, payloads[k]});
  }
  Result<std::vector<std::byte>> image = serialize_safetensors(data, kWrittenMetadata);
  ASSERT_TRUE(image.ok());
  EXPECT_EQ(*image, golden);
  ASSERT_TRUE(write_safetensors(dir / "again.safetensors", data, kWrittenMetadata).ok());
  EXPECT_EQ(read_bytes(dir / "again.safetensors"), golden);
}

TEST(SafetensorsWriterTest, RoundTripKeepsDeclarationOrderAndPadsTheHeader) {
  ScratchDir dir;
  std::vector<std::vector<std::byte>> payloads = written_payloads();
  std::vector<TensorData> data;
  for (size_t k = 0; k < payloads.size(); ++k) {
    const TensorDecl& d = written_decls()[k];
    data.push_back({d.name, d.dtype, d.shape, payloads[k]});
  }
  ASSERT_TRUE(write_safetensors(dir / "rt.safetensors", data, kWrittenMetadata).ok());
  Result<std::unique_ptr<TensorSource>> source = open_safetensors(dir / "rt.safetensors");
  ASSERT_TRUE(source.ok()) << source.status().to_string();
  EXPECT_EQ((*source)->metadata(), kWrittenMetadata);
  ASSERT_EQ((*source)->tensors().size(), data.size());
  for (size_t k = 0; k < data.size(); ++k) {
    const TensorInfo& t = (*source)->tensors()[k];
    EXPECT_EQ(t.name, data[k].name);
    EXPECT_EQ(t.dtype, data[k].dtype);
    EXPECT_EQ(t.shape, data[k].shape);
    Result<std::span<const std::byte>> view = (*source)->borrow(t);
    ASSERT_TRUE(view.ok());
    EXPECT_TRUE(std::equal(view->begin(), view->end(), payloads[k].begin(), payloads[k].end())) << t.name;
  }
  std::vector<std::byte> file = read_bytes(dir / "rt.safetensors");
  Result<SafetensorsHeader> h = parse_safetensors_header(file, "rt");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->header_bytes % 8, 0u);
  std::string header(reinterpret_cast<const char*>(file.data()) + 8, h->header_bytes);
  size_t close = header.rfind('}');
  EXPECT_LT(header.size() - close - 1, 8u);
  EXPECT_EQ(header.find_first_not_of(' ', close + 1), std::string::npos);
}

// Files the reference wrote whose bytes do not depend on hash order (at most one metadata key):
// the same tensors, declared in the reference's order, must give the same bytes.
TEST(SafetensorsWriterTest, BytesEqualTheReferenceWriter) {
  json manifest = testing::read_json(valid_dir() / "manifest.json");
  for (std::string file : {"byte_exact.safetensors", "empty.safetensors", "metadata_only.safetensors"}) {
    const json& want = manifest["files"][file];
    std::vector<std::vector<std::byte>> payloads;
    std::vector<TensorData> data;
    for (const json& name : want["order"]) {
      const json& t = want["tensors"][name.get<std::string>()];
      payloads.push_back(testing::from_hex(t["hex"].get<std::string>()));
    }
    for (size_t i = 0; i < want["order"].size(); ++i) {
      std::string name = want["order"][i].get<std::string>();
      const json& t = want["tensors"][name];
      data.push_back({name, *dtype_from_safetensors(t["dtype"].get<std::string>()),
                      t["shape"].get<Shape>(), payloads[i]});
    }
    Result<std::vector<std::byte>> image =
        serialize_safetensors(data, want["metadata"].get<std::map<std::string, std::string>>());
    ASSERT_TRUE(image.ok()) << image.status().to_string();
    EXPECT_EQ(*image, read_bytes(valid_dir() / file)) << file;
  }
}

TEST(SafetensorsWriterTest, StreamsLargeTensorsInChunks) {
  ScratchDir dir;
  constexpr size_t kBig = 3 * 1024 * 1024 + 6;  // 1572867 bf16 elements
  std::vector<TensorDecl> decls = {{"big", DType::kBF16, {static_cast<int64_t>(kBig / 2)}}, {"small", DType::kF32, {3}}};
  Result<SafetensorsWriter> w = SafetensorsWriter::create(dir / "big.safetensors", decls);
  ASSERT_TRUE(w.ok());
  std::vector<std::byte> chunk(64 * 1024);
  for (size_t done = 0; done < kBig;) {
    size_t n = std::min(chunk.size(), kBig - done);
    for (size_t i = 0; i < n; ++i) chunk[i] = static_cast<std::byte>((done + i) * 2654435761u >> 13);
    ASSERT_TRUE(w->write("big", std::span(chunk).first(n)).ok());
    done += n;
    if (done == 65536) {
      ASSERT_TRUE(w->write("small", std::vector<std::byte>(12, std::byte{7})).ok());
    }
  }
  EXPECT_EQ(w->file_size(), std::filesystem::file_size(dir / "big.safetensors.tmp"));
  ASSERT_TRUE(w->finish().ok());
  Result<std::unique_ptr<TensorSource>> source = open_safetensors(dir / "big.safetensors");
  ASSERT_TRUE(source.ok()) << source.status().to_string();
  Result<std::span<const std::byte>> big = (*source)->borrow(*(*source)->find("big"));
  ASSERT_TRUE(big.ok());
  ASSERT_EQ(big->size(), kBig);
  for (size_t i = 0; i < kBig; ++i) {
    ASSERT_EQ((*big)[i], static_cast<std::byte>(i * 2654435761u >> 13)) << i;
  }
  Result<std::span<const std::byte>> small = (*source)->borrow(*(*source)->find("small"));
  ASSERT_TRUE(small.ok());
  EXPECT_TRUE(std::ranges::equal(*small, std::vector<std::byte>(12, std::byte{7})));
}

TEST(SafetensorsWriterTest, RejectsBadDeclarationsAndWrites) {
  ScratchDir dir;
  auto create = [&](std::vector<TensorDecl> decls, std::map<std::string, std::string> md = {}) {
    return SafetensorsWriter::create(dir / "e.safetensors", std::move(decls), md).status();
  };
  EXPECT_EQ(create({{"a", DType::kF32, {1}}, {"a", DType::kF32, {2}}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(create({{"__metadata__", DType::kF32, {1}}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(create({{"bad\xFF", DType::kF32, {1}}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(create({{"neg", DType::kF32, {-1}}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(create({{"huge", DType::kF32, {int64_t{1} << 62}}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(create({}, {{"k", "\xC0\xAF"}}).code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(dir / "e.safetensors.tmp"));

  Result<SafetensorsWriter> w = SafetensorsWriter::create(
      dir / "e.safetensors", {{"a", DType::kU8, {4}}, {"b", DType::kU8, {2}}});
  ASSERT_TRUE(w.ok());
  std::vector<std::byte> three(3);
  EXPECT_EQ(w->write("nope", three).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(w->write("a", three).ok());
  Status over = w->write("a", std::span(three).first(2));
  EXPECT_EQ(over.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(over.message().find("tensor 'a' has 4 bytes; 3 are written and 2 more do not fit"), std::string::npos)
      << over.message();
  Status incomplete = w->finish();
  EXPECT_EQ(incomplete.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(incomplete.message().find("tensor 'a' is incomplete: 3 of 4 bytes written"), std::string::npos)
      << incomplete.message();
  ASSERT_TRUE(w->write("a", std::span(three).first(1)).ok());
  ASSERT_TRUE(w->write("b", std::span(three).first(2)).ok());
  ASSERT_TRUE(w->finish().ok());
  EXPECT_EQ(w->write("a", {}).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(w->finish().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(std::filesystem::exists(dir / "e.safetensors"));
}

TEST(SafetensorsWriterTest, AbandonedWriterLeavesNothingBehind) {
  ScratchDir dir;
  {
    Result<SafetensorsWriter> w = SafetensorsWriter::create(dir / "x.safetensors", {{"a", DType::kU8, {4}}});
    ASSERT_TRUE(w.ok());
    EXPECT_TRUE(std::filesystem::exists(dir / "x.safetensors.tmp"));
    SafetensorsWriter moved = std::move(w).value();
    ASSERT_TRUE(moved.write("a", std::vector<std::byte>(2)).ok());
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "x.safetensors.tmp"));
  EXPECT_FALSE(std::filesystem::exists(dir / "x.safetensors"));
  EXPECT_EQ(SafetensorsWriter::create(dir / "no/such/dir/x.safetensors", {}).status().code(), StatusCode::kIoError);
}

TEST(SafetensorsWriterTest, ReferenceOrderMatchesTheReferenceWriter) {
  json manifest = testing::read_json(valid_dir() / "manifest.json");
  for (std::string file : {"all_dtypes.safetensors", "special_shapes.safetensors"}) {
    std::vector<TensorDecl> decls;
    for (const auto& [name, t] : manifest["files"][file]["tensors"].items()) {
      decls.push_back({name, *dtype_from_safetensors(t["dtype"].get<std::string>()), t["shape"].get<Shape>()});
    }
    std::reverse(decls.begin(), decls.end());
    sort_like_reference(decls);
    std::vector<std::string> order;
    for (const TensorDecl& d : decls) order.push_back(d.name);
    EXPECT_EQ(order, manifest["files"][file]["order"].get<std::vector<std::string>>()) << file;
  }
}

TEST(SafetensorsWriterTest, ShardPlansMatchHuggingfaceHub) {
  json manifest = testing::read_json(valid_dir() / "manifest.json");
  ASSERT_FALSE(manifest["shard_plans"].empty());
  for (const json& c : manifest["shard_plans"]) {
    std::vector<TensorDecl> decls;
    for (size_t i = 0; i < c["sizes"].size(); ++i) {
      decls.push_back({fmt::format("t{}", i), DType::kU8, {c["sizes"][i].get<int64_t>()}});
    }
    std::vector<std::vector<size_t>> plan = plan_safetensors_shards(decls, c["max_shard_bytes"].get<uint64_t>());
    EXPECT_EQ(plan, c["plan"].get<std::vector<std::vector<size_t>>>()) << c.dump();
    std::vector<std::string> files = c["files"].get<std::vector<std::string>>();
    if (files.size() > 1) {
      for (size_t s = 0; s < files.size(); ++s) EXPECT_EQ(safetensors_shard_name(s, files.size()), files[s]);
    }
  }
}

TEST(SafetensorsWriterTest, ShardedCheckpointMatchesHubAndTransformers) {
  json manifest = testing::read_json(valid_dir() / "manifest.json");
  const json& want = manifest["files"]["sharded_hf"];
  Result<std::unique_ptr<TensorSource>> hub = open_safetensors_dir(valid_dir() / "sharded_hf");
  ASSERT_TRUE(hub.ok()) << hub.status().to_string();

  std::vector<TensorDecl> decls;
  for (const json& name : want["declaration_order"]) {
    const TensorInfo* t = (*hub)->find(name.get<std::string>());
    ASSERT_NE(t, nullptr);
    decls.push_back({t->name, t->dtype, t->shape});
  }
  ScratchDir dir;
  Result<ShardedSafetensorsWriter> w =
      ShardedSafetensorsWriter::create(dir.path(), decls, want["max_shard_bytes"].get<uint64_t>(), {{"format", "pt"}});
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  for (const TensorDecl& d : decls) {
    Result<std::span<const std::byte>> bytes = (*hub)->borrow(*(*hub)->find(d.name));
    ASSERT_TRUE(bytes.ok());
    ASSERT_TRUE(w->write(d.name, *bytes).ok());
  }
  ASSERT_TRUE(w->finish().ok());

  std::vector<std::string> files;
  for (const auto& p : w->files()) files.push_back(p.filename().string());
  std::vector<std::string> expected_files;
  for (const auto& [shard, names] : want["shards"].items()) expected_files.push_back(shard);
  expected_files.push_back("model.safetensors.index.json");
  EXPECT_EQ(files, expected_files);
  EXPECT_EQ(testing::read_text(dir / "model.safetensors.index.json"),
            testing::read_text(valid_dir() / "sharded_hf_transformers_index.json"));

  Result<std::unique_ptr<TensorSource>> ours = open_safetensors_dir(dir.path());
  ASSERT_TRUE(ours.ok()) << ours.status().to_string();
  ASSERT_EQ((*ours)->tensors().size(), (*hub)->tensors().size());
  for (const TensorInfo& t : (*hub)->tensors()) {
    const TensorInfo* o = (*ours)->find(t.name);
    ASSERT_NE(o, nullptr) << t.name;
    EXPECT_EQ(o->location, t.location) << t.name;
    EXPECT_EQ(o->dtype, t.dtype);
    EXPECT_EQ(o->shape, t.shape);
    EXPECT_TRUE(std::ranges::equal(*(*ours)->borrow(*o), *(*hub)->borrow(t))) << t.name;
  }
  EXPECT_EQ((*ours)->metadata().at("format"), "pt");
  EXPECT_EQ((*ours)->metadata().at("total_size"), (*hub)->metadata().at("total_size"));
}

TEST(SafetensorsWriterTest, OneShardIsModelSafetensorsAndStaleLayoutsGo) {
  ScratchDir dir;
  for (std::string stale : {"model.safetensors.index.json", "model-00001-of-00002.safetensors",
                            "model-00002-of-00002.safetensors"}) {
    testing::write_bytes(dir / stale, testing::to_bytes("stale"));
  }
  for (std::string keep : {"notes.txt", "model.safetensors.bak", "other.safetensors", "model-1-of-2.safetensors"}) {
    testing::write_bytes(dir / keep, testing::to_bytes("keep"));
  }
  Result<ShardedSafetensorsWriter> w = ShardedSafetensorsWriter::create(dir.path(), {{"a", DType::kU8, {3}}}, 1000);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w->write("a", testing::to_bytes("abc")).ok());
  ASSERT_TRUE(w->finish().ok());
  ASSERT_EQ(w->files().size(), 1u);
  EXPECT_EQ(w->files()[0], dir / "model.safetensors");
  std::set<std::string> left;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) left.insert(e.path().filename().string());
  EXPECT_EQ(left, (std::set<std::string>{"model.safetensors", "notes.txt", "model.safetensors.bak",
                                         "other.safetensors", "model-1-of-2.safetensors"}));
  Result<std::unique_ptr<TensorSource>> source = open_safetensors_dir(dir.path());
  ASSERT_TRUE(source.ok()) << source.status().to_string();
  EXPECT_EQ((*source)->tensors().size(), 1u);
}

TEST(SafetensorsWriterTest, ShardedWriterWithoutTensorsWritesAnEmptyFile) {
  ScratchDir dir;
  Result<ShardedSafetensorsWriter> w = ShardedSafetensorsWriter::create(dir / "new", {}, 10);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w->finish().ok());
  // The reference writes an empty dict as "{}" plus six spaces.
  std::vector<std::byte> expected = testing::make_image("{}      ");
  EXPECT_EQ(read_bytes(dir / "new/model.safetensors"), expected);
  EXPECT_EQ(w->write("x", {}).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qswap
