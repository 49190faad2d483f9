// Reading safetensors checkpoints: one file, a sharded HF checkpoint (model.safetensors.index.json)
// or a model directory. Files are memory-mapped; a source lends zero-copy views into the maps.
//
// Format: u64 little-endian header length N, N bytes of UTF-8 JSON, then the data buffer. The JSON
// object maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the
// data buffer) and may hold "__metadata__", a string-to-string map.
//
// Validation follows the reference implementation (the Rust `safetensors` crate behind the Python
// package): sorted by data_offsets, the tensors must tile the data buffer exactly — no overlap, no
// hole, no trailing bytes — and each tensor's byte count must equal numel * dtype size. Unknown
// fields in a tensor entry are ignored and `"__metadata__": null` is accepted, as there. qswap is
// stricter in two places: a repeated JSON key (the reference keeps the last) and nesting deeper
// than 64 levels are errors, and tensor entries written as JSON arrays (serde takes a struct from a
// sequence) are refused. Every violation is a Status naming the file and the tensor. (As with any
// mmap reader, a file truncated by another process while mapped can still fault on access.)
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qswap/base/status.h"
#include "qswap/io/tensor_source.h"

namespace qswap {

// The reference library refuses headers larger than this (MAX_HEADER_SIZE).
inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;
inline constexpr std::string_view kSafetensorsIndexName = "model.safetensors.index.json";
inline constexpr std::string_view kSafetensorsSingleName = "model.safetensors";

struct SafetensorsHeader {
  uint64_t header_bytes = 0;           // N
  std::vector<TensorInfo> tensors;     // by data offset; location = the name given to the parser
  std::vector<uint64_t> file_offsets;  // per tensor, its first byte counted from the file start
  std::map<std::string, std::string> metadata;
};

// Parses and validates the header of a whole safetensors file held in memory. Reads only the
// first 8 + N bytes, but needs the full size to check the offsets. `name` prefixes every error.
Result<SafetensorsHeader> parse_safetensors_header(std::span<const std::byte> file_bytes,
                                                   std::string_view name);

// One file.
Result<std::unique_ptr<TensorSource>> open_safetensors(const std::filesystem::path& file);
// A safetensors image in memory, borrowed: `bytes` must outlive the source (tests, fuzzing).
Result<std::unique_ptr<TensorSource>> open_safetensors_memory(std::span<const std::byte> bytes,
                                                              std::string name);
// Several files as one source, in the given order; a name in two files is an error.
Result<std::unique_ptr<TensorSource>> open_safetensors_files(
    const std::vector<std::filesystem::path>& files);
// A sharded HF checkpoint. The index's weight_map must agree with the shards exactly: every
// listed tensor in its shard, every shard tensor listed, under that shard. Shard paths are relative
// to the index's directory and may not leave it lexically (no "..", not absolute); symlinks are
// followed (the HF cache links snapshot files to blobs elsewhere). metadata() holds the index's
// "metadata" (non-string values as compact JSON, e.g. total_size), then keys of the shards'
// __metadata__ not already present (first shard wins).
Result<std::unique_ptr<TensorSource>> open_safetensors_index(const std::filesystem::path& index_json);
// A model directory: model.safetensors.index.json if present, else model.safetensors, else every
// *.safetensors file in the directory (sorted by name, merged as open_safetensors_files does).
// No safetensors file at all is kNotFound.
Result<std::unique_ptr<TensorSource>> open_safetensors_dir(const std::filesystem::path& dir);
// Dispatches on what `path` is: a directory, an *.index.json file, or a safetensors file.
Result<std::unique_ptr<TensorSource>> open_safetensors_path(const std::filesystem::path& path);

}  // namespace qswap
