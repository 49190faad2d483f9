// The reader on hand-built images: listing, ranges, zero-copy views, threads, directories, indexes.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "io_test_util.h"
#include "qswap/io/safetensors.h"

namespace qswap {
namespace {

using testing::from_hex;
using testing::make_image;
using testing::read_bytes;
using testing::ScratchDir;
using testing::to_bytes;
using testing::write_bytes;

// "b" (I16 [2]) holds data bytes [0, 4), "a" (F32 [1, 2]) bytes [4, 12), "z" (U8 [0]) none.
constexpr std::string_view kHeader =
    R"({"a":{"dtype":"F32","shape":[1,2],"data_offsets":[4,12]},)"
    R"("__metadata__":{"format":"pt","k":"v"},)"
    R"("z":{"dtype":"U8","shape":[0],"data_offsets":[12,12]},)"
    R"("b":{"dtype":"I16","shape":[2],"data_offsets":[0,4]}})";
constexpr std::string_view kData = "\x01\x02\x03\x04" "ABCDEFGH";

std::string bytes_to_string(std::span<const std::byte> bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

std::unique_ptr<TensorSource> open_memory(const std::vector<std::byte>& image, std::string name = "mem") {
  Result<std::unique_ptr<TensorSource>> source = open_safetensors_memory(image, std::move(name));
  EXPECT_TRUE(source.ok()) << source.status().to_string();
  return source.ok() ? std::move(source).value() : nullptr;
}

TEST(SafetensorsReaderTest, ListsTensorsInStorageOrder) {
  std::vector<std::byte> image = make_image(kHeader, kData);
  auto source = open_memory(image, "x.safetensors");
  ASSERT_NE(source, nullptr);
  const auto& ts = source->tensors();
  ASSERT_EQ(ts.size(), 3u);
  EXPECT_EQ(ts[0].name, "b");
  EXPECT_EQ(ts[1].name, "a");
  EXPECT_EQ(ts[2].name, "z");
  EXPECT_EQ(ts[1].dtype, DType::kF32);
  EXPECT_EQ(ts[1].shape, (Shape{1, 2}));
  EXPECT_EQ(ts[1].nbytes, 8u);
  EXPECT_EQ(ts[0].dtype, DType::kI16);
  EXPECT_EQ(ts[2].nbytes, 0u);
  EXPECT_EQ(ts[1].location, "x.safetensors");
  EXPECT_EQ(source->total_bytes(), 12u);
  EXPECT_EQ(source->describe(), "x.safetensors");
  EXPECT_EQ(source->metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"k", "v"}}));
}

TEST(SafetensorsReaderTest, FindUsesNames) {
  std::vector<std::byte> image = make_image(kHeader, kData);
  auto source = open_memory(image);
  ASSERT_NE(source, nullptr);
  ASSERT_NE(source->find("a"), nullptr);
  EXPECT_EQ(source->find("a"), &source->tensors()[1]);
  EXPECT_EQ(source->find("zz"), nullptr);
  EXPECT_EQ(source->find(""), nullptr);
  EXPECT_EQ(source->find("__metadata__"), nullptr);
}

TEST(SafetensorsReaderTest, ReadCopiesTheRequestedRange) {
  std::vector<std::byte> image = make_image(kHeader, kData);
  auto source = open_memory(image);
  ASSERT_NE(source, nullptr);
  const TensorInfo& a = *source->find("a");
  std::vector<std::byte> all(8);
  ASSERT_TRUE(source->read(a, 0, all).ok());
  EXPECT_EQ(bytes_to_string(all), "ABCDEFGH");
  std::vector<std::byte> part(3);
  ASSERT_TRUE(source->read(a, 5, part).ok());
  EXPECT_EQ(bytes_to_string(part), "FGH");
  std::vector<std::byte> b(4);
  ASSERT_TRUE(source->read(*source->find("b"), 0, b).ok());
  EXPECT_EQ(b, from_hex("01020304"));
  EXPECT_TRUE(source->read(a, 8, {}).ok());  // empty range at the end
  EXPECT_TRUE(source->read(*source->find("z"), 0, {}).ok());
}

TEST(SafetensorsReaderTest, ReadOutsideTheTensorIsAnError) {
  std::vector<std::byte> image = make_image(kHeader, kData);
  auto source = open_memory(image);
  ASSERT_NE(source, nullptr);
  const TensorInfo& a = *source->find("a");
  std::vector<std::byte> buf(9);
  Status too_long = source->read(a, 0, buf);
  EXPECT_EQ(too_long.code(), StatusCode::kOutOfRange);
  EXPECT_NE(too_long.message().find("tensor 'a' (8 bytes)"), std::string::npos) << too_long.message();
  EXPECT_EQ(source->read(a, 6, std::span(buf).first(3)).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(source->read(a, 9, {}).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(source->read(a, SIZE_MAX, std::span(buf).first(1)).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(source->read(*source->find("z"), 0, std::span(buf).first(1)).code(), StatusCode::kOutOfRange);
}

TEST(SafetensorsReaderTest, ReadAcceptsCopiesButChecksThem) {
  std::vector<std::byte> image = make_image(kHeader, kData);
  auto source = open_memory(image);
  ASSERT_NE(source, nullptr);
  TensorInfo copy = *source->find("a");
  std::vector<std::byte> buf(2);
  ASSERT_TRUE(source->read(copy, 1, buf).ok());
  EXPECT_EQ(bytes_to_string(buf), "BC");

  TensorInfo wrong_shape = copy;
  wrong_shape.shape = {2, 1};
  EXPECT_EQ(source->read(wrong_shape, 0, buf).code(), StatusCode::kInvalidArgument);
  TensorInfo unknown = copy;
  unknown.name = "nope";
  Status s = source->read(unknown, 0, buf);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("'nope'"), std::string::npos);
  EXPECT_EQ(source->borrow(unknown).status().code(), StatusCode::kNotFound);
}

TEST(SafetensorsReaderTest, BorrowIsZeroCopy) {
  std::vector<std::byte> image = make_image(kHeader, kData);
  auto source = open_memory(image);
  ASSERT_NE(source, nullptr);
  Result<std::span<const std::byte>> a = source->borrow(*source->find("a"));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->data(), image.data() + 8 + kHeader.size() + 4);
  EXPECT_EQ(a->size(), 8u);
  Result<std::span<const std::byte>> z = source->borrow(*source->find("z"));
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(z->size(), 0u);
}

TEST(SafetensorsReaderTest, ConcurrentReadsAgree) {
  std::string data;
  std::string header = "{";
  for (int i = 0; i < 16; ++i) {
    header += fmt::format(R"({}"t{}":{{"dtype":"U8","shape":[1000],"data_offsets":[{},{}]}})",
                          i ? "," : "", i, 1000 * i, 1000 * (i + 1));
    for (int k = 0; k < 1000; ++k) data.push_back(static_cast<char>((i * 7 + k) & 0xFF));
  }
  header += "}";
  std::vector<std::byte> image = make_image(header, data);
  auto source = open_memory(image);
  ASSERT_NE(source, nullptr);
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      std::vector<std::byte> buf(1000);
      for (int round = 0; round < 50; ++round) {
        for (int i = 0; i < 16; ++i) {
          const TensorInfo* t = source->find(fmt::format("t{}", i));
          if (t == nullptr || !source->read(*t, 0, buf).ok()) {
            ++mismatches[w];
            continue;
          }
          for (int k = 0; k < 1000; ++k) {
            if (buf[k] != static_cast<std::byte>((i * 7 + k) & 0xFF)) ++mismatches[w];
          }
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

TEST(SafetensorsReaderTest, OpensFilesByPath) {
  ScratchDir dir;
  write_bytes(dir / "w.safetensors", make_image(kHeader, kData));
  Result<std::unique_ptr<TensorSource>> source = open_safetensors(dir / "w.safetensors");
  ASSERT_TRUE(source.ok()) << source.status().to_string();
  EXPECT_EQ((*source)->describe(), (dir / "w.safetensors").string());
  EXPECT_EQ((*source)->tensors()[0].location, "w.safetensors");
  std::vector<std::byte> buf(8);
  ASSERT_TRUE((*source)->read(*(*source)->find("a"), 0, buf).ok());
  EXPECT_EQ(bytes_to_string(buf), "ABCDEFGH");

  Result<std::unique_ptr<TensorSource>> missing = open_safetensors(dir / "nope.safetensors");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kIoError);
  EXPECT_NE(missing.status().message().find("nope.safetensors"), std::string::npos);
  EXPECT_FALSE(open_safetensors(dir.path()).ok());  // a directory is not a file
}

// Three one-tensor files named after their tensor, with the given U8 payloads.
void write_one(const std::filesystem::path& path, std::string_view tensor, std::string_view payload) {
  std::string header = fmt::format(
      R"({{"__metadata__":{{"file":"{}"}},"{}":{{"dtype":"U8","shape":[{}],"data_offsets":[0,{}]}}}})",
      path.filename().string(), tensor, payload.size(), payload.size());
  write_bytes(path, make_image(header, payload));
}

std::vector<std::string> names(const TensorSource& s) {
  std::vector<std::string> out;
  for (const TensorInfo& t : s.tensors()) out.push_back(t.name);
  return out;
}

TEST(SafetensorsReaderTest, DirectoryPrefersIndexThenSingleFileThenAllFiles) {
  ScratchDir dir;
  write_one(dir / "b.safetensors", "from_b", "bb");
  write_one(dir / "a.safetensors", "from_a", "a");
  Result<std::unique_ptr<TensorSource>> all = open_safetensors_dir(dir.path());
  ASSERT_TRUE(all.ok()) << all.status().to_string();
  EXPECT_EQ(names(**all), (std::vector<std::string>{"from_a", "from_b"}));  // by file name
  EXPECT_EQ((*all)->find("from_b")->location, "b.safetensors");
  EXPECT_EQ((*all)->metadata().at("file"), "a.safetensors");  // first file wins

  write_one(dir / "model.safetensors", "single", "s");
  Result<std::unique_ptr<TensorSource>> single = open_safetensors_dir(dir.path());
  ASSERT_TRUE(single.ok()) << single.status().to_string();
  EXPECT_EQ(names(**single), std::vector<std::string>{"single"});

  testing::write_bytes(dir / "model.safetensors.index.json",
                       to_bytes(R"({"metadata": {"total_size": 3, "file": "index"},)"
                                R"( "weight_map": {"from_b": "b.safetensors", "from_a": "a.safetensors"}})"));
  Result<std::unique_ptr<TensorSource>> indexed = open_safetensors_dir(dir.path());
  ASSERT_TRUE(indexed.ok()) << indexed.status().to_string();
  EXPECT_EQ(names(**indexed), (std::vector<std::string>{"from_a", "from_b"}));
  EXPECT_EQ((*indexed)->metadata(),
            (std::map<std::string, std::string>{{"total_size", "3"}, {"file", "index"}}));  // index wins
  EXPECT_EQ((*indexed)->describe(), (dir / "model.safetensors.index.json").string());
  std::vector<std::byte> buf(2);
  ASSERT_TRUE((*indexed)->read(*(*indexed)->find("from_b"), 0, buf).ok());
  EXPECT_EQ(bytes_to_string(buf), "bb");

  Result<std::unique_ptr<TensorSource>> via_path = open_safetensors_path(dir / "model.safetensors.index.json");
  ASSERT_TRUE(via_path.ok());
  EXPECT_EQ(names(**via_path), names(**indexed));
  Result<std::unique_ptr<TensorSource>> via_dir = open_safetensors_path(dir.path());
  ASSERT_TRUE(via_dir.ok());
  EXPECT_EQ(names(**via_dir), names(**indexed));
  Result<std::unique_ptr<TensorSource>> via_file = open_safetensors_path(dir / "model.safetensors");
  ASSERT_TRUE(via_file.ok());
  EXPECT_EQ(names(**via_file), std::vector<std::string>{"single"});
}

TEST(SafetensorsReaderTest, DirectoryErrors) {
  ScratchDir dir;
  Result<std::unique_ptr<TensorSource>> empty = open_safetensors_dir(dir.path());
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), StatusCode::kNotFound);
  EXPECT_NE(empty.status().message().find(dir.path().string()), std::string::npos);
  EXPECT_EQ(open_safetensors_dir(dir / "missing").status().code(), StatusCode::kNotFound);
}

TEST(SafetensorsReaderTest, IndexShardsMayLiveInSubdirectoriesAndBeSymlinks) {
  ScratchDir dir;
  std::filesystem::create_directories(dir / "ckpt/sub");
  std::filesystem::create_directories(dir / "blobs");
  write_one(dir / "ckpt/sub/one.safetensors", "x", "xyz");
  write_one(dir / "blobs/abc123", "y", "yy");  // an HF-cache style blob outside the directory
  std::filesystem::create_symlink(dir / "blobs/abc123", dir / "ckpt/two.safetensors");
  testing::write_bytes(dir / "ckpt/model.safetensors.index.json",
                       to_bytes(R"({"weight_map": {"x": "sub/one.safetensors", "y": "two.safetensors"}})"));
  Result<std::unique_ptr<TensorSource>> source = open_safetensors_dir(dir / "ckpt");
  ASSERT_TRUE(source.ok()) << source.status().to_string();
  EXPECT_EQ(names(**source), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ((*source)->find("x")->location, "one.safetensors");
  Result<std::span<const std::byte>> y = (*source)->borrow(*(*source)->find("y"));
  ASSERT_TRUE(y.ok());
  EXPECT_EQ(bytes_to_string(*y), "yy");
}

TEST(SafetensorsReaderTest, MergedFilesRejectRepeatedNames) {
  ScratchDir dir;
  write_one(dir / "p.safetensors", "same", "1");
  write_one(dir / "q.safetensors", "same", "2");
  Result<std::unique_ptr<TensorSource>> source =
      open_safetensors_files({dir / "p.safetensors", dir / "q.safetensors"});
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().message(),
            fmt::format("{} (+1 more files): tensor 'same' appears twice "
                        "(in p.safetensors and in q.safetensors)",
                        (dir / "p.safetensors").string()));
  EXPECT_FALSE(open_safetensors_files({}).ok());
}

TEST(SafetensorsReaderTest, ParseHeaderReportsFileOffsets) {
  std::vector<std::byte> image = make_image(kHeader, kData);
  Result<SafetensorsHeader> h = parse_safetensors_header(image, "h");
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  EXPECT_EQ(h->header_bytes, kHeader.size());
  ASSERT_EQ(h->file_offsets.size(), 3u);
  EXPECT_EQ(h->file_offsets[0], 8 + kHeader.size());
  EXPECT_EQ(h->file_offsets[1], 8 + kHeader.size() + 4);
  EXPECT_EQ(h->file_offsets[2], 8 + kHeader.size() + 12);
}

}  // namespace
}  // namespace qswap
