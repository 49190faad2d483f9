#include "qswap/model/weight_map.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

namespace qswap {
namespace {

const std::filesystem::path kConfigs = std::filesystem::path(QSWAP_TEST_DATA_DIR) / "configs";

WeightMap map_for(const char* file) {
  Result<ModelConfig> c = load_model_config(kConfigs / file);
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  Result<WeightMap> m = WeightMap::build(*c);
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  return std::move(m).value();
}

// Parameter counts published on the model cards (see tests/data/configs/README.md).
TEST(WeightMapTest, ParameterCountsMatchPublishedModels) {
  EXPECT_EQ(map_for("qwen3-0.6b.json").num_checkpoint_elements(), 596'049'920);
  EXPECT_EQ(map_for("qwen2.5-0.5b.json").num_checkpoint_elements(), 494'032'768);
  EXPECT_EQ(map_for("llama-3.2-1b.json").num_checkpoint_elements(), 1'235'814'400);
}

TEST(WeightMapTest, Qwen3TensorsAndFusedTargets) {
  WeightMap m = map_for("qwen3-0.6b.json");
  // Per layer: 2 norms, q/k/v, q/k norm, o, gate/up/down = 11; plus embed and final norm; tied.
  EXPECT_EQ(m.tensors().size(), 28u * 11u + 2u);
  const CheckpointTensor* k = m.find("model.layers.3.self_attn.k_proj.weight");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->shape, (Shape{1024, 1024}));
  EXPECT_EQ(k->shard, 1);
  EXPECT_EQ(k->row_offset, 2048);  // after q's 16 * 128 rows
  const ParamSpec& qkv = m.params()[static_cast<size_t>(k->param)];
  EXPECT_EQ(qkv.name, "layers.3.qkv_proj");
  EXPECT_EQ(qkv.shape, (Shape{2048 + 1024 + 1024, 1024}));
  EXPECT_TRUE(qkv.is_linear);
  EXPECT_EQ(qkv.shard_rows, (std::vector<int64_t>{2048, 1024, 1024}));
  EXPECT_EQ(m.unit_of(k->param), 3);

  const CheckpointTensor* up = m.find("model.layers.27.mlp.up_proj.weight");
  ASSERT_NE(up, nullptr);
  EXPECT_EQ(up->row_offset, 3072);
  EXPECT_EQ(m.params()[static_cast<size_t>(up->param)].shape, (Shape{6144, 1024}));

  EXPECT_NE(m.find("model.layers.0.self_attn.q_norm.weight"), nullptr);
  EXPECT_EQ(m.find("model.layers.0.self_attn.q_proj.bias"), nullptr);
  EXPECT_EQ(m.find("lm_head.weight"), nullptr);
  EXPECT_EQ(m.classify("lm_head.weight"), NameKind::kIgnored);  // tied copy
  EXPECT_EQ(m.classify("model.layers.0.self_attn.rotary_emb.inv_freq"), NameKind::kIgnored);
  EXPECT_EQ(m.classify("model.layers.0.mlp.experts.0.weight"), NameKind::kUnknown);
  EXPECT_EQ(m.classify("model.layers.28.mlp.up_proj.weight"), NameKind::kUnknown);
}

TEST(WeightMapTest, Qwen2HasBiasesAndNoQkNorm) {
  WeightMap m = map_for("qwen2.5-0.5b.json");
  const CheckpointTensor* vb = m.find("model.layers.0.self_attn.v_proj.bias");
  ASSERT_NE(vb, nullptr);
  EXPECT_EQ(vb->shape, (Shape{128}));
  EXPECT_EQ(vb->row_offset, 896 + 128);
  EXPECT_FALSE(m.params()[static_cast<size_t>(vb->param)].is_linear);
  EXPECT_EQ(m.find("model.layers.0.self_attn.o_proj.bias"), nullptr);
  EXPECT_EQ(m.find("model.layers.0.self_attn.q_norm.weight"), nullptr);
}

TEST(WeightMapTest, UntiedModelsNeedLmHead) {
  Result<ModelConfig> c = load_model_config(kConfigs / "llama-3.2-1b.json");
  ASSERT_TRUE(c.ok());
  c->tie_word_embeddings = false;
  Result<WeightMap> m = WeightMap::build(*c);
  ASSERT_TRUE(m.ok());
  const CheckpointTensor* head = m->find("lm_head.weight");
  ASSERT_NE(head, nullptr);
  EXPECT_TRUE(head->required);
  EXPECT_EQ(head->shape, (Shape{128256, 2048}));
}

TEST(WeightMapTest, UnitsPartitionTheParameters) {
  WeightMap m = map_for("qwen3-0.6b.json");
  EXPECT_EQ(m.num_units(), 28 + 2);  // layers, embed_tokens, norm
  std::set<int> seen;
  for (int u = 0; u < m.num_units(); ++u) {
    for (int p : m.unit_params(u)) {
      EXPECT_TRUE(seen.insert(p).second);
      EXPECT_EQ(m.unit_of(p), u);
    }
  }
  EXPECT_EQ(seen.size(), m.params().size());
  EXPECT_EQ(m.unit_name(5), "layer 5");
  EXPECT_EQ(m.unit_name(28), "embed_tokens");
  // Every tensor's rows lie inside its parameter and the shards tile it exactly.
  std::vector<int64_t> rows(m.params().size(), 0);
  for (const CheckpointTensor& t : m.tensors()) {
    const ParamSpec& p = m.params()[static_cast<size_t>(t.param)];
    EXPECT_LE(t.row_offset + t.shape[0], p.shape[0]) << t.name;
    rows[static_cast<size_t>(t.param)] += t.shape[0];
  }
  for (size_t p = 0; p < rows.size(); ++p) EXPECT_EQ(rows[p], m.params()[p].shape[0]) << m.params()[p].name;
}

}  // namespace
}  // namespace qswap
