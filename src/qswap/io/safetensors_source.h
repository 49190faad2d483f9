// Internal to the io layer: the TensorSource behind every open_safetensors* function.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "qswap/base/mapped_file.h"
#include "qswap/io/safetensors.h"
#include "qswap/io/tensor_source.h"

namespace qswap {

class SafetensorsSource final : public TensorSource {
 public:
  struct Shard {
    std::string path;                 // for messages
    std::optional<MappedFile> file;   // empty when the bytes are borrowed
    std::span<const std::byte> bytes; // the whole file image
    SafetensorsHeader header;
  };

  // Lists the tensors shard by shard; a name present in two shards is an error.
  static Result<std::unique_ptr<SafetensorsSource>> create(
      std::string description, std::vector<Shard> shards,
      std::map<std::string, std::string> metadata);

  Status read(const TensorInfo& t, size_t offset, std::span<std::byte> out) const override;
  Result<std::span<const std::byte>> borrow(const TensorInfo& t) const override;
  std::string describe() const override { return description_; }

 private:
  struct Location {
    uint32_t shard;
    uint64_t file_offset;
  };
  SafetensorsSource(std::string description, std::vector<Shard> shards)
      : description_(std::move(description)), shards_(std::move(shards)) {}

  std::string description_;
  std::vector<Shard> shards_;
  std::vector<Location> locations_;  // parallel to tensors()
};

// Maps `file` and parses its header.
Result<SafetensorsSource::Shard> load_safetensors_shard(const std::filesystem::path& file);

}  // namespace qswap
