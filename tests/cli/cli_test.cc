// The `qswap` command as a user runs it: exit codes, --json output, and errors on stderr.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>

#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include "qswap/engine/synth.h"
#include "qswap/model/weight_map.h"

namespace qswap {
namespace {

const std::filesystem::path kData = QSWAP_TEST_DATA_DIR;

struct CliRun {
  int exit_code;
  std::string out;  // stdout and stderr
};

CliRun qswap(const std::string& args) {
  std::string command = std::string(QSWAP_CLI_PATH) + " " + args + " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  CliRun run{-1, ""};
  if (!pipe) return run;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), pipe.get())) > 0) run.out.append(buf.data(), n);
  int status = pclose(pipe.release());
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

nlohmann::json json_of(const CliRun& run) {
  auto j = nlohmann::json::parse(run.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << run.out;
  return j;
}

TEST(CliTest, InspectReportsTheCheckpoint) {
  CliRun run = qswap("inspect " + (kData / "arith-mul").string() + " --json");
  ASSERT_EQ(run.exit_code, 0) << run.out;
  nlohmann::json j = json_of(run);
  EXPECT_EQ(j["architecture"], "Qwen3ForCausalLM");
  EXPECT_TRUE(j["missing"].empty());
  EXPECT_TRUE(j["unexpected"].empty());
  std::set<std::string> shards;
  int64_t elements = 0;
  for (const auto& t : j["tensors"]) {
    shards.insert(t["shard"].get<std::string>());
    int64_t n = 1;
    for (int64_t d : t["shape"]) n *= d;
    elements += n;
  }
  EXPECT_EQ(shards.size(), 3u);
  EXPECT_EQ(j["num_parameters"].get<int64_t>(), elements);
  EXPECT_EQ(j["dtype_bytes"]["bf16"].get<int64_t>(), 2 * elements);
}

TEST(CliTest, SynthInspectReloadExport) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "qswap_cli_test";
  std::filesystem::remove_all(dir);
  ASSERT_EQ(qswap("synth --preset tiny --seed 1 " + (dir / "a").string()).exit_code, 0);
  ASSERT_EQ(qswap("synth --preset tiny --seed 2 --max-shard-mb 0.05 " + (dir / "b").string()).exit_code, 0);
  EXPECT_TRUE(std::filesystem::exists(dir / "b" / "model.safetensors.index.json"));

  CliRun inspect = qswap("inspect " + (dir / "a").string());
  ASSERT_EQ(inspect.exit_code, 0) << inspect.out;
  // Qwen3: 11 tensors per layer x 2 layers + embeddings + final norm.
  EXPECT_NE(inspect.out.find("all 24 tensors the architecture expects are present"), std::string::npos) << inspect.out;

  CliRun reload = qswap("reload " + (dir / "a").string() + " --from " + (dir / "b").string() +
                     " --quant fp8-block --times 2 --json --export " + (dir / "out").string());
  ASSERT_EQ(reload.exit_code, 0) << reload.out;
  nlohmann::json j = json_of(reload);
  EXPECT_EQ(j["version"], 3);
  EXPECT_EQ(j["reloads"].size(), 2u);
  EXPECT_EQ(j["reloads"][1]["bytes_in"], j["load"]["bytes_in"]);
  EXPECT_GT(j["best_gb_per_s"].get<double>(), 0.0);
  // The export is a safetensors checkpoint of the kernel tensors that `inspect`-level readers open.
  CliRun exported = qswap("inspect " + (dir / "out").string() + " --json");
  EXPECT_NE(exported.exit_code, 0) << "fused kernel tensors are not HF names: reported as missing/unexpected";
  nlohmann::json e = json_of(exported);
  EXPECT_TRUE(e["dtype_bytes"].contains("f8_e4m3"));
  EXPECT_TRUE(e["dtype_bytes"].contains("i32"));
  std::filesystem::remove_all(dir);
}

TEST(CliTest, SynthPresetsHaveRealShapes) {
  auto config = synth_preset(Arch::kQwen3, "0.6b");
  ASSERT_TRUE(config.ok());
  auto map = WeightMap::build(*config);
  ASSERT_TRUE(map.ok());
  EXPECT_EQ(map->num_checkpoint_elements(), 596'049'920);  // Qwen3-0.6B, tied embeddings
}

TEST(CliTest, GenerateAnswersWithTheFineTunedWeights) {
  CliRun run = qswap("generate " + (kData / "arith-mul").string() + " --quant fp8 -p \"3 4 =\" --json");
  ASSERT_EQ(run.exit_code, 0) << run.out;
  nlohmann::json j = json_of(run);
  EXPECT_EQ(j["text"], " 12");
  EXPECT_EQ(j["finish_reason"], "stop");
  EXPECT_EQ(j["weight_version"], 1);
  ASSERT_EQ(j["logprobs"].size(), j["token_ids"].size());
  for (double lp : j["logprobs"]) EXPECT_LE(lp, 0.0);
}

TEST(CliTest, PerplexityOfHeldOutText) {
  CliRun run = qswap("ppl " + (kData / "prose").string() + " " + (kData / "prose" / "heldout.txt").string() +
                  " --context 128 --json");
  ASSERT_EQ(run.exit_code, 0) << run.out;
  nlohmann::json j = json_of(run);
  // transformers' bf16 value from tests/data/prose/golden/golden.json, within 0.1 %.
  EXPECT_NEAR(j["perplexity"].get<double>(), 49.885, 0.05);
  EXPECT_EQ(j["tokens_scored"], 1833);
}

TEST(CliTest, ErrorsExitNonZeroWithAMessage) {
  CliRun missing = qswap("inspect /nonexistent/model");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.out.find("error: "), std::string::npos);
  EXPECT_NE(missing.out.find("/nonexistent/model"), std::string::npos);
  CliRun scheme = qswap("load " + (kData / "arith-base").string() + " --quant fp4");
  EXPECT_EQ(scheme.exit_code, 1);
  EXPECT_NE(scheme.out.find("unknown quantization scheme 'fp4'"), std::string::npos) << scheme.out;
  CliRun usage = qswap("reload " + (kData / "arith-base").string());  // --from is required
  EXPECT_NE(usage.exit_code, 0);
}

}  // namespace
}  // namespace qswap
