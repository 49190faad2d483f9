#include "qswap/io/safetensors_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <regex>
#include <set>
#include <system_error>

#include <nlohmann/json.hpp>

#include "qswap/base/mapped_file.h"
#include "qswap/io/json_strict.h"
#include "qswap/io/safetensors.h"

namespace qswap {
namespace {

namespace fs = std::filesystem;

Status check_utf8(std::string_view what, std::string_view s) {
  if (std::optional<size_t> bad = find_invalid_utf8(s)) {
    return invalid_argument("{} is not valid UTF-8 (byte {})", what, *bad);
  }
  return {};
}

Result<uint64_t> tensor_bytes(const TensorDecl& t) {
  std::optional<int64_t> numel = checked_num_elements(t.shape);
  uint64_t nbytes;
  if (!numel || __builtin_mul_overflow(static_cast<uint64_t>(*numel), dtype_size(t.dtype), &nbytes)) {
    return invalid_argument("tensor '{}': invalid shape {} for {}", t.name, format_shape(t.shape),
                            dtype_name(t.dtype));
  }
  return nbytes;
}

Status check_decls(std::span<const TensorDecl> tensors,
                   const std::map<std::string, std::string>& metadata) {
  std::set<std::string_view> names;
  for (const TensorDecl& t : tensors) {
    if (t.name == "__metadata__") {
      return invalid_argument("'__metadata__' is reserved, not a tensor name");
    }
    if (!names.insert(t.name).second) return invalid_argument("tensor '{}' declared twice", t.name);
    QSWAP_RETURN_IF_ERROR(check_utf8("tensor name", t.name));
    QSWAP_RETURN_IF_ERROR(tensor_bytes(t).status());
  }
  for (const auto& [key, value] : metadata) {
    QSWAP_RETURN_IF_ERROR(check_utf8("metadata key", key));
    QSWAP_RETURN_IF_ERROR(check_utf8("metadata value", value));
  }
  return {};
}

Status write_all_at(int fd, const fs::path& path, const std::byte* data, size_t size, uint64_t offset) {
  while (size > 0) {
    ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("cannot write {} bytes at offset {} of '{}': {}", size, offset, path.string(),
                      std::strerror(errno));
    }
    data += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return {};
}

}  // namespace

void sort_like_reference(std::vector<TensorDecl>& tensors) {
  // The reference sorts by its Dtype enum, declared "in increasing alignment order".
  static constexpr std::string_view kRustDtypeOrder[] = {
      "BOOL", "F4",  "F6_E2M3", "F6_E3M2", "U8",  "I8",  "F8_E5M2", "F8_E4M3", "F8_E8M0", "I16",
      "U16",  "F16", "BF16",    "I32",     "U32", "F32", "C64",     "F64",     "I64",     "U64"};
  auto rank = [](DType d) {
    std::string_view s = dtype_info(d).safetensors;
    return std::find(std::begin(kRustDtypeOrder), std::end(kRustDtypeOrder), s) -
           std::begin(kRustDtypeOrder);
  };
  std::stable_sort(tensors.begin(), tensors.end(), [&](const TensorDecl& a, const TensorDecl& b) {
    auto ra = rank(a.dtype), rb = rank(b.dtype);
    return ra != rb ? ra > rb : a.name < b.name;
  });
}

Result<std::string> safetensors_header_bytes(std::span<const TensorDecl> tensors,
                                             const std::map<std::string, std::string>& metadata) {
  QSWAP_RETURN_IF_ERROR(check_decls(tensors, metadata));
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json md = nlohmann::ordered_json::object();
    for (const auto& [key, value] : metadata) md[key] = value;
    header["__metadata__"] = std::move(md);
  }
  uint64_t offset = 0;
  for (const TensorDecl& t : tensors) {
    uint64_t nbytes = tensor_bytes(t).value();  // checked above
    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    entry["dtype"] = dtype_info(t.dtype).safetensors;
    entry["shape"] = t.shape;
    entry["data_offsets"] = {offset, offset + nbytes};
    header[t.name] = std::move(entry);
    offset += nbytes;
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  if (json.size() > kSafetensorsMaxHeaderBytes) {
    return invalid_argument("header of {} bytes exceeds the {}-byte limit readers enforce", json.size(),
                            kSafetensorsMaxHeaderBytes);
  }
  std::string out(8, '\0');
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + json;
}

Result<std::vector<std::byte>> serialize_safetensors(
    std::span<const TensorData> tensors, const std::map<std::string, std::string>& metadata) {
  std::vector<TensorDecl> decls;
  for (const TensorData& t : tensors) decls.push_back({t.name, t.dtype, t.shape});
  QSWAP_ASSIGN_OR_RETURN(std::string header, safetensors_header_bytes(decls, metadata));
  std::vector<std::byte> out(reinterpret_cast<const std::byte*>(header.data()),
                             reinterpret_cast<const std::byte*>(header.data()) + header.size());
  for (const TensorData& t : tensors) {
    uint64_t nbytes = tensor_bytes(decls[&t - tensors.data()]).value();
    if (t.data.size() != nbytes) {
      return invalid_argument("tensor '{}': {} {} needs {} bytes, got {}", t.name, dtype_name(t.dtype),
                              format_shape(t.shape), nbytes, t.data.size());
    }
    out.insert(out.end(), t.data.begin(), t.data.end());
  }
  return out;
}

Result<SafetensorsWriter> SafetensorsWriter::create(
    const fs::path& path, std::vector<TensorDecl> tensors,
    const std::map<std::string, std::string>& metadata) {
  QSWAP_ASSIGN_OR_RETURN(std::string header, safetensors_header_bytes(tensors, metadata));
  SafetensorsWriter w;
  w.path_ = path;
  w.tmp_path_ = path;
  w.tmp_path_ += ".tmp";
  uint64_t offset = header.size();
  for (TensorDecl& t : tensors) {
    uint64_t nbytes = tensor_bytes(t).value();
    w.by_name_.emplace(t.name, w.slots_.size());
    w.slots_.push_back({std::move(t), offset, nbytes, 0});
    offset += nbytes;
  }
  w.file_size_ = offset;
  w.fd_ = ::open(w.tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w.fd_ < 0) return io_error("cannot create '{}': {}", w.tmp_path_.string(), std::strerror(errno));
  QSWAP_RETURN_IF_ERROR(write_all_at(
      w.fd_, w.tmp_path_, reinterpret_cast<const std::byte*>(header.data()), header.size(), 0));
  if (::ftruncate(w.fd_, static_cast<off_t>(w.file_size_)) != 0) {
    return io_error("cannot size '{}' to {} bytes: {}", w.tmp_path_.string(), w.file_size_,
                    std::strerror(errno));
  }
  return w;
}

SafetensorsWriter::SafetensorsWriter(SafetensorsWriter&& other) noexcept
    : path_(std::move(other.path_)),
      tmp_path_(std::move(other.tmp_path_)),
      fd_(std::exchange(other.fd_, -1)),
      file_size_(other.file_size_),
      slots_(std::move(other.slots_)),
      by_name_(std::move(other.by_name_)) {}

SafetensorsWriter& SafetensorsWriter::operator=(SafetensorsWriter&& other) noexcept {
  if (this != &other) {
    abandon();
    path_ = std::move(other.path_);
    tmp_path_ = std::move(other.tmp_path_);
    fd_ = std::exchange(other.fd_, -1);
    file_size_ = other.file_size_;
    slots_ = std::move(other.slots_);
    by_name_ = std::move(other.by_name_);
  }
  return *this;
}

SafetensorsWriter::~SafetensorsWriter() { abandon(); }

void SafetensorsWriter::abandon() {
  if (fd_ < 0) return;
  ::close(fd_);
  fd_ = -1;
  std::error_code ec;
  fs::remove(tmp_path_, ec);
}

Status SafetensorsWriter::write(std::string_view name, std::span<const std::byte> bytes) {
  if (fd_ < 0) return failed_precondition("{}: writer is finished or failed", path_.string());
  auto it = by_name_.find(std::string(name));
  if (it == by_name_.end()) {
    return invalid_argument("{}: tensor '{}' was not declared", path_.string(), name);
  }
  Slot& slot = slots_[it->second];
  if (bytes.size() > slot.nbytes - slot.written) {
    return invalid_argument("{}: tensor '{}' has {} bytes; {} are written and {} more do not fit",
                            path_.string(), name, slot.nbytes, slot.written, bytes.size());
  }
  QSWAP_RETURN_IF_ERROR(
      write_all_at(fd_, tmp_path_, bytes.data(), bytes.size(), slot.file_offset + slot.written));
  slot.written += bytes.size();
  return {};
}

Status SafetensorsWriter::finish() {
  if (fd_ < 0) return failed_precondition("{}: writer is finished or failed", path_.string());
  for (const Slot& slot : slots_) {
    if (slot.written != slot.nbytes) {
      return failed_precondition("{}: tensor '{}' is incomplete: {} of {} bytes written",
                                 path_.string(), slot.decl.name, slot.written, slot.nbytes);
    }
  }
  int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) {
    Status s = io_error("cannot close '{}': {}", tmp_path_.string(), std::strerror(errno));
    std::error_code ec;
    fs::remove(tmp_path_, ec);
    return s;
  }
  std::error_code ec;
  fs::rename(tmp_path_, path_, ec);
  if (ec) {
    fs::remove(tmp_path_, ec);
    return io_error("cannot rename '{}' to '{}': {}", tmp_path_.string(), path_.string(), ec.message());
  }
  return {};
}

Status write_safetensors(const fs::path& path, std::span<const TensorData> tensors,
                         const std::map<std::string, std::string>& metadata) {
  std::vector<TensorDecl> decls;
  for (const TensorData& t : tensors) decls.push_back({t.name, t.dtype, t.shape});
  QSWAP_ASSIGN_OR_RETURN(SafetensorsWriter writer, SafetensorsWriter::create(path, decls, metadata));
  for (const TensorData& t : tensors) QSWAP_RETURN_IF_ERROR(writer.write(t.name, t.data));
  return writer.finish();
}

std::vector<std::vector<size_t>> plan_safetensors_shards(std::span<const TensorDecl> tensors,
                                                         uint64_t max_shard_bytes) {
  std::vector<std::vector<size_t>> shards;
  std::vector<size_t> current;
  uint64_t current_bytes = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    Result<uint64_t> size = tensor_bytes(tensors[i]);
    uint64_t nbytes = size.ok() ? *size : 0;
    if (nbytes > max_shard_bytes) {
      shards.push_back({i});
      continue;
    }
    if (current_bytes + nbytes > max_shard_bytes) {
      shards.push_back(std::move(current));
      current.clear();
      current_bytes = 0;
    }
    current.push_back(i);
    current_bytes += nbytes;
  }
  if (!current.empty()) shards.push_back(std::move(current));
  return shards;
}

std::string safetensors_shard_name(size_t index, size_t count) {
  return fmt::format("model-{:05d}-of-{:05d}.safetensors", index + 1, count);
}

Result<ShardedSafetensorsWriter> ShardedSafetensorsWriter::create(
    const fs::path& dir, std::vector<TensorDecl> tensors, uint64_t max_shard_bytes,
    const std::map<std::string, std::string>& metadata) {
  QSWAP_RETURN_IF_ERROR(check_decls(tensors, metadata));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return io_error("cannot create directory '{}': {}", dir.string(), ec.message());

  ShardedSafetensorsWriter w;
  w.dir_ = dir;
  std::vector<std::vector<size_t>> plan = plan_safetensors_shards(tensors, max_shard_bytes);
  if (plan.empty()) plan.emplace_back();  // no tensors: one empty model.safetensors
  for (size_t s = 0; s < plan.size(); ++s) {
    std::string file = plan.size() == 1 ? std::string(kSafetensorsSingleName)
                                        : safetensors_shard_name(s, plan.size());
    std::vector<TensorDecl> decls;
    for (size_t i : plan[s]) {
      w.shard_of_.emplace(tensors[i].name, s);
      w.weight_map_.emplace_back(tensors[i].name, file);
      w.total_size_ += tensor_bytes(tensors[i]).value();
      w.total_parameters_ += static_cast<uint64_t>(num_elements(tensors[i].shape));
      decls.push_back(std::move(tensors[i]));
    }
    QSWAP_ASSIGN_OR_RETURN(SafetensorsWriter shard,
                           SafetensorsWriter::create(dir / file, std::move(decls), metadata));
    w.shards_.push_back(std::move(shard));
  }
  return w;
}

Status ShardedSafetensorsWriter::write(std::string_view name, std::span<const std::byte> bytes) {
  auto it = shard_of_.find(std::string(name));
  if (it == shard_of_.end()) {
    return invalid_argument("{}: tensor '{}' was not declared", dir_.string(), name);
  }
  return shards_[it->second].write(name, bytes);
}

std::vector<fs::path> ShardedSafetensorsWriter::files() const {
  std::vector<fs::path> out;
  for (const SafetensorsWriter& s : shards_) out.push_back(s.path());
  if (shards_.size() > 1) out.push_back(dir_ / kSafetensorsIndexName);
  return out;
}

Status ShardedSafetensorsWriter::finish() {
  for (SafetensorsWriter& s : shards_) QSWAP_RETURN_IF_ERROR(s.finish());
  if (shards_.size() > 1) {
    nlohmann::json index;  // std::map-backed: keys sorted like json.dumps(sort_keys=True)
    index["metadata"]["total_parameters"] = total_parameters_;
    index["metadata"]["total_size"] = total_size_;
    index["weight_map"] = nlohmann::json::object();
    for (const auto& [tensor, file] : weight_map_) index["weight_map"][tensor] = file;
    std::string text = index.dump(2, ' ', /*ensure_ascii=*/true) + "\n";
    QSWAP_RETURN_IF_ERROR(write_file_atomic(
        dir_ / kSafetensorsIndexName,
        std::span(reinterpret_cast<const std::byte*>(text.data()), text.size())));
  }
  // Remove what an earlier save with another shard count left behind (as huggingface_hub does),
  // so open_safetensors_dir cannot pick up a stale index or shard.
  std::set<std::string> ours;
  for (const fs::path& p : files()) ours.insert(p.filename().string());
  static const std::regex kOurLayout(R"(model(-\d{5}-of-\d{5})?\.safetensors(\.index\.json)?)");
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!ours.contains(name) && std::regex_match(name, kOurLayout)) {
      std::error_code rm;
      fs::remove(it->path(), rm);
    }
  }
  return {};
}

}  // namespace qswap
