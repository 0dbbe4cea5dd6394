// Megatron-Core's MoE layer in the kernel-level time model (op_time.cpp, workload.cpp moe()): the grouped
// GEMM costed one GEMM per local expert, the token permutation passes and the router's kernels, each
// checked against a value derived by hand.
#include <gtest/gtest.h>

#include <string>

#include "paraplan/calibration.hpp"
#include "paraplan/comm.hpp"
#include "paraplan/op_time.hpp"
#include "paraplan/presets.hpp"
#include "paraplan/workload.hpp"

using namespace paraplan::planner;

namespace {

// An H100 on its datasheet values (bf16 peak 989.4 TFLOP/s, MAMF e_gemm 0.8006, 132 SMs, HBM 3.35 TB/s x
// memory 0.9, 2 us per kernel, no tile fill, no host cost), a model with one MoE layer.
Plan h100_moe(int experts, int top_k, int64_t expert_ffn) {
  Plan p;
  p.cluster.gpu = hardware_preset("h100-sxm-80gb");
  p.cluster.calibration = builtin_calibration("none");
  p.model.moe = MoeSpec{experts, top_k, expert_ffn, 0, 0};
  return p;
}

// One MoE layer of 16 experts (top 2, width `expert_ffn`), h = 256 (4 heads of 64), SwiGLU, 128 tokens
// a sequence, 2 sequences a step.
Plan one_small_moe_layer(int64_t expert_ffn) {
  Plan p = h100_moe(16, 2, expert_ffn);
  ModelSpec& m = p.model;
  m.layers = 1;
  m.hidden = 256;
  m.heads = m.kv_heads = 4;  // 4 x 64 = h
  m.head_dim = 64;
  m.ffn_hidden = 1024;
  m.vocab = 1000;
  m.activation = Activation::swiglu;
  m.max_seq_len = 128;
  p.training.seq_len = 128;
  p.training.global_batch = 2;
  return p;
}

// A model preset on H100s at their datasheet values, sequences of 4,096 tokens, one a micro-batch.
Plan h100_preset_moe(const char* model, int64_t global_batch) {
  Plan p;
  p.model = model_preset(model);
  p.cluster.gpu = hardware_preset("h100-sxm-80gb");
  p.cluster.calibration = builtin_calibration("none");
  p.training.seq_len = 4096;
  p.training.micro_batch = 1;
  p.training.global_batch = global_batch;
  return p;
}

// The MoE layer's time with only `op` in it (every other block empty).
BlockTime time_only(const Plan& p, const Op& op) {
  Workload w;
  w.act_bytes = 2;
  w.moe_layer.kind = BlockKind::moe_layer;
  w.moe_layer.add(op);
  return time_workload(p, w, framework_profile(Framework::megatron)).moe_layer;
}

Op grouped(double experts, double m, double k, double n) {
  Op op;
  op.name = "expert_fc1";
  op.kind = OpKind::gemm;
  op.m = m; op.k = k; op.n = n;
  op.batch = experts;
  op.flops = op.model_flops = 2 * experts * m * n * k;
  op.weight_grad = true;
  return op;
}

constexpr double kPerSm = 989.4e12 / 132 * 0.8006;  // FLOP/s of one SM at the 128x128 tile's rate
constexpr double kHbm = 3.35e12 * 0.9;

}  // namespace

// 8 local experts of 264 tokens each, k = 4096, n = 512 (one expert's fc1 under a narrow width), by
// hand with the tile/wave model: each expert's M is cut into its own ceil(264/128) = 3 tile rows.
// 128x128: 3 x 4 x 8 = 96 tiles, one wave of 2 x 128^2 x 4096 / kPerSm = 22.37 us; 128x64: 192 tiles,
// 2 waves at 2/3 of the rate = 33.5 us; 64x64: 5 x 8 x 8 = 320 tiles, 3 waves at half the rate = 33.5 us.
// The memory floor, each expert reading its own weights: 2 x 8 x (264 x 4096 + 4096 x 512 + 264 x 512)
// bytes / 3.015e12 = 17.6 us, below. One kernel per expert: 8 x 2 us forward, 16 x 2 us backward.
TEST(MoeTime, GroupedGemmIsOneTiledGemmPerExpert) {
  const Plan p = h100_moe(8, 1, 512);
  const BlockTime t = time_only(p, grouped(8, 264, 4096, 512));
  const double math = 2 * 128.0 * 128 * 4096 / kPerSm;
  ASSERT_GT(math, 2 * 8 * (264.0 * 4096 + 4096 * 512 + 264 * 512) / kHbm);
  EXPECT_NEAR(t.fwd, math + 8 * 2e-6, 1e-12);
  EXPECT_NEAR(t.bwd_input, math + 16 * 2e-6, 1e-12);  // data gradient: same shape, 2 kernels per expert
  EXPECT_NEAR(t.bwd_weight, math, 1e-12);
}

// Fine-grained experts: 64 local experts of 72 tokens each, k = 4096, n = 128. Every expert's 72 rows
// fill one tile row of 128 (the fastest tile, 128x64: 64 x 2 = 128 tiles, one wave, 0.75 x 22.37 =
// 16.8 us), but the 64 experts' weights must all be read: 2 x 64 x (72 x 4096 + 4096 x 128 + 72 x 128)
// bytes / 3.015e12 = 35.1 us: memory-bound, plus 64 kernels x 2 us. One GEMM over the 4,608 routed rows
// with one weight would take 36 x 2 = 72 tiles of 128x64, one wave: 16.8 us + 2 us, 8.7x faster.
TEST(MoeTime, FineGrainedExpertsReadEveryExpertsWeights) {
  const Plan p = h100_moe(64, 1, 128);
  const BlockTime t = time_only(p, grouped(64, 72, 4096, 128));
  const double bytes = 2 * 64 * (72.0 * 4096 + 4096 * 128 + 72 * 128);
  EXPECT_NEAR(t.fwd, bytes / kHbm + 64 * 2e-6, 1e-12);
  EXPECT_NEAR(t.fwd, 163.1e-6, 0.1e-6);
}

// The MoE layer's ops for a small model: h = 256, 16 experts of width 64, top-2, SwiGLU, micro-batch
// 1 x 128 tokens, ep = 2 (8 local experts), bf16. Routed copies per rank: 128 x 2 = 256.
TEST(MoeTime, PermutationRouterAndExpertOpsByHand) {
  Plan p = one_small_moe_layer(64);
  p.parallel.dp = 2;
  p.parallel.ep = 2;
  p.cluster.gpus = 2;
  const Workload w = build_workload(p, framework_profile(Framework::megatron), shape_of(p));
  const double T = 128, routed = 256, h = 256, row = 2 * h;
  auto find = [&](const char* name) -> const Op& {
    for (const Op& op : w.moe_layer.ops)
      if (std::string(op.name) == name) return op;
    ADD_FAILURE() << "no op " << name;
    return w.moe_layer.ops[0];
  };
  // Router: fp32 logits read, fp32 probabilities and the bool routing map written, T x 16 each: 9 B each.
  EXPECT_DOUBLE_EQ(find("router_topk").io_bytes, 9 * T * 16);
  // Permutation 1 reads the 128 tokens once and writes 256 copies; the local sort reads and writes 256.
  const Op& permute = find("moe_permute");
  EXPECT_DOUBLE_EQ(permute.io_bytes, row * (128 + 256 + 2 * 256));
  EXPECT_DOUBLE_EQ(permute.bwd_io_bytes, permute.io_bytes);
  EXPECT_DOUBLE_EQ(permute.batch, 2);
  // The combine: sort back (256 in, 256 out), unpermute (256 in, 128 out); backward: sort (2 x 256) and
  // the unpermute's gradient (128 rows of gradient read, 256 written). Megatron-Core >= 0.13 weights the
  // copies in the expert activation, so the combine keeps nothing and reads no saved rows back; the
  // activation keeps its [gate|up] input (256 x 128 x 2 B) and each copy's fp32 probability (256 x 4 B).
  const Op& combine = find("moe_combine");
  EXPECT_DOUBLE_EQ(combine.io_bytes, row * (2 * routed + routed + T));
  EXPECT_DOUBLE_EQ(combine.bwd_io_bytes, row * (2 * routed + T + routed));
  EXPECT_DOUBLE_EQ(combine.saved_bytes, 0);
  EXPECT_DOUBLE_EQ(find("expert_swiglu").saved_bytes, 256 * 128 * 2 + 256 * 4);
  // Grouped fc1: 8 local experts of 256 / 8 = 32 tokens, [32 x 256] . [256 x 128] each (gate | up).
  const Op& fc1 = find("expert_fc1");
  EXPECT_DOUBLE_EQ(fc1.batch, 8);
  EXPECT_DOUBLE_EQ(fc1.m, 32);
  EXPECT_DOUBLE_EQ(fc1.flops, 2 * routed * h * 128);
  // One local expert (ep = 16): no chunk sort, one pass each way.
  p.parallel.dp = 16;
  p.parallel.ep = 16;
  p.cluster.gpus = 16;
  const Workload one = build_workload(p, framework_profile(Framework::megatron), shape_of(p));
  int permutes = 0;
  for (const Op& op : one.moe_layer.ops) {
    if (std::string(op.name) != "moe_permute") continue;
    ++permutes;
    EXPECT_DOUBLE_EQ(op.io_bytes, row * (T + routed));
    EXPECT_DOUBLE_EQ(op.batch, 1);
  }
  EXPECT_EQ(permutes, 1);
  // DeepSpeed-MoE weights the expert outputs in its combine: it keeps them (256 rows of 256 x 2 B) and reads
  // them back for the probabilities' gradient; the activation keeps its tensors only (unfused SwiGLU: gate,
  // up and silu(gate), 3 x 64 wide).
  const Workload ds = build_workload(p, framework_profile(Framework::deepspeed), shape_of(p));
  for (const Op& op : ds.moe_layer.ops) {
    if (std::string(op.name) == "moe_combine") {
      EXPECT_DOUBLE_EQ(op.saved_bytes, routed * row);
      EXPECT_DOUBLE_EQ(op.bwd_io_bytes, row * (T + 2 * routed));  // one local expert: no sort
    }
    if (std::string(op.name) == "expert_swiglu") {
      EXPECT_DOUBLE_EQ(op.saved_bytes, 256 * 3 * 64 * 2);
    }
  }
}

// A permutation pass's time: its bytes at 0.9 of HBM, plus one kernel per pass (Megatron-Core: TE's fused
// permute, 1 each way); the backward moves its bwd_io_bytes.
TEST(MoeTime, PermutationPassesCostTheirBytesAndKernels) {
  const Plan p = h100_moe(8, 1, 512);
  Op op;
  op.name = "moe_permute";
  op.io_bytes = 3e8;
  op.bwd_io_bytes = 2e8;
  op.batch = 2;
  const BlockTime t = time_only(p, op);
  EXPECT_NEAR(t.fwd, 3e8 / kHbm + 2 * 2e-6, 1e-12);
  EXPECT_NEAR(t.bwd_input, 2e8 / kHbm + 2 * 2e-6, 1e-12);
}

// Under tp 2 with sequence parallelism a rank dispatches only its shard of the tokens: the all-to-all
// moves its T / 2 tokens' top_k copies, and the experts (tensor-parallel too) get the other rank's rows by
// an all-gather over tp after the dispatch and give them back by a reduce-scatter before the combine
// (token_dispatcher.py dispatch_postprocess / combine_preprocess). By hand, T = 128 tokens, top 2,
// h = 256, bf16: all-to-all 64 x 2 x 256 x 2 B = 65,536 B each way; the tp gather and scatter 128 x 2 x
// 256 x 2 B = 131,072 B (nccl-tests' size, the gathered buffer); Permutation 1 over the rank's 64 tokens
// (64 + 128 rows read and written), the local sort over the 256 gathered rows.
TEST(MoeTime, SequenceParallelRanksDispatchTheirShardAndGatherOverTp) {
  Plan p = one_small_moe_layer(1024);
  p.parallel.tp = 2;
  p.parallel.sequence_parallel = true;
  p.parallel.dp = 2;
  p.parallel.ep = 2;
  p.cluster.gpus = 4;
  const Workload w = build_workload(p, framework_profile(Framework::megatron), shape_of(p));
  int a2a = 0, gathers = 0, scatters = 0;
  for (const Comm& c : w.moe_layer.comms) {
    if (c.axis == Axis::ep) {
      EXPECT_EQ(c.kind, CommKind::all_to_all);
      EXPECT_DOUBLE_EQ(c.bytes, 64 * 2 * 256 * 2);
      ++a2a;
    }
    if (c.axis == Axis::tp && std::string(c.name).rfind("moe_tp", 0) == 0) {
      EXPECT_DOUBLE_EQ(c.bytes, 128 * 2 * 256 * 2);
      (c.kind == CommKind::all_gather ? gathers : scatters)++;
    }
  }
  EXPECT_EQ(a2a, 4);
  EXPECT_EQ(gathers, 2);  // forward after the dispatch, backward of the combine's reduce-scatter
  EXPECT_EQ(scatters, 2);
  // Transformer Engine's userbuffers (tp_comm_overlap) hide its linear layers' collectives behind their
  // GEMMs, not the dispatcher's gathers: with the overlap on, those stay exposed in full.
  double moe_tp_fwd = 0;
  for (const Comm& c : w.moe_layer.comms) {
    const bool moe_tp = std::string(c.name).rfind("moe_tp", 0) == 0;
    EXPECT_EQ(c.gemm_overlappable, !moe_tp) << c.name;
    if (moe_tp && c.pass == Pass::forward) moe_tp_fwd += collective_time(c.kind, c.bytes, 2, group_link(p, Axis::tp));
  }
  p.parallel.tp_comm_overlap = true;
  const auto fw = framework_profile(Framework::megatron);
  const BlockTime on = time_workload(p, build_workload(p, fw, shape_of(p)), fw).moe_layer;
  ASSERT_GT(moe_tp_fwd, 0);
  EXPECT_GE(on.exposed_fwd, moe_tp_fwd);
  for (const Op& op : w.moe_layer.ops) {
    if (std::string(op.name) == "moe_permute") {
      EXPECT_DOUBLE_EQ(op.io_bytes, 2.0 * 256 * (64 + 128 + 2 * 256));
    }
  }
}

// EP A2A overlap (parallel.ep_comm_overlap, Megatron-Core --overlap-moe-expert-parallel-comm): a forward
// all-to-all is exposed only where it outlasts the paired micro-batch's backward compute, a backward one
// where it outlasts the forward's. Qwen3-30B-A3B's MoE layer on 16 H100s, ep 16 across two nodes (8 ranks
// a node: each rank's 8/16 off-node bytes through its NIC), then inside one node (ep 8). No pipeline, 8
// micro-batches: the first forward and the last backward run alone, so 7 of 8 passes are paired.
TEST(MoeTime, AllToAllOverlapHidesItUnderThePairedMicroBatchsCompute) {
  Plan p = h100_preset_moe("qwen3-30b-a3b", 128);
  p.parallel.dp = 16;
  p.parallel.ep = 16;
  p.cluster.gpus = 16;
  const double paired = 7.0 / 8;
  for (int ep : {16, 8}) {
    p.parallel.ep = ep;
    p.parallel.ep_comm_overlap = false;
    const BlockTime off = time_workload(p, build_workload(p, framework_profile(Framework::megatron), shape_of(p)),
                                        framework_profile(Framework::megatron)).moe_layer;
    p.parallel.ep_comm_overlap = true;
    const BlockTime on = time_workload(p, build_workload(p, framework_profile(Framework::megatron), shape_of(p)),
                                       framework_profile(Framework::megatron)).moe_layer;
    ASSERT_GT(off.comm_fwd, 0) << ep;
    EXPECT_DOUBLE_EQ(off.exposed_fwd, off.comm_fwd) << ep;  // tp 1, cp 1: the all-to-alls alone
    EXPECT_DOUBLE_EQ(on.comm_fwd, off.comm_fwd);
    EXPECT_NEAR(on.exposed_fwd,
                paired * std::max(0.0, off.comm_fwd - (off.bwd_input + off.bwd_weight)) + (1 - paired) * off.comm_fwd,
                1e-15) << ep;
    EXPECT_NEAR(on.exposed_bwd, paired * std::max(0.0, off.comm_bwd - off.fwd) + (1 - paired) * off.comm_bwd, 1e-15)
        << ep;
    EXPECT_DOUBLE_EQ(on.fwd, off.fwd);
    // Across the NICs the backward's all-to-alls outlast the forward; over NVLink only the unpaired eighth shows.
    if (ep == 16) {
      EXPECT_GT(on.exposed_bwd, off.comm_bwd / 8);
    } else {
      EXPECT_NEAR(on.exposed_fwd + on.exposed_bwd, (off.comm_fwd + off.comm_bwd) / 8, 1e-15);
    }
  }
}

// The paired share by hand, Megatron-Core's warm-up counts with the overlap (schedules.py): the pipeline
// of the H100 Qwen3-235B-A22B recipe, pp 8 x v 4 over 128 micro-batches (512 passes a rank): rank r warms
// up (7 - r) x 2 + 3 x 8 + 1 = 39 .. 25 passes, 32 on average, so 1 - 32 / 512 = 15/16 are paired. (tp 1
// here, so that the block's collectives are its all-to-alls alone.)
TEST(MoeTime, TheOverlapPairsAllButTheWarmUpPasses) {
  Plan p = h100_preset_moe("qwen3-235b-a22b", 4096);
  p.parallel.pp = 8;
  p.parallel.pp_schedule = PipelineSchedule::interleaved;
  p.parallel.virtual_stages = 4;
  p.parallel.dp = 32;
  p.parallel.ep = 32;
  p.cluster.gpus = 256;
  p.parallel.layer_split = std::vector<int>(32, 3);
  p.parallel.layer_split.front() = p.parallel.layer_split.back() = 2;  // (94 + 2) / 32, embedding and loss
  ASSERT_EQ(p.micro_batches(), 128);
  auto layer = [&](bool overlap) {
    p.parallel.ep_comm_overlap = overlap;
    const auto fw = framework_profile(Framework::megatron);
    return time_workload(p, build_workload(p, fw, shape_of(p)), fw).moe_layer;
  };
  const BlockTime off = layer(false), on = layer(true);
  const double paired = 15.0 / 16;
  EXPECT_NEAR(on.exposed_fwd,
              paired * std::max(0.0, off.comm_fwd - (off.bwd_input + off.bwd_weight)) + (1 - paired) * off.comm_fwd, 1e-15);
  EXPECT_NEAR(on.exposed_bwd, paired * std::max(0.0, off.comm_bwd - off.fwd) + (1 - paired) * off.comm_bwd, 1e-15);
  EXPECT_GT(on.exposed_fwd, 0);  // the unpaired sixteenth at least
}
