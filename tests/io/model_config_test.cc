#include "qswap/io/model_config.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace qswap {
namespace {

const std::filesystem::path kConfigs = std::filesystem::path(QSWAP_TEST_DATA_DIR) / "configs";

TEST(ModelConfigTest, ParsesQwen3) {
  Result<ModelConfig> c = load_model_config(kConfigs / "qwen3-0.6b.json");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->arch, Arch::kQwen3);
  EXPECT_EQ(c->hidden_size, 1024);
  EXPECT_EQ(c->num_hidden_layers, 28);
  EXPECT_EQ(c->num_attention_heads, 16);
  EXPECT_EQ(c->num_key_value_heads, 8);
  EXPECT_EQ(c->head_dim, 128);  // explicit, not hidden/heads (= 64)
  EXPECT_EQ(c->intermediate_size, 3072);
  EXPECT_EQ(c->vocab_size, 151936);
  EXPECT_EQ(c->max_position_embeddings, 40960);
  EXPECT_DOUBLE_EQ(c->rope_theta, 1e6);
  EXPECT_EQ(c->rope_scaling.type, RopeScaling::Type::kNone);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-6);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_FALSE(c->attention_bias);
  EXPECT_TRUE(c->has_qk_norm());
  EXPECT_FALSE(c->has_qkv_bias());
  EXPECT_EQ(c->torch_dtype, DType::kBF16);
  EXPECT_EQ(c->eos_token_ids, std::vector<int64_t>{151645});
}

TEST(ModelConfigTest, Qwen2HasQkvBiasWithoutAKey) {
  Result<ModelConfig> c = load_model_config(kConfigs / "qwen2.5-0.5b.json");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->arch, Arch::kQwen2);
  EXPECT_EQ(c->head_dim, 64);  // 896 / 14
  EXPECT_TRUE(c->has_qkv_bias());
  EXPECT_FALSE(c->has_o_bias());
  EXPECT_FALSE(c->has_qk_norm());
}

TEST(ModelConfigTest, ParsesLlama3RopeScaling) {
  Result<ModelConfig> c = load_model_config(kConfigs / "llama-3.2-1b.json");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->arch, Arch::kLlama);
  EXPECT_EQ(c->rope_scaling.type, RopeScaling::Type::kLlama3);
  EXPECT_DOUBLE_EQ(c->rope_scaling.factor, 32.0);
  EXPECT_DOUBLE_EQ(c->rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c->rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c->rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_DOUBLE_EQ(c->rope_theta, 500000.0);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-5);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
  EXPECT_EQ(c->bos_token_id, 128000);
}

TEST(ModelConfigTest, AcceptsTransformers5RopeParameters) {
  Result<ModelConfig> c = parse_model_config(R"({
    "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 300,
    "dtype": "float32",
    "rope_parameters": {"rope_type": "llama3", "rope_theta": 50000.0, "factor": 8.0,
                        "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                        "original_max_position_embeddings": 64}})", "inline");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_DOUBLE_EQ(c->rope_theta, 50000.0);
  EXPECT_EQ(c->rope_scaling.type, RopeScaling::Type::kLlama3);
  EXPECT_DOUBLE_EQ(c->rope_scaling.factor, 8.0);
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_EQ(c->torch_dtype, DType::kF32);
}

TEST(ModelConfigTest, ErrorsNameTheKeyAndTheFile) {
  Result<ModelConfig> missing = parse_model_config(
      R"({"architectures": ["Qwen3ForCausalLM"], "hidden_size": 64, "num_hidden_layers": 2,
          "num_attention_heads": 4, "vocab_size": 300})", "dir/config.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "dir/config.json: missing required key 'intermediate_size'");

  Result<ModelConfig> unknown = parse_model_config(R"({"architectures": ["GPT2LMHeadModel"]})", "c.json");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(unknown.status().message().find("'GPT2LMHeadModel' is not supported"), std::string::npos);

  Result<ModelConfig> wrong_type = parse_model_config(
      R"({"architectures": ["Qwen3ForCausalLM"], "hidden_size": "64"})", "c.json");
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_EQ(wrong_type.status().message(), "c.json: key 'hidden_size' must be a positive integer, got \"64\"");

  EXPECT_FALSE(parse_model_config("[1, 2]", "c.json").ok());
  EXPECT_FALSE(parse_model_config("{not json", "c.json").ok());
  EXPECT_FALSE(load_model_config(kConfigs / "does-not-exist.json").ok());
}

TEST(ModelConfigTest, BadHeadGeometryIsRejected) {
  Result<ModelConfig> c = parse_model_config(
      R"({"architectures": ["Qwen3ForCausalLM"], "hidden_size": 64, "num_hidden_layers": 2,
          "num_attention_heads": 4, "num_key_value_heads": 3, "intermediate_size": 128, "vocab_size": 300})",
      "c.json");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("not a multiple of num_key_value_heads 3"), std::string::npos);
}

TEST(ModelConfigTest, SerializedConfigParsesBack) {
  Result<ModelConfig> original = load_model_config(kConfigs / "llama-3.2-1b.json");
  ASSERT_TRUE(original.ok());
  Result<ModelConfig> again = parse_model_config(model_config_to_json(*original), "roundtrip");
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(again->arch, original->arch);
  EXPECT_EQ(again->head_dim, original->head_dim);
  EXPECT_EQ(again->num_key_value_heads, original->num_key_value_heads);
  EXPECT_EQ(again->rope_scaling.type, original->rope_scaling.type);
  EXPECT_EQ(again->rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(again->eos_token_ids, original->eos_token_ids);
  EXPECT_EQ(again->tie_word_embeddings, original->tie_word_embeddings);
}

}  // namespace
}  // namespace qswap
