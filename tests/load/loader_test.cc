// The loader's invariants (DESIGN.md): reload equals fresh load, addresses are stable, staging is
// bounded, nothing half-applied is served — for every scheme x architecture x arrival order.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "synthetic_checkpoint.h"

namespace qswap {
namespace {

using testing::CheckpointTensorData;
using testing::incoming;
using testing::make_checkpoint;
using testing::tiny_config;

enum class Order { kCheckpoint, kReversed, kShuffled, kInterleaved };
const char* order_name(Order o) {
  switch (o) {
    case Order::kCheckpoint: return "checkpoint";
    case Order::kReversed: return "reversed";
    case Order::kShuffled: return "shuffled";
    case Order::kInterleaved: return "interleaved";
  }
  return "?";
}

// Permutation of the checkpoint's tensors for an arrival order.
std::vector<size_t> arrival(const WeightMap& map, const std::vector<CheckpointTensorData>& ckpt, Order order) {
  std::vector<size_t> idx(ckpt.size());
  std::iota(idx.begin(), idx.end(), 0);
  switch (order) {
    case Order::kCheckpoint: break;
    case Order::kReversed: std::reverse(idx.begin(), idx.end()); break;
    case Order::kShuffled: std::shuffle(idx.begin(), idx.end(), std::mt19937_64(7)); break;
    case Order::kInterleaved: {
      // Round-robin across layers: tensor 0 of every layer, then tensor 1 of every layer, ...
      std::vector<std::vector<size_t>> by_unit(static_cast<size_t>(map.num_units()));
      for (size_t i = 0; i < ckpt.size(); ++i) {
        by_unit[static_cast<size_t>(map.unit_of(map.find(ckpt[i].name)->param))].push_back(i);
      }
      idx.clear();
      for (size_t round = 0; idx.size() < ckpt.size(); ++round) {
        for (auto& unit : by_unit) {
          if (round < unit.size()) idx.push_back(unit[round]);
        }
      }
      break;
    }
  }
  return idx;
}

std::unique_ptr<Engine> make_engine(Arch arch, const std::string& quant, UpdateMode mode = UpdateMode::kTransactional,
                                    bool reference = false) {
  EngineOptions options;
  options.quant = quant;
  options.update_mode = mode;
  options.threads = 2;
  options.reference_kernels = reference;
  Result<std::unique_ptr<Engine>> e = Engine::create(tiny_config(arch), options);
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return std::move(e).value();
}

Result<UpdateStats> push(Engine& engine, const std::vector<CheckpointTensorData>& ckpt, std::span<const size_t> order,
                         std::optional<UpdateMode> mode = std::nullopt) {
  QSWAP_ASSIGN_OR_RETURN(std::unique_ptr<WeightUpdate> update, engine.begin_update(mode));
  for (size_t i : order) QSWAP_RETURN_IF_ERROR(update->add(incoming(ckpt[i])));
  return update->commit();
}

std::vector<size_t> in_order(size_t n) {
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  return idx;
}

// Every kernel tensor's bytes, concatenated with their pointers.
struct Snapshot {
  std::vector<std::vector<std::byte>> bytes;
  std::vector<const std::byte*> pointers;
};
Snapshot snapshot(const Engine& e) {
  Snapshot s;
  for (int p = 0; p < e.weights().num_params(); ++p) {
    for (const TensorView& v : e.weights().views(p)) {
      s.bytes.emplace_back(v.data, v.data + v.nbytes());
      s.pointers.push_back(v.data);
    }
  }
  return s;
}

void expect_same_bytes(const Snapshot& a, const Snapshot& b, const std::string& what) {
  ASSERT_EQ(a.bytes.size(), b.bytes.size());
  for (size_t i = 0; i < a.bytes.size(); ++i) {
    ASSERT_TRUE(a.bytes[i] == b.bytes[i]) << what << ": kernel tensor " << i << " differs";
  }
}

size_t largest_layer_bytes(const WeightMap& map, DType dtype) {
  std::vector<size_t> per_unit(static_cast<size_t>(map.num_units()), 0);
  for (const CheckpointTensor& t : map.tensors()) {
    per_unit[static_cast<size_t>(map.unit_of(t.param))] += static_cast<size_t>(num_elements(t.shape)) * dtype_size(dtype);
  }
  return *std::max_element(per_unit.begin(), per_unit.end());
}

using Case = std::tuple<Arch, std::string, Order>;

class ReloadTest : public ::testing::TestWithParam<Case> {};

TEST_P(ReloadTest, ReloadEqualsFreshLoadAndKeepsAddresses) {
  const auto& [arch, quant, order] = GetParam();
  for (UpdateMode mode : {UpdateMode::kInPlace, UpdateMode::kTransactional}) {
    SCOPED_TRACE(update_mode_name(mode));
    std::unique_ptr<Engine> reloaded = make_engine(arch, quant, mode);
    std::unique_ptr<Engine> fresh = make_engine(arch, quant, mode);
    const WeightMap& map = reloaded->weight_map();
    auto a = make_checkpoint(map, 1), b = make_checkpoint(map, 2);

    ASSERT_TRUE(push(*reloaded, a, in_order(a.size()), UpdateMode::kInPlace).ok());
    ASSERT_TRUE(reloaded->check_servable().ok());
    Snapshot after_a = snapshot(*reloaded);
    Result<UpdateStats> st = push(*reloaded, b, arrival(map, b, order));
    ASSERT_TRUE(st.ok()) << st.status().to_string();
    EXPECT_EQ(st->version, 2u);
    EXPECT_EQ(reloaded->weight_version(), 2u);
    EXPECT_EQ(st->tensors, static_cast<int64_t>(b.size()));
    EXPECT_EQ(st->units_completed, map.num_units());
    Snapshot after_b = snapshot(*reloaded);

    ASSERT_TRUE(push(*fresh, b, in_order(b.size()), UpdateMode::kInPlace).ok());
    expect_same_bytes(after_b, snapshot(*fresh), "reload vs fresh load");
    EXPECT_EQ(after_a.pointers, after_b.pointers) << "a reload moved a kernel tensor";
    // A and B differ, so the reload really rewrote the tensors.
    EXPECT_NE(after_a.bytes, after_b.bytes);
  }
}

TEST_P(ReloadTest, StagingIsBoundedInLayerOrderAndReportedOutOfOrder) {
  const auto& [arch, quant, order] = GetParam();
  std::unique_ptr<Engine> engine = make_engine(arch, quant);
  const WeightMap& map = engine->weight_map();
  auto a = make_checkpoint(map, 3);
  Result<UpdateStats> st = push(*engine, a, arrival(map, a, order), UpdateMode::kInPlace);
  ASSERT_TRUE(st.ok()) << st.status().to_string();
  if (order == Order::kCheckpoint) {
    EXPECT_LE(st->peak_staging_bytes, largest_layer_bytes(map, DType::kBF16));
    EXPECT_LE(st->max_units_staging, 1);
    EXPECT_TRUE(st->warnings.empty());
  }
  if (quant == "fp8") {
    EXPECT_GT(st->peak_staging_bytes, 0u) << "one scale spans q|k|v: the shards must be staged";
  } else {
    EXPECT_EQ(st->peak_staging_bytes, 0u) << quant << " has shard-local scales: nothing needs staging";
  }
  if (st->max_units_staging > 1) {
    ASSERT_FALSE(st->warnings.empty());
    EXPECT_NE(st->warnings[0].find("layer"), std::string::npos) << st->warnings[0];
  }
  if (order == Order::kInterleaved && quant == "fp8") {
    EXPECT_GT(st->max_units_staging, 1);
  }
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string quant = std::get<1>(info.param);
  std::replace(quant.begin(), quant.end(), '-', '_');
  return std::string(arch_name(std::get<0>(info.param))) + "_" + quant + "_" + order_name(std::get<2>(info.param));
}

INSTANTIATE_TEST_SUITE_P(
    AllSchemes, ReloadTest,
    ::testing::Combine(::testing::Values(Arch::kLlama, Arch::kQwen2, Arch::kQwen3),
                       ::testing::Values("none", "fp8", "fp8-channel", "fp8-block", "mxfp8", "int8-channel"),
                       ::testing::Values(Order::kCheckpoint, Order::kReversed, Order::kShuffled, Order::kInterleaved)),
    case_name);

class SchemeTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SchemeTest, FastPathEqualsScalarReference) {
  std::unique_ptr<Engine> fast = make_engine(Arch::kQwen3, GetParam(), UpdateMode::kInPlace, false);
  std::unique_ptr<Engine> ref = make_engine(Arch::kQwen3, GetParam(), UpdateMode::kInPlace, true);
  for (DType dtype : {DType::kBF16, DType::kF16, DType::kF32}) {
    auto ckpt = make_checkpoint(fast->weight_map(), 11, dtype);
    ASSERT_TRUE(push(*fast, ckpt, in_order(ckpt.size())).ok());
    ASSERT_TRUE(push(*ref, ckpt, in_order(ckpt.size())).ok());
    expect_same_bytes(snapshot(*fast), snapshot(*ref), std::string(dtype_name(dtype)));
  }
}

TEST_P(SchemeTest, OneThreadEqualsTwo) {
  EngineOptions options;
  options.quant = GetParam();
  options.threads = 1;
  auto one = Engine::create(tiny_config(Arch::kQwen3), options);
  ASSERT_TRUE(one.ok());
  std::unique_ptr<Engine> two = make_engine(Arch::kQwen3, GetParam());
  auto ckpt = make_checkpoint(two->weight_map(), 5);
  ASSERT_TRUE(push(**one, ckpt, in_order(ckpt.size())).ok());
  ASSERT_TRUE(push(*two, ckpt, in_order(ckpt.size())).ok());
  expect_same_bytes(snapshot(**one), snapshot(*two), "1 vs 2 threads");
}

// Injected faults: each gives an error naming the tensor; a transactional update leaves the live
// weights byte-identical, an in-place one makes the engine refuse to serve.
struct Fault {
  const char* name;
  const char* expected_message;  // substring
  std::function<void(std::vector<CheckpointTensorData>&)> inject;
};

std::vector<Fault> faults() {
  const std::string target = "model.layers.1.self_attn.k_proj.weight";
  auto find = [target](std::vector<CheckpointTensorData>& c) -> CheckpointTensorData& {
    return *std::find_if(c.begin(), c.end(), [&](const auto& t) { return t.name == target; });
  };
  return {
      {"missing", "never arrived: model.layers.1.self_attn.k_proj.weight",
       [=](auto& c) { c.erase(std::find_if(c.begin(), c.end(), [&](const auto& t) { return t.name == target; })); }},
      {"wrong_shape", "tensor 'model.layers.1.self_attn.k_proj.weight' has wrong shape; expected [32, 72], got [72, 32]",
       [=](auto& c) { find(c).shape = {72, 32}; }},
      {"wrong_dtype", "has dtype i32; expected bf16, f16 or f32",
       [=](auto& c) {
         auto& t = find(c);
         t.dtype = DType::kI32;
         t.bytes.resize(t.bytes.size() * 2);
       }},
      {"nan", "model.layers.1.self_attn.k_proj.weight",
       [=](auto& c) { reinterpret_cast<uint16_t*>(find(c).bytes.data())[40] = 0x7FC0; }},
      {"inf", "NaN or Inf",
       [=](auto& c) { reinterpret_cast<uint16_t*>(find(c).bytes.data())[7] = 0xFF80; }},
      {"truncated", "tensor 'model.layers.1.self_attn.k_proj.weight' has 4606 bytes of data; bf16 [32, 72] needs 4608",
       [=](auto& c) { find(c).bytes.resize(find(c).bytes.size() - 2); }},
      {"duplicate", "tensor 'model.layers.1.self_attn.k_proj.weight' arrived twice",
       [=](auto& c) { c.push_back(find(c)); }},
      {"unknown", "tensor 'model.layers.1.mlp.experts.0.weight' is not a weight of Qwen3ForCausalLM",
       [=](auto& c) { c.push_back({"model.layers.1.mlp.experts.0.weight", DType::kBF16, {2}, std::vector<std::byte>(4)}); }},
  };
}

TEST_P(SchemeTest, FaultsAreNamedAndTransactionsRollBack) {
  for (const Fault& fault : faults()) {
    SCOPED_TRACE(fault.name);
    for (UpdateMode mode : {UpdateMode::kTransactional, UpdateMode::kInPlace}) {
      SCOPED_TRACE(update_mode_name(mode));
      std::unique_ptr<Engine> engine = make_engine(Arch::kQwen3, GetParam(), mode);
      auto good = make_checkpoint(engine->weight_map(), 1);
      ASSERT_TRUE(push(*engine, good, in_order(good.size())).ok());
      Snapshot before = snapshot(*engine);
      auto bad = make_checkpoint(engine->weight_map(), 2);
      fault.inject(bad);
      Result<UpdateStats> st = push(*engine, bad, in_order(bad.size()));
      ASSERT_FALSE(st.ok());
      EXPECT_NE(st.status().message().find(fault.expected_message), std::string::npos) << st.status().message();
      EXPECT_EQ(engine->weight_version(), 1u);
      if (mode == UpdateMode::kTransactional) {
        EXPECT_TRUE(engine->check_servable().ok());
        expect_same_bytes(before, snapshot(*engine), "rolled-back transaction");
      } else {
        Status serving = engine->check_servable();
        EXPECT_EQ(serving.code(), StatusCode::kFailedPrecondition);
        EXPECT_NE(serving.message().find("refused until a complete update arrives"), std::string::npos);
        // A complete update makes it servable again.
        ASSERT_TRUE(push(*engine, good, in_order(good.size())).ok());
        EXPECT_TRUE(engine->check_servable().ok());
        expect_same_bytes(before, snapshot(*engine), "recovered in-place update");
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllSchemes, SchemeTest,
                         ::testing::Values("none", "fp8", "fp8-channel", "fp8-block", "mxfp8", "int8-channel"),
                         [](const auto& param_info) {
                           std::string s = param_info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

TEST(EngineTest, InPlaceUpdateRefusesServingWhileRunning) {
  std::unique_ptr<Engine> engine = make_engine(Arch::kQwen3, "fp8", UpdateMode::kInPlace);
  auto ckpt = make_checkpoint(engine->weight_map(), 1);
  EXPECT_EQ(engine->check_servable().code(), StatusCode::kFailedPrecondition);  // nothing loaded
  ASSERT_TRUE(push(*engine, ckpt, in_order(ckpt.size())).ok());
  auto update = engine->begin_update();
  ASSERT_TRUE(update.ok());
  ASSERT_TRUE((*update)->add(incoming(ckpt[0])).ok());
  EXPECT_FALSE(engine->check_servable().ok());
  EXPECT_FALSE(engine->begin_update().ok()) << "two updates at once";
  update->reset();  // abandoned before commit
  EXPECT_FALSE(engine->check_servable().ok());
  EXPECT_EQ(engine->weight_version(), 1u);
}

TEST(EngineTest, TransactionalUpdateKeepsServingOldWeights) {
  std::unique_ptr<Engine> engine = make_engine(Arch::kQwen3, "fp8-channel", UpdateMode::kTransactional);
  auto a = make_checkpoint(engine->weight_map(), 1), b = make_checkpoint(engine->weight_map(), 2);
  ASSERT_TRUE(push(*engine, a, in_order(a.size()), UpdateMode::kInPlace).ok());
  Snapshot before = snapshot(*engine);
  auto update = engine->begin_update();
  ASSERT_TRUE(update.ok());
  for (size_t i = 0; i + 1 < b.size(); ++i) ASSERT_TRUE((*update)->add(incoming(b[i])).ok());
  EXPECT_TRUE(engine->check_servable().ok());
  expect_same_bytes(before, snapshot(*engine), "live weights during a transaction");
  ASSERT_TRUE((*update)->add(incoming(b.back())).ok());
  ASSERT_TRUE((*update)->commit().ok());
  EXPECT_EQ(engine->weight_version(), 2u);
}

TEST(EngineTest, UnknownTensorsCanBeSkipped) {
  EngineOptions options;
  options.allow_unknown = true;
  auto engine = Engine::create(tiny_config(Arch::kQwen3), options);
  ASSERT_TRUE(engine.ok());
  auto ckpt = make_checkpoint((*engine)->weight_map(), 1);
  ckpt.push_back({"vision_tower.proj.weight", DType::kBF16, {2}, std::vector<std::byte>(4)});
  ckpt.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq", DType::kF32, {8}, std::vector<std::byte>(32)});
  Result<UpdateStats> st = push(**engine, ckpt, in_order(ckpt.size()));
  ASSERT_TRUE(st.ok()) << st.status().to_string();
  ASSERT_EQ(st->warnings.size(), 1u);
  EXPECT_EQ(st->warnings[0], "skipped unknown tensor 'vision_tower.proj.weight'");
}

}  // namespace
}  // namespace qswap
