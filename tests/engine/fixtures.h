// The Hugging Face fixture models of tests/data (made by scripts/fixtures/make_fixtures.py) and
// their goldens from transformers.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace qswap::testing {

inline std::filesystem::path data_dir() { return QSWAP_TEST_DATA_DIR; }

inline nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
}

// Fixture directories that carry golden/golden.json.
inline std::vector<std::string> golden_fixtures() {
  std::vector<std::string> names;
  for (const char* name : {"arith-base", "arith-mul", "arith-add", "prose", "llama-tiny", "qwen2-tiny"}) {
    if (std::filesystem::exists(data_dir() / name / "golden" / "golden.json")) names.emplace_back(name);
  }
  return names;
}

inline const std::vector<std::string>& all_schemes() {
  static const std::vector<std::string> schemes = {"none", "fp8", "fp8-channel", "fp8-block", "mxfp8", "int8-channel"};
  return schemes;
}

}  // namespace qswap::testing
