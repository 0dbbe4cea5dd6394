// The executor's parameter layout against the planner's counts (the two must agree to the parameter)
// and the Hugging Face / peft names; and the executor's rules on plans.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "paraplan/exec/layout.hpp"
#include "paraplan/params.hpp"
#include "paraplan/plan_io.hpp"

using namespace paraplan::exec;
using namespace paraplan::planner;

namespace {

Plan tiny(const std::string& extra_json = "{}") {
  nlohmann::json doc = {{"model", "tiny-llama"},
                        {"training", {{"seq_len", 32}, {"micro_batch", 2}, {"precision", "fp32"}, {"recompute", "none"}}},
                        {"parallel", {{"dp", 1}}},
                        {"cluster", {{"gpu", "cpu"}, {"gpus", 1}}}};
  doc.merge_patch(nlohmann::json::parse(extra_json));
  return plan_from_json(doc);
}

std::string violations(const Plan& p) {
  Violations v;
  check_executor_support(p, v);
  std::string out;
  for (const auto& x : v.list()) out += x.to_string() + "\n";
  return out;
}

}  // namespace

TEST(Layout, TinyLlamaByHand) {
  // tiny-llama: 2 layers, hidden 64, 4 heads of 16, 2 kv heads, ffn 160, vocab 256, untied.
  // per layer: 2 norms 128 + q 64*64 + k,v 2*64*32 + o 64*64 + gate,up,down 3*64*160 = 43,136
  // embedding 256*64 = 16,384; head: norm 64 + lm_head 16,384.
  const ModelLayout l = model_layout(tiny().model, std::nullopt);
  ASSERT_EQ(l.units.size(), 4u);
  EXPECT_EQ(l.units[0].trainable_numel, 16384);
  EXPECT_EQ(l.units[1].trainable_numel, 43136);
  EXPECT_EQ(l.units[3].trainable_numel, 16448);
  EXPECT_EQ(l.trainable_numel, 16384 + 2 * 43136 + 16448);
  EXPECT_EQ(l.trainable_numel, count_params(tiny().model).total);
  const ParamInfo* k = l.find("model.layers.1.self_attn.k_proj.weight");
  ASSERT_TRUE(k);
  EXPECT_EQ(k->shape, (std::vector<int64_t>{32, 64}));
  EXPECT_TRUE(l.find("lm_head.weight"));
  EXPECT_TRUE(l.find("model.norm.weight"));
}

TEST(Layout, LoraTrainsWhatThePlannerCounts) {
  for (const char* targets : {R"(["q_proj","v_proj"])", R"(["q_proj","k_proj","v_proj","o_proj","gate_proj","up_proj","down_proj"])"}) {
    const Plan p = tiny(std::string(R"({"training":{"lora":{"rank":4,"alpha":8,"base":"fp32","targets":)") + targets + "}}}");
    const ModelLayout l = model_layout(p.model, p.training.lora);
    EXPECT_EQ(l.trainable_numel, model_params(p.model, p.training.lora).trainable_total) << targets;
    EXPECT_EQ(l.frozen_numel, count_params(p.model).total) << targets;
  }
  // q_proj and v_proj at rank 4: per layer 4*(64+64) + 4*(64+32) = 896; two layers.
  const Plan p = tiny(R"({"training":{"lora":{"rank":4,"base":"fp32"}}})");
  const ModelLayout l = model_layout(p.model, p.training.lora);
  EXPECT_EQ(l.trainable_numel, 2 * 896);
  const ParamInfo* a = l.find("model.layers.0.self_attn.v_proj.lora_A.weight");
  const ParamInfo* b = l.find("model.layers.0.self_attn.v_proj.lora_B.weight");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{4, 64}));  // r x in
  EXPECT_EQ(b->shape, (std::vector<int64_t>{32, 4}));  // out x r
  EXPECT_EQ(peft_name(a->name), "base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight");
  EXPECT_FALSE(l.find("model.layers.0.self_attn.k_proj.lora_A.weight"));
}

TEST(Layout, UnsupportedPlansNameTheField) {
  EXPECT_EQ(violations(tiny()), "");
  EXPECT_EQ(violations(tiny(R"({"parallel":{"tp":2},"cluster":{"gpus":2}})")), "");
  EXPECT_EQ(violations(tiny(R"({"parallel":{"pp":2},"cluster":{"gpus":2}})")), "");
  EXPECT_EQ(violations(tiny(R"({"training":{"recompute":"full","dropout":0.1}})")), "");
  const Plan cp = tiny(R"({"parallel":{"cp":2},"cluster":{"gpus":2}})");
  EXPECT_NE(violations(cp).find("parallel.cp = 2: context and expert parallelism are not implemented in the "
                                "executor"),
            std::string::npos)
      << violations(cp);
  EXPECT_NE(violations(tiny(R"({"training":{"lora":{"rank":4}}})")).find("training.lora.base = bf16"), std::string::npos);
  EXPECT_NE(violations(tiny(R"({"training":{"optimizer":"sgd"}})")).find("training.optimizer = sgd"), std::string::npos);
}

// LLaMA attention_bias (q, k, v, o) and mlp_bias (gate, up, down), as transformers' modeling_llama.py
// names them: the layout holds those tensors and agrees with the planner's count to the parameter.
TEST(Layout, AttentionAndMlpBiases) {
  for (const char* bias : {"attention", "mlp", "all"}) {
    const Plan p = tiny(std::string(R"({"model": {"layers": 2, "hidden": 64, "heads": 4, "kv_heads": 2,
        "ffn_hidden": 96, "vocab": 256, "bias": ")") + bias + "\"}}");
    const ModelLayout l = model_layout(p.model, std::nullopt);
    EXPECT_EQ(l.trainable_numel, count_params(p.model).total) << bias;
    const bool attn = std::string(bias) != "mlp", mlp = std::string(bias) != "attention";
    EXPECT_EQ(l.find("model.layers.0.self_attn.o_proj.bias") != nullptr, attn) << bias;
    EXPECT_EQ(l.find("model.layers.0.self_attn.k_proj.bias") != nullptr, attn) << bias;
    EXPECT_EQ(l.find("model.layers.1.mlp.gate_proj.bias") != nullptr, mlp) << bias;
  }
}

// The executor attends to every earlier token: a window shorter than the sequence is refused by name.
TEST(Layout, SlidingWindowIsRefused) {
  auto model = [](int window) {
    return R"({"model": {"layers": 2, "hidden": 64, "heads": 4, "ffn_hidden": 96, "vocab": 256, "sliding_window": )" +
           std::to_string(window) + "}}";
  };
  EXPECT_NE(violations(tiny(model(16))).find("model.sliding_window = 16: sliding-window attention is not implemented"),
            std::string::npos)
      << violations(tiny(model(16)));
  // A window no shorter than the sequence (seq_len 32) changes nothing.
  EXPECT_EQ(violations(tiny(model(32))), "");
}

namespace {

const ParamInfo& param(const ModelLayout& l, const std::string& name) {
  const ParamInfo* p = l.find(name);
  if (!p) throw std::runtime_error("no " + name);
  return *p;
}

}  // namespace

TEST(Layout, TensorParallelSlicesAsMegatron) {
  // tiny-llama on tp = 2, rank 1 (Shoeybi et al. 2019 §3): column-parallel q [64, 64] keeps output rows
  // 32..63; k, v [32, 64] (2 kv heads of 16) one head each, rows 16..31; gate, up [160, 64] rows 80..159;
  // row-parallel o [64, 64] and down [64, 160] keep input columns 32..63 and 80..159; the vocabulary-
  // parallel embedding and head rows 128..255; norms whole.
  const ModelLayout l = rank_layout(tiny(R"({"parallel":{"tp":2},"cluster":{"gpus":2}})"), {0, 1});
  ASSERT_EQ(l.units.size(), 4u);
  auto expect = [&](const std::string& name, std::vector<int64_t> shape, int dim, int64_t start) {
    const ParamInfo& p = param(l, name);
    EXPECT_EQ(p.shape, shape) << name;
    EXPECT_EQ(p.shard_dim, dim) << name;
    EXPECT_EQ(p.shard_start, start) << name;
  };
  expect("model.layers.0.self_attn.q_proj.weight", {32, 64}, 0, 32);
  expect("model.layers.0.self_attn.k_proj.weight", {16, 64}, 0, 16);
  expect("model.layers.0.self_attn.o_proj.weight", {64, 32}, 1, 32);
  expect("model.layers.1.mlp.up_proj.weight", {80, 64}, 0, 80);
  expect("model.layers.1.mlp.down_proj.weight", {64, 80}, 1, 80);
  expect("model.embed_tokens.weight", {128, 64}, 0, 128);
  expect("lm_head.weight", {128, 64}, 0, 128);
  expect("model.norm.weight", {64}, -1, 0);
  // Per layer 43,136 / 2 = 21,568 minus the halved norms' other half: norms 128 whole.
  EXPECT_EQ(l.units[1].trainable_numel, 128 + (43136 - 128) / 2);
}

TEST(Layout, FewerKvHeadsThanTpAreReplicated) {
  // tp = 4 with 2 kv heads: ranks 0, 1 hold kv head 0, ranks 2, 3 head 1 (rows 16..31), each a partial
  // gradient summed over its two holders; one query head of 16 each.
  const Plan p = tiny(R"({"parallel":{"tp":4},"cluster":{"gpus":4}})");
  const KvHeads k = kv_heads_of(p.model, 4, 3);
  EXPECT_EQ(k.local, 1);
  EXPECT_EQ(k.first, 1);
  EXPECT_EQ(k.replicas, 2);
  const ModelLayout l = rank_layout(p, {0, 3});
  EXPECT_EQ(param(l, "model.layers.0.self_attn.v_proj.weight").shard_start, 16);
  EXPECT_EQ(param(l, "model.layers.0.self_attn.v_proj.weight").grad_sum, GradSum::kv_replicas);
  EXPECT_EQ(param(l, "model.layers.0.self_attn.q_proj.weight").shape, (std::vector<int64_t>{16, 64}));
  EXPECT_EQ(param(l, "model.layers.0.self_attn.q_proj.weight").grad_sum, GradSum::none);
}

TEST(Layout, SequenceParallelNormsArePartialSumsOverTp) {
  const ModelLayout l = rank_layout(tiny(R"({"parallel":{"tp":2,"sequence_parallel":true},"cluster":{"gpus":2}})"), {0, 0});
  EXPECT_EQ(param(l, "model.layers.0.input_layernorm.weight").grad_sum, GradSum::tp);
  EXPECT_EQ(param(l, "model.norm.weight").grad_sum, GradSum::tp);
  EXPECT_EQ(param(l, "model.layers.0.self_attn.q_proj.weight").grad_sum, GradSum::none);
}

TEST(Layout, PipelineStagesHoldTheirChunks) {
  // pp = 2, 2 layers: stage 0 the embedding and layer 0, stage 1 layer 1 and the head (chunk_layers).
  const Plan p = tiny(R"({"parallel":{"pp":2},"cluster":{"gpus":2}})");
  const ModelLayout s0 = rank_layout(p, {0, 0}), s1 = rank_layout(p, {1, 0});
  ASSERT_EQ(s0.units.size(), 2u);
  ASSERT_EQ(s1.units.size(), 2u);
  EXPECT_EQ(s0.units[0].kind, UnitKind::embedding);
  EXPECT_EQ(s0.units[1].layer, 0);
  EXPECT_EQ(s1.units[0].layer, 1);
  EXPECT_EQ(s1.units[1].kind, UnitKind::head);
  EXPECT_EQ(s1.units[1].chunk, 1);
  // Tied embeddings: the head's stage keeps a copy of the table, named as the embedding.
  Plan tied = p;
  tied.model.tied_embeddings = true;
  EXPECT_TRUE(tied_copy_on_head_stage(tied));
  EXPECT_TRUE(rank_layout(tied, {1, 0}).find("model.embed_tokens.weight"));
  // ZBV puts the head on stage 0, beside the embedding: no copy.
  tied.parallel.pp_schedule = PipelineSchedule::zbv;
  tied.parallel.virtual_stages = 2;
  tied.model.layers = 4;
  EXPECT_FALSE(tied_copy_on_head_stage(tied));
}
