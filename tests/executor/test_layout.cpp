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
