// The "paraplan" framework profile: the planner's model of paraplan's own executor, against values
// derived by hand from the executor's kernels (executor/src/*_fn.cpp, model.cpp, pipeline_runner.cpp).
// The executor's tests then compare these predictions with the counting allocator
// (tests/executor/test_runs.cpp, test_model_parallel.cpp).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "paraplan/memory.hpp"
#include "paraplan/plan_io.hpp"

using namespace paraplan::planner;

namespace {

// tiny-llama (2 layers, h 64, 4 heads of 16, 2 kv heads, ffn 160, vocab 256) on CPU workers, fp32,
// seq 32 x micro-batch 2: T = 64 tokens.
StageMemory tiny(int dp, int zero, const std::string& lora = "null", int seq = 32) {
  nlohmann::json doc = {
      {"model", "tiny-llama"},
      {"training", {{"seq_len", seq}, {"micro_batch", 2}, {"precision", "fp32"}, {"recompute", "none"},
                    {"lora", nlohmann::json::parse(lora)}}},
      {"parallel", {{"dp", dp}, {"zero", zero}}},
      {"cluster", {{"gpu", "cpu"}, {"gpus", dp}}}};
  const Plan plan = plan_from_json(doc);
  EXPECT_EQ(plan.framework(), Framework::paraplan);  // the default on "cpu"
  return estimate_memory(plan).per_stage.at(0);
}

// Saved per layer (fp32, bytes): attn_norm x 64*64*4 + rstd 64*4 = 16,640; q/k/v input 16,384;
// q, k, v after RoPE 16,384 + 8,192 + 8,192; log-sum-exp 4 heads * 64 * 4 = 1,024; o_proj input 16,384;
// mlp_norm 16,640; gate/up input 16,384; gate and up 2 * 64*160*4 = 81,920; down input 40,960.
constexpr double kLayer = 16640 + 16384 + 32768 + 1024 + 16384 + 16640 + 16384 + 81920 + 40960;  // 239,104
// The micro-batch's int64 ids and targets 2 * 64 * 8 (the embedding keeps the ids, the loss the targets).
constexpr double kIds = 512, kTargets = 512;
// Buffers made once: RoPE cos, sin 2 * 32*8*4 and the causal mask 32*32 bools.
constexpr double kTables = 2048 + 1024;
// Head: final norm 16,640; lm_head input 16,384; logits 64*256*4 = 65,536 and their log-sum-exp 256.
constexpr double kHead = 16640 + 16384 + 65536 + 256;
// At the loss backward: autograd's seed gradient (the loss itself was read and dropped after the
// forward), the fp32 logit gradient 65,536 and the [T, 1] of -1 scattered at the targets (256).
constexpr double kLossBackward = 4 + 65536 + 256;

}  // namespace

TEST(ExecutorProfile, ActivationPeakIsTheLossBackward) {
  const StageMemory st = tiny(1, 0);
  EXPECT_DOUBLE_EQ(st.activations_bytes, 2 * kLayer + kIds + kTargets + kHead + kLossBackward);  // 643,844
  EXPECT_DOUBLE_EQ(st.weights_bytes, 119104.0 * 4);
  EXPECT_DOUBLE_EQ(st.optimizer_bytes, 119104.0 * 8);
  EXPECT_DOUBLE_EQ(st.buffers_bytes, kTables);
  EXPECT_DOUBLE_EQ(st.overhead_bytes, 0);  // CPU workers: no CUDA context, no NCCL
}

TEST(ExecutorProfile, ZeroBuffersAreTheLargestUnit) {
  // Units: embedding 16,384, layer 43,136, head 16,448 parameters. ZeRO-2: a gradient bucket of the
  // largest unit and its 1/dp reduce-scatter chunk; ZeRO-3 adds the gather buffer of the largest unit.
  EXPECT_DOUBLE_EQ(tiny(2, 1).buffers_bytes, kTables);
  EXPECT_DOUBLE_EQ(tiny(2, 2).buffers_bytes, kTables + 43136.0 * 4 * 1.5);
  EXPECT_DOUBLE_EQ(tiny(2, 3).buffers_bytes, kTables + 43136.0 * 4 * 1.5 + 43136.0 * 4);
  EXPECT_DOUBLE_EQ(tiny(4, 3).buffers_bytes, kTables + 43136.0 * 4 * 1.25 + 43136.0 * 4);
  EXPECT_DOUBLE_EQ(tiny(2, 3).weights_bytes, 119104.0 * 4 / 2);
}

TEST(ExecutorProfile, LoraKeepsAdapterInputsAndNothingBeforeTheFirstAdapter) {
  // r = 4 on q, v and down: each adapter keeps x A^T, 64*4*4 = 1,024 B. Nothing before layer 0's first
  // adapter needs a gradient, so layer 0's attn_norm keeps nothing (16,640 B less), and the frozen
  // embedding keeps no ids (they go when the forward drops the micro-batch).
  const StageMemory st = tiny(1, 0, R"({"rank": 4, "alpha": 8, "base": "fp32", "targets": ["q_proj", "v_proj", "down_proj"]})");
  const double layers = 2 * (kLayer + 3 * 1024) - 16640;
  // The peak is now the loss forward, still holding the ids: at::logsumexp keeps the row max [T, 1]
  // (256) and its result (256) beside logits - max (65,536); the head has kept the final norm's input
  // and rstd, the lm_head input and the logits, not yet their log-sum-exp.
  const double loss_forward = layers + kIds + kTargets + (16640 + 16384 + 65536) + 256 + 65536 + 256;
  EXPECT_DOUBLE_EQ(loss_forward, 633344.0);
  EXPECT_GT(loss_forward, layers + kTargets + kHead + kLossBackward);  // the loss backward: 632,836
  EXPECT_DOUBLE_EQ(st.activations_bytes, loss_forward);
  // Trainable: per layer q 4*(64+64) + v 4*(64+32) + down 4*(160+64) = 1,792.
  EXPECT_DOUBLE_EQ(st.gradients_bytes, 2 * 1792.0 * 4);
  EXPECT_DOUBLE_EQ(st.weights_bytes, (119104.0 + 2 * 1792) * 4);
}

TEST(ExecutorProfile, AtSeq128TheLastLayersAttentionBackwardIsThePeak) {
  // seq 128 x micro-batch 2: T = 256 tokens, S = 2 * 4 heads * 128 * 128 = 131,072 scores.
  const StageMemory st = tiny(1, 0, "null", 128);
  // Each T-proportional tensor of kLayer four times as large; the log-sum-exps (4 * 4 * 256 = 4,096 per
  // layer) likewise. The ids 2 * 256 * 8 = 2,048 (the targets went with the loss backward's node).
  const double layer = 4 * kLayer, ids = 2048;
  // The backward of the last layer's attention: everything before that layer is saved (ids, layer 0),
  // the head's tensors are freed, autograd's seed gradient (4 B) is alive; the last layer keeps
  // attn_norm 66,560, the q/k/v input 65,536, q, k, v 131,072 and the log-sum-exp 4,096;
  // AttentionFn::backward holds the residual gradient 256*64*4 = 65,536, the regrouped q, k, v, dO and
  // their gradients 256*4*(5*64 + 3*32) = 425,984, P and dP 2 * 4 * S = 1,048,576 and the row sums
  // 4 * 4 * 256 = 4,096.
  const double attention_backward = (ids + layer + 4) + (66560 + 65536 + 131072 + 4096) +
                                    (65536 + 425984 + 1048576 + 4096);
  EXPECT_DOUBLE_EQ(attention_backward, 2769924.0);
  EXPECT_DOUBLE_EQ(st.activations_bytes, attention_backward);
  // The tables: cos, sin 2 * 128*8*4 = 8,192 and the causal mask 128*128 = 16,384.
  EXPECT_DOUBLE_EQ(st.buffers_bytes, 8192 + 16384);
}
