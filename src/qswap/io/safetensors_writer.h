// Writing safetensors files and sharded HF checkpoints, streaming: the header is computed from the
// declared tensors up front, then each tensor's bytes go straight to their place in the file, so
// a writer never holds more than the caller's current chunk (GB-size checkpoints in benchmarks).
//
// Layout matches the reference writer: header JSON padded with spaces to a multiple of 8, tensors
// back to back in the data buffer. Tensors are stored in declaration order; the reference sorts by
// dtype (widest first, in its enum's order), then name, which keeps every tensor naturally aligned
// — sort_like_reference() reproduces that order, and with it the reference's bytes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "qswap/base/status.h"
#include "qswap/tensor/dtype.h"
#include "qswap/tensor/tensor.h"

namespace qswap {

struct TensorDecl {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
};

struct TensorData {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  std::span<const std::byte> data;  // num_elements(shape) * dtype_size(dtype) bytes
};

// Orders like the reference serializer: by its Dtype enum descending (U64, I64, F64, F32, ...,
// BOOL), then by name (bytewise).
void sort_like_reference(std::vector<TensorDecl>& tensors);

// The 8-byte length plus the padded header for `tensors` stored in that order.
Result<std::string> safetensors_header_bytes(std::span<const TensorDecl> tensors,
                                             const std::map<std::string, std::string>& metadata);
// A whole safetensors file image in memory (small files: tests, fuzz seeds).
Result<std::vector<std::byte>> serialize_safetensors(
    std::span<const TensorData> tensors, const std::map<std::string, std::string>& metadata = {});

// One file. Writes go to "<path>.tmp", renamed to `path` by finish(); a writer destroyed before
// finish() succeeds removes the temporary file. Not thread-safe.
class SafetensorsWriter {
 public:
  static Result<SafetensorsWriter> create(const std::filesystem::path& path,
                                          std::vector<TensorDecl> tensors,
                                          const std::map<std::string, std::string>& metadata = {});
  SafetensorsWriter(SafetensorsWriter&& other) noexcept;
  SafetensorsWriter& operator=(SafetensorsWriter&& other) noexcept;
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;
  ~SafetensorsWriter();

  // Appends `bytes` to tensor `name`: its next bytes, after those already written. Tensors may be
  // written in any order, each in one piece or several.
  Status write(std::string_view name, std::span<const std::byte> bytes);
  // Requires every tensor complete; closes and renames the file into place.
  Status finish();

  const std::filesystem::path& path() const { return path_; }
  uint64_t file_size() const { return file_size_; }

 private:
  struct Slot {
    TensorDecl decl;
    uint64_t file_offset = 0;
    uint64_t nbytes = 0;
    uint64_t written = 0;
  };
  SafetensorsWriter() = default;
  void abandon();

  std::filesystem::path path_;
  std::filesystem::path tmp_path_;
  int fd_ = -1;
  uint64_t file_size_ = 0;
  std::vector<Slot> slots_;
  std::unordered_map<std::string, size_t> by_name_;
};

// Writes a whole file from in-memory tensors.
Status write_safetensors(const std::filesystem::path& path, std::span<const TensorData> tensors,
                         const std::map<std::string, std::string>& metadata = {});

// Splits like huggingface_hub's split_state_dict_into_shards_factory (used by transformers'
// save_pretrained): in order, a tensor larger than `max_shard_bytes` gets a shard of its own
// (placed before the shard being filled), otherwise it joins the current shard unless that would
// exceed the limit. Returns, per shard, the indices of its tensors.
std::vector<std::vector<size_t>> plan_safetensors_shards(std::span<const TensorDecl> tensors,
                                                         uint64_t max_shard_bytes);
// "model-00002-of-00005.safetensors" for index 1 of 5, as transformers names shards.
std::string safetensors_shard_name(size_t index, size_t count);

// A checkpoint directory as transformers' save_pretrained writes it: one shard is
// model.safetensors alone; several are model-0000i-of-0000N.safetensors plus
// model.safetensors.index.json ({"metadata": {"total_parameters", "total_size"}, "weight_map"},
// keys sorted, indent 2, ASCII). Every shard gets `metadata` as its __metadata__. After writing,
// stale model*.safetensors / index files of another layout in `dir` are removed, as HF does.
class ShardedSafetensorsWriter {
 public:
  static Result<ShardedSafetensorsWriter> create(
      const std::filesystem::path& dir, std::vector<TensorDecl> tensors, uint64_t max_shard_bytes,
      const std::map<std::string, std::string>& metadata = {});
  ShardedSafetensorsWriter(ShardedSafetensorsWriter&&) noexcept = default;
  ShardedSafetensorsWriter& operator=(ShardedSafetensorsWriter&&) noexcept = default;

  Status write(std::string_view name, std::span<const std::byte> bytes);
  Status finish();

  // The files finish() produces: the shards, then the index if there is one.
  std::vector<std::filesystem::path> files() const;

 private:
  ShardedSafetensorsWriter() = default;

  std::filesystem::path dir_;
  std::vector<SafetensorsWriter> shards_;
  std::unordered_map<std::string, size_t> shard_of_;   // tensor -> index in shards_
  std::vector<std::pair<std::string, std::string>> weight_map_;
  uint64_t total_size_ = 0;
  uint64_t total_parameters_ = 0;
};

}  // namespace qswap
