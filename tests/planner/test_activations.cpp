// Activation memory against Korthikanti et al. 2022 (arXiv 2205.05198), Table 2 and Fig. 1, and
// the pipeline in-flight rules.
#include <gtest/gtest.h>

#include "paraplan/memory.hpp"
#include "paraplan/params.hpp"
#include "paraplan/pipeline.hpp"
#include "paraplan/presets.hpp"
#include "paraplan/workload.hpp"
#include "plan_fixtures.hpp"

using namespace paraplan::planner;

namespace {

constexpr double GiB = 1024.0 * 1024.0 * 1024.0;

// A GPT layer as the paper assumes: 16-bit activations, 1-byte dropout masks, MLP 4h, unfused
// (non-flash) attention, Megatron kernels.
Plan gpt_plan(const char* model, int tp, int pp, bool sp, Recompute rc, int micro_batch, int v = 1) {
  Plan p = plantest::preset_plan(model, 2048, "a100-80gb");
  p.training.micro_batch = micro_batch;
  p.training.precision = Precision::fp16;
  p.training.dropout = 0.1;
  p.training.flash_attention = false;
  p.training.recompute = rc;
  p.parallel.tp = tp;
  p.parallel.pp = pp;
  p.parallel.sequence_parallel = sp;
  p.parallel.virtual_stages = v;
  p.parallel.pp_schedule = v > 1 ? PipelineSchedule::interleaved : PipelineSchedule::one_f_one_b;
  p.cluster.gpus = tp * pp;
  p.training.global_batch = 64L * micro_batch;
  return p;
}

double layer_bytes(const Plan& p) {
  const Workload w = build_workload(p, framework_profile(Framework::megatron), shape_of(p));
  return w.dense_layer.saved_bytes[static_cast<int>(p.training.recompute)];
}

}  // namespace

// Table 2 / Eq. 1, no parallelism: sbh(34 + 5as/h). 22B: s=2048, b=1, h=6144, a=64.
TEST(Korthikanti, Eq1NoParallelism) {
  const double s = 2048, b = 1, h = 6144, a = 64;
  EXPECT_DOUBLE_EQ(layer_bytes(gpt_plan("gpt-22b", 1, 1, false, Recompute::none, 1)), s * b * h * (34 + 5 * a * s / h));
}

// Table 2, tensor parallel: sbh(10 + 24/t + 5as/(ht)).
TEST(Korthikanti, TensorParallel) {
  const double s = 2048, b = 1, h = 6144, a = 64, t = 8;
  EXPECT_DOUBLE_EQ(layer_bytes(gpt_plan("gpt-22b", 8, 1, false, Recompute::none, 1)),
                   s * b * h * (10 + 24 / t + 5 * a * s / (h * t)));
}

// Table 2, tensor + sequence parallel: sbh/t (34 + 5as/h).
TEST(Korthikanti, TensorSequenceParallel) {
  const double s = 2048, b = 1, h = 6144, a = 64, t = 8;
  EXPECT_DOUBLE_EQ(layer_bytes(gpt_plan("gpt-22b", 8, 1, true, Recompute::none, 1)), s * b * h / t * (34 + 5 * a * s / h));
}

// Table 2, tensor parallel + selective recompute: sbh(10 + 24/t); with SP: 34 sbh/t.
TEST(Korthikanti, SelectiveRecompute) {
  const double s = 2048, b = 1, h = 6144, t = 8;
  EXPECT_DOUBLE_EQ(layer_bytes(gpt_plan("gpt-22b", 8, 1, false, Recompute::selective, 1)), s * b * h * (10 + 24 / t));
  EXPECT_DOUBLE_EQ(layer_bytes(gpt_plan("gpt-22b", 8, 1, true, Recompute::selective, 1)), 34 * s * b * h / t);
}

// Table 2, full recompute: 2sbh (the layer input); sequence-parallel keeps it sharded, 2sbh/t.
TEST(Korthikanti, FullRecompute) {
  const double s = 2048, b = 1, h = 6144, t = 8;
  EXPECT_DOUBLE_EQ(layer_bytes(gpt_plan("gpt-22b", 8, 1, false, Recompute::full, 1)), 2 * s * b * h);
  EXPECT_DOUBLE_EQ(layer_bytes(gpt_plan("gpt-22b", 8, 1, true, Recompute::full, 1)), 2 * s * b * h / t);
}

// Terms outside the layers (§4.3): embedding dropout sbh/t per in-flight micro-batch (+ int64 token ids,
// Megatron's 8sb), and on the last stage final LN 2sbh/t, output-layer input 2sbh/t, fp32 logits 4sbV/t.
TEST(Korthikanti, OutsideTheLayers) {
  const Plan p = gpt_plan("gpt-22b", 8, 1, true, Recompute::selective, 1);
  const Workload w = build_workload(p, framework_profile(Framework::megatron), shape_of(p));
  const double s = 2048, b = 1, h = 6144, t = 8, V = 51200;
  EXPECT_DOUBLE_EQ(w.embedding.saved_bytes[0], s * b * h / t + 8 * s * b);
  EXPECT_DOUBLE_EQ(w.head.saved_bytes[0], 2 * s * b * h / t + 2 * s * b * h / t + 4 * s * b * V / t);
}

// Fig. 1 activation memory per GPU (GiB), first pipeline stage, as the paper's Eq. 2 (TP only) and Eq. 6
// (TP + SP + selective) give them. Setups from Table 3 (mbs 4 for 22B, 1 otherwise; 175B and 530B
// interleaved with v = 3). The first stage holds p micro-batches of L/p layers, x (1 + (p-1)/(pv)).
TEST(Korthikanti, Fig1Activations) {
  struct Row {
    const char* model;
    int tp, pp, v, mbs;
    double no_recompute_gib, sel_sp_gib;
  } rows[] = {{"gpt-22b", 8, 1, 1, 4, 59.25, 9.56},
              {"gpt-175b", 8, 8, 3, 1, 66.84, 12.35},
              {"gpt-530b", 8, 35, 3, 1, 114.02, 23.08},
              {"gpt-1t", 8, 64, 1, 1, 131.25, 26.56}};
  for (const Row& r : rows) {
    for (int sel = 0; sel < 2; ++sel) {
      Plan p = gpt_plan(r.model, r.tp, r.pp, sel == 1, sel ? Recompute::selective : Recompute::none, r.mbs, r.v);
      const std::vector<StageLayers> layers = stage_layers(p);
      const double inflight = inflight_microbatches(p.parallel.pp_schedule, r.pp, r.v, p.micro_batches(), 0);
      const double gib = inflight * layers[0].total() * layer_bytes(p) / GiB;
      EXPECT_NEAR(gib, sel ? r.sel_sp_gib : r.no_recompute_gib, 0.005) << r.model << (sel ? " sel+SP" : " none");
    }
  }
}

// Pipeline in-flight micro-batches: GPipe m; 1F1B min(m, p - s); interleaved first stage p(1 + (p-1)/(pv)).
TEST(Pipeline, InflightMicrobatches) {
  EXPECT_DOUBLE_EQ(inflight_microbatches(PipelineSchedule::gpipe, 4, 1, 16, 2), 16);
  EXPECT_DOUBLE_EQ(inflight_microbatches(PipelineSchedule::one_f_one_b, 4, 1, 16, 0), 4);
  EXPECT_DOUBLE_EQ(inflight_microbatches(PipelineSchedule::one_f_one_b, 4, 1, 16, 3), 1);
  EXPECT_DOUBLE_EQ(inflight_microbatches(PipelineSchedule::one_f_one_b, 8, 1, 3, 0), 3);  // m < p
  // p = 4, v = 2: warm-up 2*3 + 1*4 = 10 chunks + 1 = 11 chunk-micro-batches = 5.5 = 4 * (1 + 3/8).
  EXPECT_DOUBLE_EQ(inflight_microbatches(PipelineSchedule::interleaved, 4, 2, 16, 0), 4 * (1 + 3.0 / 8));
  EXPECT_DOUBLE_EQ(inflight_microbatches(PipelineSchedule::zbv, 4, 2, 16, 3), 4);
  // ZB-H1 frees activations at W, which the last stage (s = 3) runs only after its first p - 1 = 3 forward/B
  // pairs and one more forward: 4 in flight, as stage 0 (Qi et al. 2023 §3.1; tests/simulator checks it).
  EXPECT_DOUBLE_EQ(inflight_microbatches(PipelineSchedule::zb_h1, 4, 1, 16, 3), 4);
  EXPECT_DOUBLE_EQ(inflight_microbatches(PipelineSchedule::zb_h1, 4, 1, 2, 1), 2);  // m < p
  EXPECT_DOUBLE_EQ(inflight_microbatches(PipelineSchedule::gpipe, 1, 1, 16, 0), 1);  // no pipeline
}

// LLaMA-3-405B: 126 layers on 16 stages -> 14 stages of 8 and the two end stages with 7.
TEST(Pipeline, UnevenLayerSplit) {
  Plan p;
  p.model = model_preset("llama3-405b");
  p.parallel.pp = 16;
  const std::vector<int> split = chunk_layers(p);
  ASSERT_EQ(split.size(), 16u);
  EXPECT_EQ(split.front(), 7);
  EXPECT_EQ(split.back(), 7);
  for (size_t i = 1; i + 1 < split.size(); ++i) EXPECT_EQ(split[i], 8);
  p.parallel.layer_split = {6, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8};
  EXPECT_EQ(chunk_layers(p).front(), 6);
}

// Interleaved, pp = 16, v = 2: 126 layers over 32 chunks of 3 with 30 left over, one each to inner
// chunks 1..30. Stage s holds chunks s and s + 16: stage 0 has 3 + 4, stage 15 has 4 + 3, the rest 8.
// Three chunks: 22 = 7 + 8 + 7 (the one left over goes to the inner chunk).
TEST(Pipeline, InterleavedLayerSplit) {
  Plan p;
  p.model = model_preset("llama3-405b");
  p.parallel.pp = 16;
  p.parallel.virtual_stages = 2;
  p.parallel.pp_schedule = PipelineSchedule::interleaved;
  const std::vector<int> split = chunk_layers(p);
  ASSERT_EQ(split.size(), 32u);
  EXPECT_EQ(split[0], 3);
  EXPECT_EQ(split[31], 3);
  for (int j = 1; j < 31; ++j) EXPECT_EQ(split[j], 4) << "chunk " << j;
  const auto st = stage_layers(p);
  ASSERT_EQ(st.size(), 16u);
  EXPECT_EQ(st[0].dense, 7);
  EXPECT_EQ(st[15].dense, 7);
  for (int s = 1; s < 15; ++s) EXPECT_EQ(st[s].total(), 8) << "stage " << s;

  Plan q;
  q.model = model_preset("llama3-405b");
  q.model.layers = 22;
  q.parallel.pp = 3;
  const std::vector<int> three = chunk_layers(q);
  EXPECT_EQ(three, (std::vector<int>{7, 8, 7}));
  q.model.layers = 20;  // 6 each, 2 left over: inner chunk 1 first, then the last
  EXPECT_EQ(chunk_layers(q), (std::vector<int>{6, 7, 7}));
  q.model.layers = 21;  // divides evenly
  EXPECT_EQ(chunk_layers(q), (std::vector<int>{7, 7, 7}));
}

// MoE stages: DeepSeek-V3's 3 dense layers land on the first stage.
TEST(Pipeline, MoeLayersPerStage) {
  Plan p;
  p.model = model_preset("deepseek-v3");
  p.parallel.pp = 4;  // 61 layers: 15, 16, 15, 15
  const auto st = stage_layers(p);
  EXPECT_EQ(st[0].dense, 3);
  EXPECT_EQ(st[0].moe, 12);
  EXPECT_EQ(st[1].moe, 16);
  EXPECT_EQ(st[3].moe, 15);
}

// Flash attention drops the s^2 terms and keeps an fp32 log-sum-exp per query row and head (4as b/t).
TEST(Activations, FlashAttentionHasNoQuadraticTerm) {
  Plan p = gpt_plan("gpt-22b", 8, 1, false, Recompute::none, 1);
  p.training.flash_attention = true;
  const double s = 2048, b = 1, h = 6144, a = 64, t = 8;
  EXPECT_DOUBLE_EQ(layer_bytes(p), s * b * h * (10 + 24 / t) + 4 * a * s * b / t);
}

// LLaMA-style layer (GQA, SwiGLU, no dropout, flash, selective): per token 2h (norm) + 2h (qkv input)
// + 2(h + 2 kv) (q, k, v) + 2h (o input) + 2h (norm) + 2h (fc1 input) + 2*2f (fused SwiGLU input)
// + 2f (fc2 input) bytes. LLaMA-3-8B: 139,264 B per token per layer.
TEST(Activations, LlamaLayer) {
  Plan p = plantest::preset_plan("llama3-8b", 8192, "h100-sxm-80gb");
  p.training.recompute = Recompute::selective;
  const double h = 4096, kv = 1024, f = 14336;
  const double per_token = 2 * h + 2 * h + 2 * (h + 2 * kv) + 2 * h + 2 * h + 2 * h + 2 * 2 * f + 2 * f;
  EXPECT_DOUBLE_EQ(per_token, 139'264);
  EXPECT_DOUBLE_EQ(layer_bytes(p), per_token * 8192);
}

// A norm on each query and key head (Qwen3; Megatron-Core --qk-layernorm) keeps its input, the projected
// q and k, for its backward: the LLaMA-3-8B layer above plus 2(h + kv) bytes per token (q 4,096 and k
// 1,024 wide in bf16: 10,240 B), 149,504 B per token; and 2 x head_dim (128) parameters of RMSNorm weights.
TEST(Activations, QkNormKeepsTheProjectedQueriesAndKeys) {
  Plan p = plantest::preset_plan("llama3-8b", 8192, "h100-sxm-80gb");
  p.training.recompute = Recompute::selective;
  const double plain = layer_bytes(p);
  const int64_t params = count_params(p.model).total;
  p.model.qk_norm = true;
  EXPECT_DOUBLE_EQ(layer_bytes(p) - plain, 2 * (4096 + 1024) * 8192.0);
  EXPECT_DOUBLE_EQ(layer_bytes(p) / 8192, 149'504);
  EXPECT_EQ(count_params(p.model).total - params, 32 * 2 * 128);
  // Under tp = 4 each rank norms its 8 query and 2 key heads: a quarter of the bytes.
  p.parallel.tp = 4;
  p.cluster.gpus = 4;
  Plan q = p;
  q.model.qk_norm = false;
  EXPECT_DOUBLE_EQ(layer_bytes(p) - layer_bytes(q), 2 * (4096 + 1024) / 4 * 8192.0);
}

// Transformer Engine's fused cross entropy keeps the 16-bit logits it was given and writes their gradient
// in place (transformer_engine/pytorch/cross_entropy.py): the head keeps 2 B per logit instead of
// Megatron's fp32 softmax (4 B), and neither the loss nor the output projection's backward allocates a
// logits-sized buffer (2 B beside the fp32 copy, and the gradient the projection reads). LLaMA-3-8B,
// 8,192 tokens x 128,256 vocabulary.
TEST(Activations, TransformerEngineCrossEntropyKeepsTheBf16LogitsOnly) {
  Plan p = plantest::preset_plan("llama3-8b", 8192, "h100-sxm-80gb");
  auto head = [](const Plan& x) {
    return build_workload(x, framework_profile(Framework::megatron), shape_of(x)).head;
  };
  const double logits = 8192.0 * 128256;
  const Block unfused = head(p);
  p.training.cross_entropy = CrossEntropy::te;
  const Block te = head(p);
  EXPECT_DOUBLE_EQ(unfused.saved_bytes[0] - te.saved_bytes[0], (4 - 2) * logits);
  EXPECT_DOUBLE_EQ(unfused.bwd_working_bytes, 2 * 8192.0 * (4096 + 128256));  // the projection's dlogits + dx
  // The largest backward buffer is then the final norm's (its input and output gradients, 2 x 2 B x T x h).
  EXPECT_DOUBLE_EQ(te.bwd_working_bytes, 2 * 2 * 8192.0 * 4096);
}
