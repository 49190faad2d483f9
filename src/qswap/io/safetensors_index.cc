// Sharded checkpoints (model.safetensors.index.json) and model directories.
#include <algorithm>
#include <set>
#include <system_error>

#include "qswap/base/mapped_file.h"
#include "qswap/io/json_strict.h"
#include "qswap/io/safetensors.h"
#include "qswap/io/safetensors_source.h"

namespace qswap {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Shard names come from an untrusted file: keep them inside the checkpoint directory.
Status check_shard_name(const std::string& index, const std::string& tensor, const std::string& shard) {
  fs::path p(shard);
  if (shard.empty()) return data_loss("{}: tensor '{}' maps to an empty shard name", index, tensor);
  if (p.is_absolute() || p.has_root_name() || p.has_root_directory()) {
    return data_loss("{}: tensor '{}' maps to absolute path '{}'; shards must be relative to the index",
                     index, tensor, shard);
  }
  for (const fs::path& part : p) {
    if (part == "..") {
      return data_loss("{}: tensor '{}' maps to '{}', which leaves the checkpoint directory", index,
                       tensor, shard);
    }
  }
  return {};
}

std::string metadata_value(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

}  // namespace

Result<std::unique_ptr<TensorSource>> open_safetensors_index(const fs::path& index_json) {
  const std::string index = index_json.string();
  QSWAP_ASSIGN_OR_RETURN(std::string text, read_text_file(index_json));
  Result<json> parsed = parse_json_strict(text);
  if (!parsed.ok()) return parsed.status().with_context(index);
  const json& root = *parsed;
  if (!root.is_object()) {
    return data_loss("{}: index is a JSON {}, not an object", index, json_type_name(root));
  }
  auto wm = root.find("weight_map");
  if (wm == root.end()) return data_loss("{}: no 'weight_map'", index);
  if (!wm->is_object()) {
    return data_loss("{}: 'weight_map' is a JSON {}, not an object", index, json_type_name(*wm));
  }

  std::map<std::string, std::string> metadata;
  if (auto md = root.find("metadata"); md != root.end() && !md->is_null()) {
    if (!md->is_object()) {
      return data_loss("{}: 'metadata' is a JSON {}, not an object", index, json_type_name(*md));
    }
    for (const auto& [key, v] : md->items()) metadata.emplace(key, metadata_value(v));
  }

  std::map<std::string, std::string> weight_map;  // tensor -> shard
  std::set<std::string> shard_names;
  for (const auto& [tensor, shard] : wm->items()) {
    if (!shard.is_string()) {
      return data_loss("{}: weight_map value of '{}' is a JSON {}, not a file name", index, tensor,
                       json_type_name(shard));
    }
    const std::string& name = shard.get_ref<const std::string&>();
    QSWAP_RETURN_IF_ERROR(check_shard_name(index, tensor, name));
    weight_map.emplace(tensor, name);
    shard_names.insert(name);
  }

  const fs::path dir = index_json.parent_path();
  std::vector<SafetensorsSource::Shard> shards;
  std::set<std::string> in_shards;  // every tensor name some shard holds
  for (const std::string& shard_name : shard_names) {
    Result<SafetensorsSource::Shard> shard = load_safetensors_shard(dir / shard_name);
    if (!shard.ok()) {
      return shard.status().with_context(fmt::format("{}: shard '{}'", index, shard_name));
    }
    for (const TensorInfo& t : shard->header.tensors) {
      auto it = weight_map.find(t.name);
      if (it == weight_map.end()) {
        return data_loss("{}: shard '{}' holds tensor '{}', which the index does not list", index,
                         shard_name, t.name);
      }
      if (it->second != shard_name) {
        return data_loss("{}: shard '{}' holds tensor '{}', but the index maps it to '{}'", index,
                         shard_name, t.name, it->second);
      }
      in_shards.insert(t.name);
    }
    shards.push_back(std::move(*shard));
  }
  // Every shard tensor is listed under its own shard (above), so a listed name that no shard
  // holds is missing from the shard the index names.
  for (const auto& [tensor, shard_name] : weight_map) {
    if (!in_shards.contains(tensor)) {
      return data_loss("{}: index maps tensor '{}' to shard '{}', which has no such tensor", index,
                       tensor, shard_name);
    }
  }
  for (const SafetensorsSource::Shard& shard : shards) {
    metadata.insert(shard.header.metadata.begin(), shard.header.metadata.end());
  }
  QSWAP_ASSIGN_OR_RETURN(auto source,
                         SafetensorsSource::create(index, std::move(shards), std::move(metadata)));
  return std::unique_ptr<TensorSource>(std::move(source));
}

Result<std::unique_ptr<TensorSource>> open_safetensors_dir(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return not_found("'{}' is not a directory", dir.string());
  const fs::path index = dir / kSafetensorsIndexName;
  const fs::path single = dir / kSafetensorsSingleName;
  if (fs::exists(index, ec)) return open_safetensors_index(index);
  if (fs::exists(single, ec)) return open_safetensors(single);

  std::vector<fs::path> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".safetensors" && it->is_regular_file(ec)) {
      files.push_back(it->path());
    }
  }
  if (ec) return io_error("cannot list '{}': {}", dir.string(), ec.message());
  if (files.empty()) {
    return not_found("{}: no {}, {} or *.safetensors file", dir.string(), kSafetensorsIndexName,
                     kSafetensorsSingleName);
  }
  std::sort(files.begin(), files.end());
  return open_safetensors_files(files);
}

Result<std::unique_ptr<TensorSource>> open_safetensors_path(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return open_safetensors_dir(path);
  if (path.filename().string().ends_with(".index.json")) return open_safetensors_index(path);
  return open_safetensors(path);
}

}  // namespace qswap
