// FP8 training's memory under Transformer Engine (framework.hpp te_fp8; transformer_engine/pytorch/module/
// linear.py): a GEMM keeps the FP8 copy of its input for the weight gradient (1 B an element instead of 2),
// and the FP8 copies of the layers' GEMM weights are cached for the step (2 B a parameter). Values by hand
// for LLaMA 3 8B (h 4096, 32 query heads and 8 key/value heads of 128, SwiGLU width 14336).
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "paraplan/memory.hpp"
#include "paraplan/presets.hpp"
#include "paraplan/workload.hpp"
#include "plan_fixtures.hpp"

using namespace paraplan::planner;

namespace {

constexpr double kH = 4096, kQ = 4096, kKv = 1024, kF = 14336;
constexpr double kTokens = 8192;  // sequence 8192 x micro-batch 1

Plan llama8b(Precision precision, Framework framework, int zero) {
  Plan p = plantest::preset_plan("llama3-8b", 8192, "h100-sxm-80gb");
  p.training.micro_batch = 1;
  p.training.global_batch = 8;
  p.training.precision = precision;
  p.training.grad_dtype = GradDtype::bf16;
  p.training.framework = framework;
  p.training.flash_attention = true;
  p.training.dropout = 0;
  p.training.recompute = Recompute::none;
  p.parallel.dp = 8;
  p.parallel.zero = zero;
  p.cluster.gpus = 8;
  return p;
}

Block layer(const Plan& p) {
  return build_workload(p, framework_profile(*p.training.framework), shape_of(p)).dense_layer;
}

}  // namespace

// Under FP8 the QKV and fc1 inputs (h wide) and the fc2 input (f wide) are kept in 1 B instead of 2; the
// output projection keeps its FP8 copy (q wide, 1 B) besides the flash kernel's 16-bit output, which
// bf16 training shares with it. Difference per token: h + h + f - q = 4096 + 4096 + 14336 - 4096 bytes.
TEST(Fp8Memory, TransformerEngineKeepsEachGemmInputInOneByte) {
  const Block bf16 = layer(llama8b(Precision::bf16, Framework::megatron, 1));
  const Block fp8 = layer(llama8b(Precision::fp8, Framework::megatron, 1));
  EXPECT_DOUBLE_EQ(bf16.saved_bytes[0] - fp8.saved_bytes[0], kTokens * (kH + kH + kF - kQ));
  // DeepSpeed's FP8 is the model code's: counted as bf16.
  EXPECT_DOUBLE_EQ(layer(llama8b(Precision::fp8, Framework::deepspeed, 1)).saved_bytes[0],
                   layer(llama8b(Precision::bf16, Framework::deepspeed, 1)).saved_bytes[0]);
}

// The GEMM weights of one layer: QKV h x (q + 2 kv), output q x h, fc1 h x 2f (gate and up), fc2 f x h =
// 25,165,824 + 16,777,216 + 117,440,512 + 58,720,256 = 218,103,808 (with 32 layers and the 2 x 525 M
// embedding and head, LLaMA 3 8B's 8.03 B parameters). FP8 caches them in 2 B: 32 layers on one stage.
TEST(Fp8Memory, TransformerEngineCachesTheFp8WeightsOfEveryLayer) {
  const double per_layer = kH * (kQ + 2 * kKv) + kQ * kH + kH * 2 * kF + kF * kH;
  ASSERT_DOUBLE_EQ(per_layer, 218103808.0);
  EXPECT_DOUBLE_EQ(layer(llama8b(Precision::fp8, Framework::megatron, 1)).gemm_weight_params, per_layer);
  const auto weights = [](const Plan& p) { return estimate_memory(p).per_stage.at(0).weights_bytes; };
  EXPECT_DOUBLE_EQ(weights(llama8b(Precision::fp8, Framework::megatron, 1)) -
                       weights(llama8b(Precision::bf16, Framework::megatron, 1)),
                   2 * 32 * per_layer);
  // ZeRO-3 gathers a layer's weights for its use only: no cache counted.
  EXPECT_DOUBLE_EQ(weights(llama8b(Precision::fp8, Framework::megatron, 3)),
                   weights(llama8b(Precision::bf16, Framework::megatron, 3)));
}

// MLA (DeepSeek-V3: h 7168, q rank 1536, kv rank 512), 4,096 tokens, no TP. bf16: q_down keeps the normed
// input (2 B x h) and kv_down shares it; q_up and kv_up keep their normed inputs and the norms' inputs
// (2 + 2 B x rank). FP8: q_down and kv_down each keep their own FP8 copy (1 B x h), q_up and kv_up the FP8
// copy and the 16-bit norm input (1 + 2 B x rank).
TEST(Fp8Memory, MlaProjectionsKeepTheirOwnFp8Copies) {
  const double T = 4096, h = 7168;
  auto saved = [&](Precision precision) {
    Plan p = plantest::preset_plan("deepseek-v3", 4096, "h100-sxm-80gb");
    p.training.precision = precision;
    p.training.framework = Framework::megatron;
    p.training.micro_batch = 1;
    std::map<std::string, double> by_name;
    for (const Op& op : build_workload(p, framework_profile(Framework::megatron), shape_of(p)).dense_layer.ops)
      by_name[op.name] = op.saved_bytes;
    return by_name;
  };
  auto bf16 = saved(Precision::bf16), fp8 = saved(Precision::fp8);
  EXPECT_DOUBLE_EQ(bf16["q_down_proj"], 2 * T * h);
  EXPECT_DOUBLE_EQ(bf16["kv_down_proj"], 0);
  EXPECT_DOUBLE_EQ(bf16["q_up_proj"], 4 * T * 1536);
  EXPECT_DOUBLE_EQ(bf16["kv_up_proj"], 4 * T * 512);
  EXPECT_DOUBLE_EQ(fp8["q_down_proj"], T * h);
  EXPECT_DOUBLE_EQ(fp8["kv_down_proj"], T * h);
  EXPECT_DOUBLE_EQ(fp8["q_up_proj"], 3 * T * 1536);
  EXPECT_DOUBLE_EQ(fp8["kv_up_proj"], 3 * T * 512);
}

// Under LoRA the frozen base GEMMs keep no input of their own (TE saves it for the weight gradient only);
// the 16-bit adapter keeps it: FP8 saves nothing against bf16 (no te_fp8 input rule), while the FP8 weight
// copies of the frozen base are still cached.
TEST(Fp8Memory, LoraKeepsTheAdaptersSixteenBitInputs) {
  Plan bf16 = llama8b(Precision::bf16, Framework::megatron, 1), fp8 = llama8b(Precision::fp8, Framework::megatron, 1);
  for (Plan* p : {&bf16, &fp8}) p->training.lora = LoraSpec{};
  EXPECT_DOUBLE_EQ(layer(fp8).saved_bytes[0], layer(bf16).saved_bytes[0]);
  EXPECT_DOUBLE_EQ(estimate_memory(fp8).per_stage.at(0).fp8_weight_cache_bytes, 2 * 32 * 218103808.0);
}

// Megatron-LM of 2021-22 predates Transformer Engine: FP8, if a plan asks for it there, keeps 16-bit inputs
// and caches no FP8 weights.
TEST(Fp8Memory, Megatron2021HasNoTransformerEngineRules) {
  EXPECT_DOUBLE_EQ(layer(llama8b(Precision::fp8, Framework::megatron_2021, 1)).saved_bytes[0],
                   layer(llama8b(Precision::bf16, Framework::megatron_2021, 1)).saved_bytes[0]);
  const Plan fp8 = llama8b(Precision::fp8, Framework::megatron_2021, 1);
  EXPECT_DOUBLE_EQ(estimate_memory(fp8).per_stage.at(0).fp8_weight_cache_bytes, 0);
}
