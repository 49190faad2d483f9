#include "qswap/io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "qswap/base/untrusted.h"
#include "qswap/io/json_strict.h"
#include "qswap/io/safetensors_source.h"

namespace qswap {
namespace {

using nlohmann::json;

// dtypes the reference library knows but qswap has no DType for.
constexpr std::string_view kKnownUnsupportedDTypes[] = {"F4", "F6_E2M3", "F6_E3M2", "C64"};

std::string short_shape(const Shape& shape) {
  constexpr size_t kMax = 8;
  if (shape.size() <= kMax) return format_shape(shape);
  Shape head(shape.begin(), shape.begin() + kMax);
  std::string s = format_shape(head);
  s.pop_back();
  return fmt::format("{}, ... ({} dims)]", s, shape.size());
}

// A non-negative integer that fits `max`. Like serde's usize: "-0" and "2.0" are not.
std::optional<uint64_t> as_uint(const json& v, uint64_t max) {
  if (!v.is_number_unsigned() || v.get<uint64_t>() > max) return std::nullopt;
  return v.get<uint64_t>();
}

struct Entry {
  TensorInfo info;
  uint64_t begin = 0;
  uint64_t end = 0;
};

Result<Entry> parse_entry(std::string_view file, const std::string& name, const json& value,
                          uint64_t buffer_size) {
  std::string tensor = fmt::format("{}: tensor {}", file, quote_untrusted(name));
  if (!value.is_object()) {
    return data_loss("{}: entry is a JSON {}, not an object", tensor, json_type_name(value));
  }
  auto field = [&](std::string_view key) -> const json* {
    auto it = value.find(key);
    return it == value.end() ? nullptr : &*it;
  };
  const json* dtype = field("dtype");
  const json* shape = field("shape");
  const json* offsets = field("data_offsets");
  for (auto [ptr, key] : {std::pair{dtype, "dtype"}, {shape, "shape"}, {offsets, "data_offsets"}}) {
    if (ptr == nullptr) return data_loss("{}: missing field '{}'", tensor, key);
  }

  Entry e;
  e.info.name = name;
  e.info.location = std::string(file);
  if (!dtype->is_string()) {
    return data_loss("{}: dtype is a JSON {}, not a string", tensor, json_type_name(*dtype));
  }
  const std::string& spelling = dtype->get_ref<const std::string&>();
  std::optional<DType> dt = dtype_from_safetensors(spelling);
  if (!dt) {
    if (std::find(std::begin(kKnownUnsupportedDTypes), std::end(kKnownUnsupportedDTypes), spelling) !=
        std::end(kKnownUnsupportedDTypes)) {
      return unimplemented("{}: dtype {} is valid safetensors but not supported by qswap", tensor,
                           spelling);
    }
    return data_loss("{}: unknown dtype {}", tensor, quote_untrusted(spelling));
  }
  e.info.dtype = *dt;

  if (!shape->is_array()) {
    return data_loss("{}: shape is a JSON {}, not an array", tensor, json_type_name(*shape));
  }
  e.info.shape.reserve(shape->size());
  for (const json& d : *shape) {
    std::optional<uint64_t> dim = as_uint(d, std::numeric_limits<int64_t>::max());
    if (!dim) {
      return data_loss("{}: shape dimension {} is not an integer in [0, 2^63)", tensor,
                       quote_untrusted(d.dump()));
    }
    e.info.shape.push_back(static_cast<int64_t>(*dim));
  }
  std::optional<int64_t> numel = checked_num_elements(e.info.shape);
  if (!numel) {
    return data_loss("{}: shape {} has more elements than fit in 64 bits", tensor,
                     short_shape(e.info.shape));
  }
  uint64_t nbytes;
  if (__builtin_mul_overflow(static_cast<uint64_t>(*numel), dtype_size(*dt), &nbytes) ||
      nbytes > std::numeric_limits<size_t>::max()) {
    return data_loss("{}: {} {} is more bytes than fit in 64 bits", tensor, spelling,
                     short_shape(e.info.shape));
  }
  e.info.nbytes = static_cast<size_t>(nbytes);

  std::optional<uint64_t> begin, end;
  if (offsets->is_array() && offsets->size() == 2) {
    begin = as_uint((*offsets)[0], std::numeric_limits<uint64_t>::max());
    end = as_uint((*offsets)[1], std::numeric_limits<uint64_t>::max());
  }
  if (!begin || !end) {
    return data_loss("{}: data_offsets {} is not a pair of non-negative integers", tensor,
                     quote_untrusted(offsets->dump()));
  }
  e.begin = *begin;
  e.end = *end;
  if (e.begin > e.end) {
    return data_loss("{}: data_offsets [{}, {}] end before they begin", tensor, e.begin, e.end);
  }
  if (e.end > buffer_size) {
    return data_loss("{}: data_offsets [{}, {}] run past the end of the {}-byte data buffer", tensor,
                     e.begin, e.end, buffer_size);
  }
  if (e.end - e.begin != nbytes) {
    return data_loss("{} has data_offsets [{}, {}] ({} bytes) but {} {} needs {} bytes", tensor,
                     e.begin, e.end, e.end - e.begin, spelling, short_shape(e.info.shape), nbytes);
  }
  return e;
}

Status parse_metadata(std::string_view file, const json& value,
                      std::map<std::string, std::string>& out) {
  if (value.is_null()) return {};  // the reference reads it as an absent Option
  if (!value.is_object()) {
    return data_loss("{}: __metadata__ is a JSON {}, not an object of strings", file,
                     json_type_name(value));
  }
  for (const auto& [key, v] : value.items()) {
    if (!v.is_string()) {
      return data_loss("{}: __metadata__ value of {} is a JSON {}, not a string", file,
                       quote_untrusted(key), json_type_name(v));
    }
    out.emplace(key, v.get<std::string>());
  }
  return {};
}

}  // namespace

Result<SafetensorsHeader> parse_safetensors_header(std::span<const std::byte> file_bytes,
                                                   std::string_view name) {
  const uint64_t file_size = file_bytes.size();
  if (file_size < 8) {
    return data_loss("{}: file is {} bytes, too short for the 8-byte header length", name, file_size);
  }
  SafetensorsHeader h;
  h.header_bytes = load_le(file_bytes.data(), 8);
  if (h.header_bytes > kSafetensorsMaxHeaderBytes) {
    return data_loss("{}: header length {} exceeds the {}-byte limit (corrupt, or not safetensors)",
                     name, h.header_bytes, kSafetensorsMaxHeaderBytes);
  }
  if (h.header_bytes > file_size - 8) {
    return data_loss("{}: header length {} runs past the end of the {}-byte file", name,
                     h.header_bytes, file_size);
  }
  const uint64_t data_start = 8 + h.header_bytes;
  const uint64_t buffer_size = file_size - data_start;
  std::string_view text(reinterpret_cast<const char*>(file_bytes.data()) + 8, h.header_bytes);

  Result<json> parsed = parse_json_strict(text);
  if (!parsed.ok()) return parsed.status().with_context(fmt::format("{}: header", name));
  const json& root = *parsed;
  if (!root.is_object()) {
    return data_loss("{}: header is a JSON {}, not an object", name, json_type_name(root));
  }

  std::vector<Entry> entries;
  entries.reserve(root.size());
  for (const auto& [key, value] : root.items()) {
    if (key == "__metadata__") {
      QSWAP_RETURN_IF_ERROR(parse_metadata(name, value, h.metadata));
      continue;
    }
    QSWAP_ASSIGN_OR_RETURN(Entry e, parse_entry(name, key, value, buffer_size));
    entries.push_back(std::move(e));
  }

  // The reference sorts by data_offsets and requires the tensors to tile the buffer exactly.
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    if (e.begin < covered) {
      const Entry& prev = entries[i - 1];
      return data_loss("{}: tensor {} (data_offsets [{}, {}]) overlaps tensor {} ([{}, {}])", name,
                       quote_untrusted(e.info.name), e.begin, e.end, quote_untrusted(prev.info.name),
                       prev.begin, prev.end);
    }
    if (e.begin > covered) {
      return data_loss("{}: data buffer bytes [{}, {}) before tensor {} belong to no tensor (a hole)",
                       name, covered, e.begin, quote_untrusted(e.info.name));
    }
    covered = e.end;
  }
  if (covered != buffer_size) {
    return data_loss("{}: data buffer is {} bytes but the tensors cover only {}: {} trailing bytes",
                     name, buffer_size, covered, buffer_size - covered);
  }

  h.tensors.reserve(entries.size());
  h.file_offsets.reserve(entries.size());
  for (Entry& e : entries) {
    h.tensors.push_back(std::move(e.info));
    h.file_offsets.push_back(data_start + e.begin);
  }
  return h;
}

Result<SafetensorsSource::Shard> load_safetensors_shard(const std::filesystem::path& file) {
  QSWAP_ASSIGN_OR_RETURN(MappedFile mapped, MappedFile::open(file));
  SafetensorsSource::Shard shard;
  shard.path = file.string();
  shard.bytes = mapped.bytes();
  shard.file.emplace(std::move(mapped));
  QSWAP_ASSIGN_OR_RETURN(shard.header, parse_safetensors_header(shard.bytes, shard.path));
  std::string location = file.filename().string();
  for (TensorInfo& t : shard.header.tensors) t.location = location;
  return shard;
}

Result<std::unique_ptr<SafetensorsSource>> SafetensorsSource::create(
    std::string description, std::vector<Shard> shards,
    std::map<std::string, std::string> metadata) {
  if (shards.size() > std::numeric_limits<uint32_t>::max()) {
    return invalid_argument("{}: too many files ({})", description, shards.size());
  }
  std::unique_ptr<SafetensorsSource> source(
      new SafetensorsSource(std::move(description), std::move(shards)));
  std::vector<TensorInfo> tensors;
  for (uint32_t s = 0; s < source->shards_.size(); ++s) {
    SafetensorsHeader& h = source->shards_[s].header;
    for (size_t i = 0; i < h.tensors.size(); ++i) {
      tensors.push_back(std::move(h.tensors[i]));
      source->locations_.push_back({s, h.file_offsets[i]});
    }
    h.tensors.clear();  // moved into the listing
  }
  QSWAP_RETURN_IF_ERROR(source->set_tensors(std::move(tensors), std::move(metadata)));
  return source;
}

Status SafetensorsSource::read(const TensorInfo& t, size_t offset, std::span<std::byte> out) const {
  QSWAP_ASSIGN_OR_RETURN(size_t index, index_of(t));
  QSWAP_RETURN_IF_ERROR(check_range(index, offset, out.size()));
  if (out.empty()) return {};
  const Location& loc = locations_[index];
  std::memcpy(out.data(), shards_[loc.shard].bytes.data() + loc.file_offset + offset, out.size());
  return {};
}

Result<std::span<const std::byte>> SafetensorsSource::borrow(const TensorInfo& t) const {
  QSWAP_ASSIGN_OR_RETURN(size_t index, index_of(t));
  const Location& loc = locations_[index];
  return shards_[loc.shard].bytes.subspan(loc.file_offset, tensors()[index].nbytes);
}

Result<std::unique_ptr<TensorSource>> open_safetensors(const std::filesystem::path& file) {
  QSWAP_ASSIGN_OR_RETURN(SafetensorsSource::Shard shard, load_safetensors_shard(file));
  std::map<std::string, std::string> metadata = shard.header.metadata;
  std::vector<SafetensorsSource::Shard> shards;
  shards.push_back(std::move(shard));
  QSWAP_ASSIGN_OR_RETURN(auto source, SafetensorsSource::create(file.string(), std::move(shards),
                                                                std::move(metadata)));
  return std::unique_ptr<TensorSource>(std::move(source));
}

Result<std::unique_ptr<TensorSource>> open_safetensors_memory(std::span<const std::byte> bytes,
                                                              std::string name) {
  SafetensorsSource::Shard shard;
  shard.path = name;
  shard.bytes = bytes;
  QSWAP_ASSIGN_OR_RETURN(shard.header, parse_safetensors_header(bytes, name));
  std::map<std::string, std::string> metadata = shard.header.metadata;
  std::vector<SafetensorsSource::Shard> shards;
  shards.push_back(std::move(shard));
  QSWAP_ASSIGN_OR_RETURN(auto source,
                         SafetensorsSource::create(name, std::move(shards), std::move(metadata)));
  return std::unique_ptr<TensorSource>(std::move(source));
}

Result<std::unique_ptr<TensorSource>> open_safetensors_files(
    const std::vector<std::filesystem::path>& files) {
  if (files.empty()) return invalid_argument("open_safetensors_files: no files given");
  std::vector<SafetensorsSource::Shard> shards;
  std::map<std::string, std::string> metadata;
  for (const std::filesystem::path& file : files) {
    QSWAP_ASSIGN_OR_RETURN(SafetensorsSource::Shard shard, load_safetensors_shard(file));
    metadata.insert(shard.header.metadata.begin(), shard.header.metadata.end());
    shards.push_back(std::move(shard));
  }
  std::string description =
      files.size() == 1 ? files[0].string()
                        : fmt::format("{} (+{} more files)", files[0].string(), files.size() - 1);
  QSWAP_ASSIGN_OR_RETURN(auto source,
                         SafetensorsSource::create(std::move(description), std::move(shards),
                                                   std::move(metadata)));
  return std::unique_ptr<TensorSource>(std::move(source));
}

}  // namespace qswap
