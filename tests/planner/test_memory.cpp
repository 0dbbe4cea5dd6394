// The per-stage memory model, term by term, on configurations derived by hand.
#include <gtest/gtest.h>

#include "paraplan/bytes_per_param.hpp"
#include "paraplan/memory.hpp"
#include "paraplan/pipeline.hpp"
#include "paraplan/presets.hpp"
#include "plan_fixtures.hpp"

using namespace paraplan::planner;

namespace {

Plan llama8b(int dp, int tp, int pp, int zero) {
  Plan p = plantest::preset_plan("llama3-8b", 4096, "h100-sxm-80gb");
  p.training.micro_batch = 1;
  p.training.global_batch = 64;
  p.training.recompute = Recompute::selective;
  p.parallel.dp = dp;
  p.parallel.tp = tp;
  p.parallel.pp = pp;
  p.parallel.zero = zero;
  p.cluster.gpus = dp * tp * pp;
  return p;
}

// LLaMA-3-8B blocks by hand (see test_params.cpp).
constexpr double kLayer = 218'112'000;       // one transformer layer
constexpr double kLayerNorms = 8'192;        // its two RMSNorms (replicated under TP)
constexpr double kVocabH = 128'256.0 * 4096;  // embedding, and again the untied head
constexpr double kFinalNorm = 4'096;

}  // namespace

// pp = 4: 8 layers per stage; the embedding on stage 0, final norm and head on stage 3. bf16 weights 2 B,
// fp32 grads 4 B, master 4 B, Adam 8 B (Megatron's 18 B/param), no ZeRO.
TEST(Memory, StagesHoldTheirOwnParameters) {
  const MemoryBreakdown m = estimate_memory(llama8b(1, 1, 4, 0));
  ASSERT_EQ(m.per_stage.size(), 4u);
  const double first = 8 * kLayer + kVocabH, middle = 8 * kLayer, last = 8 * kLayer + kFinalNorm + kVocabH;
  EXPECT_DOUBLE_EQ(m.per_stage[0].weights_bytes, 2 * first);
  EXPECT_DOUBLE_EQ(m.per_stage[1].weights_bytes, 2 * middle);
  EXPECT_DOUBLE_EQ(m.per_stage[3].weights_bytes, 2 * last);
  EXPECT_DOUBLE_EQ(m.per_stage[3].gradients_bytes, 4 * last);
  EXPECT_DOUBLE_EQ(m.per_stage[3].master_weights_bytes, 4 * last);
  EXPECT_DOUBLE_EQ(m.per_stage[3].optimizer_bytes, 8 * last);
  EXPECT_TRUE(m.per_stage[0].has_embedding);
  EXPECT_TRUE(m.per_stage[3].has_head);
}

// tp = 2: linear weights and the vocabulary split in two, norms replicated; ZeRO-1 over dp = 4 shards
// master and Adam (12 B) four ways.
TEST(Memory, TensorParallelAndZero1) {
  const MemoryBreakdown m = estimate_memory(llama8b(4, 2, 1, 1));
  const double local = 32 * ((kLayer - kLayerNorms) / 2 + kLayerNorms) + 2 * kVocabH / 2 + kFinalNorm;
  const StageMemory& s = m.per_stage[0];
  EXPECT_DOUBLE_EQ(s.weights_bytes, 2 * local);
  EXPECT_DOUBLE_EQ(s.gradients_bytes, 4 * local);
  EXPECT_DOUBLE_EQ(s.master_weights_bytes + s.optimizer_bytes, 12 * local / 4);
}

// 1F1B: stage s holds min(m, p - s) micro-batches; the last stage also holds the fp32 logits, and in
// the output projection's backward the bf16 gradients of the logits and of its input (2T(h + V) bytes),
// more than any layer's working set (SwiGLU backward, 2T(2f + f)).
TEST(Memory, PipelineActivationsAndLogitsSpike) {
  const Plan p = llama8b(1, 1, 4, 0);
  const MemoryBreakdown m = estimate_memory(p);
  const double T = 4096, h = 4096, kv = 1024, f = 14336, V = 128256;
  const double layer = T * (2 * h + 2 * h + 2 * (h + 2 * kv) + 2 * h + 2 * h + 2 * h + 2 * 2 * f + 2 * f);
  EXPECT_DOUBLE_EQ(m.per_stage[1].inflight_microbatches, 3);
  EXPECT_DOUBLE_EQ(m.per_stage[1].saved_activation_bytes, 3 * 8 * layer);
  const double head_saved = 2 * T * h + 2 * T * h + 4 * T * V;  // final-norm input, head input, fp32 logits
  EXPECT_DOUBLE_EQ(m.per_stage[3].saved_activation_bytes, 8 * layer + head_saved);
  EXPECT_DOUBLE_EQ(m.per_stage[3].working_bytes, 2 * T * (h + V));
  EXPECT_DOUBLE_EQ(m.per_stage[1].working_bytes, 2 * T * 3 * f + 4 * 32 * T);  // + one layer's recomputed LSE
  // Stage 0: 4 micro-batches in flight, plus their int64 token ids.
  EXPECT_DOUBLE_EQ(m.per_stage[0].saved_activation_bytes, 4 * (8 * layer + 8 * T));
}

// GPipe keeps every micro-batch's activations: m = 64 here.
TEST(Memory, GpipeHoldsAllMicrobatches) {
  Plan p = llama8b(1, 1, 4, 0);
  p.parallel.pp_schedule = PipelineSchedule::gpipe;
  EXPECT_DOUBLE_EQ(estimate_memory(p).per_stage[1].inflight_microbatches, 64);
}

// Megatron-LM theoretical_memory_usage.py, transcribed, on a config of our choice: GPT 7.5B shape
// (h 4096, L 36, a 32, V 51200, s 2048), no biases (Megatron's formula counts none), t = 2, p = 2,
// dp = 4, SP + selective recompute, distributed optimizer, mbs 1, 32 micro-batches.
TEST(Memory, MegatronTheoreticalMemory) {
  Plan p;
  p.model = model_preset("gpt-7.5b");
  p.model.bias = Bias::none;
  p.model.position_embedding = PositionEmbedding::rope;  // Megatron's formula has no position table
  p.model.tied_embeddings = false;
  p.training.seq_len = 2048;
  p.training.micro_batch = 1;
  p.training.global_batch = 128;
  p.training.dropout = 0.1;
  p.training.recompute = Recompute::selective;
  p.parallel = {};
  p.parallel.dp = 4;
  p.parallel.tp = 2;
  p.parallel.pp = 2;
  p.parallel.zero = 1;
  p.parallel.sequence_parallel = true;
  p.cluster.gpu = hardware_preset("a100-80gb");
  p.cluster.gpus = 16;
  const double s = 2048, b = 1, h = 4096, L = 36, V = 51200, t = 2, pp = 2, dp = 4, ffn = 4 * h;

  // compute_weight_and_optimizer_memory: per layer 2h^2(1 + g/a) + 2h ffn + 2h*norm_size(2, LayerNorm)
  const double per_layer = 2 * h * h * 2 + 2 * h * ffn + 2 * h * 2;
  const double layernorm = 2 * 2 * h;  // two LayerNorms (weight + bias) per layer, replicated across TP
  // most loaded shard (first stage): sharded block / p / t + embedding / t + replicated block / p
  const double shard = (per_layer - layernorm) * L / pp / t + h * V / t + layernorm * L / pp;
  const double megatron_states = shard * (6 + 12 / dp);

  // compute_activation_memory: sbh(18 + 4 ffn/h) L + 8sbp + sbhp, x min(1, m/p) = 1, all / t
  const double megatron_act = (s * b * h * (18 + 4 * ffn / h) * L + 8 * s * b * pp + s * b * h * pp) / t;

  const StageMemory st = estimate_memory(p).per_stage[0];
  EXPECT_DOUBLE_EQ(st.weights_bytes + st.gradients_bytes + st.master_weights_bytes + st.optimizer_bytes,
                   megatron_states);
  // Ours keeps the int64 token ids whole on every TP rank (Megatron divides them by t too): the
  // difference is exactly 8sbp(1 - 1/t).
  EXPECT_DOUBLE_EQ(st.saved_activation_bytes - megatron_act, 8 * s * b * pp * (1 - 1 / t));
}

// LoRA r = 8 on q, v (textbook recipe): the frozen bf16 base has no gradients, master or Adam state; the
// 3,407,872 adapter parameters have 2 + 4 + 4 + 8 = 18 B each.
TEST(Memory, LoraFreezesTheBase) {
  Plan p = llama8b(1, 1, 1, 0);
  LoraSpec lora;
  lora.rank = 8;
  p.training.lora = lora;
  const StageMemory s = estimate_memory(p).per_stage[0];
  const double base = 8'030'261'248, adapters = 3'407'872;
  EXPECT_DOUBLE_EQ(s.weights_bytes, 2 * base + 2 * adapters);
  EXPECT_DOUBLE_EQ(s.gradients_bytes, 4 * adapters);
  EXPECT_DOUBLE_EQ(s.master_weights_bytes, 4 * adapters);
  EXPECT_DOUBLE_EQ(s.optimizer_bytes, 8 * adapters);
}

// QLoRA: linear weights in NF4 (0.516 B), embeddings, head and norms stay bf16.
TEST(Memory, QloraBase) {
  Plan p = llama8b(1, 1, 1, 0);
  LoraSpec lora;
  lora.rank = 8;
  lora.base = LoraBase::nf4;
  p.training.lora = lora;
  const StageMemory s = estimate_memory(p).per_stage[0];
  const double linear = 32 * (kLayer - kLayerNorms);
  const double other = 32 * kLayerNorms + 2 * kVocabH + kFinalNorm;
  EXPECT_NEAR(s.weights_bytes, linear * nf4_bytes_per_param() + 2 * other + 2 * 3'407'872, 1);
}

// ZeRO-3 with the FSDP profile: fp32 shards (the master copy) 4 + 4 + 8 = 16 B over dp; buffers hold
// the gathered layer and the prefetched next one in bf16 and one layer's fp32 gradients.
TEST(Memory, Zero3GatherBuffersFsdp) {
  Plan p = llama8b(8, 1, 1, 3);
  p.training.framework = Framework::fsdp;
  const StageMemory s = estimate_memory(p).per_stage[0];
  const double all = 8'030'261'248;
  EXPECT_DOUBLE_EQ(s.weights_bytes + s.gradients_bytes + s.master_weights_bytes + s.optimizer_bytes, 16 * all / 8);
  // largest gathered unit: the head (final norm + 525M-parameter projection) beats a 218M layer
  const double unit = kVocabH + kFinalNorm;
  EXPECT_DOUBLE_EQ(s.buffers_bytes, 2 * unit * 2 + unit * 4);
}

// Offload optimizer with ZeRO-2: master, Adam and gradient shards go to the host.
TEST(Memory, OffloadMovesStatesToHost) {
  Plan p = llama8b(8, 1, 1, 2);
  p.training.offload = Offload::optimizer;
  const StageMemory s = estimate_memory(p).per_stage[0];
  const double all = 8'030'261'248;
  EXPECT_DOUBLE_EQ(s.weights_bytes, 2 * all);
  EXPECT_DOUBLE_EQ(s.gradients_bytes + s.master_weights_bytes + s.optimizer_bytes, 0);
  EXPECT_DOUBLE_EQ(s.host_bytes, (4 + 4 + 8) * all / 8);
}

// Overheads: CUDA context 512 MiB, 688 MB per NCCL communicator (dp, tp and pp groups here) and a 5 %
// allocator headroom on what is allocated (framework.cpp cites each). CPU workers have none.
TEST(Memory, FrameworkOverheads) {
  const StageMemory s = estimate_memory(llama8b(2, 2, 2, 1)).per_stage[0];
  EXPECT_DOUBLE_EQ(s.cuda_context_bytes, 512.0 * 1024 * 1024);
  EXPECT_DOUBLE_EQ(s.nccl_bytes, 3 * 688e6);
  EXPECT_DOUBLE_EQ(s.headroom_bytes, 0.05 * s.allocated_bytes());
  Plan cpu = llama8b(2, 2, 2, 1);
  cpu.cluster.gpu = hardware_preset("cpu");
  cpu.training.precision = Precision::fp32;
  EXPECT_DOUBLE_EQ(estimate_memory(cpu).per_stage[0].overhead_bytes, 0);
  Plan custom = llama8b(2, 2, 2, 1);
  custom.cluster.nccl_bytes_per_communicator = 100e6;
  EXPECT_DOUBLE_EQ(estimate_memory(custom).per_stage[0].nccl_bytes, 3 * 100e6);
}

// Mixtral with ep = 8 over dp = 8: each rank holds one of the eight experts of every layer; the expert
// optimizer states are sharded over dp/ep = 1 (ZeRO-1), the dense ones over dp = 8.
TEST(Memory, ExpertParallelism) {
  Plan p = plantest::preset_plan("mixtral-8x7b", 4096, "h100-sxm-80gb");
  p.training.global_batch = 8;
  p.parallel.dp = 8;
  p.parallel.ep = 8;
  p.parallel.zero = 1;
  p.cluster.gpus = 8;
  const StageMemory s = estimate_memory(p).per_stage[0];
  const double expert = 32 * 176'160'768.0;  // one expert per layer on this rank
  const double dense = 46'702'792'704.0 - 32 * 8 * 176'160'768.0;
  EXPECT_DOUBLE_EQ(s.weights_bytes, 2 * (dense + expert));
  EXPECT_DOUBLE_EQ(s.master_weights_bytes + s.optimizer_bytes, 12 * dense / 8 + 12 * expert / 1);
}

// The verdict: a plan fits when its worst stage's total is at most the device memory.
TEST(Memory, Verdict) {
  const MemoryBreakdown m = estimate_memory(llama8b(8, 1, 1, 0));
  EXPECT_FALSE(m.fits);  // 18 B x 8.03B = 144.5 GB of model states alone
  Plan z3 = llama8b(8, 1, 1, 3);
  EXPECT_TRUE(estimate_memory(z3).fits);
  EXPECT_DOUBLE_EQ(estimate_memory(z3).gpu_memory_bytes, 81559.0 * 1024 * 1024);
}
