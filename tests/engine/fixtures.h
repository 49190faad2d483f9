// The Hugging Face fixture models of tests/data (made by scripts/fixtures/make_fixtures.py) and
// their goldens from transformers.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "qswap/engine/engine.h"

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

// The greedy completion (4 tokens) of `prompt`; a failure is reported to the running test.
inline std::string greedy_answer(Engine& engine, const std::string& prompt) {
  GenerateRequest request;
  request.prompt = engine.tokenize(prompt).value();
  request.sampling.max_tokens = 4;
  auto r = engine.generate(request);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? r->text : "";
}

}  // namespace qswap::testing
