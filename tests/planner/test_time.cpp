// The time model: FLOPs conventions, collective costs, topology, overlap, pipeline bubbles, and the
// published runs it must reproduce. Expected values are derived by hand in each test.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "paraplan/calibration.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/comm.hpp"
#include "paraplan/flops.hpp"
#include "paraplan/presets.hpp"
#include "paraplan/timing.hpp"
#include "paraplan/validation.hpp"
#include "paraplan/workload.hpp"
#include "tiny_gpt_by_hand.hpp"

using namespace paraplan::planner;

namespace {

Plan gpt3(int tp = 8, int pp = 8) {
  Plan p;
  p.model = model_preset("gpt3-175b");
  p.training.seq_len = 2048;
  p.training.micro_batch = 1;
  p.training.global_batch = 1536;
  p.parallel.tp = tp;
  p.parallel.pp = pp;
  p.parallel.dp = 1;
  p.cluster.gpu = hardware_preset("a100-80gb");
  p.cluster.gpus = tp * pp;
  return p;
}

// An idealised device: every efficiency 1, no latency or per-kernel cost, so times are FLOPs / peak
// and bytes / bandwidth exactly.
GpuSpec ideal_gpu() {
  GpuSpec g;
  g.id = "ideal";
  g.name = "ideal";
  g.custom = true;
  g.memory_bytes = 1e12;
  g.peak_bf16_flops = 100e12;
  g.hbm_bytes_per_s = 1e12;
  g.intra_node_bytes_per_s = 100e9;
  g.inter_node_bytes_per_s = 10e9;
  return g;
}

}  // namespace

// Per token, a GPT layer does 24h^2 GEMM FLOPs forward and 4sh of attention (QK^T and AV, counted in
// full); the head 2hV. Training triples it: 72Lh^2 + 12Lsh + 6hV (Korthikanti 2022 App. A, Megatron's
// 72 B s L h^2 (1 + s/(6h) + V/(12Lh))).
TEST(Flops, GptModelFlopsPerToken) {
  const Plan p = gpt3();
  const double L = 96, h = 12288, s = 2048, V = 50257;
  const StepFlops f = step_flops(p);
  EXPECT_NEAR(f.per_token_model / (72 * L * h * h + 12 * L * s * h + 6 * h * V), 1.0, 1e-12);
  // Causal counting halves the attention core: 72Lh^2 + 6Lsh + 6hV.
  EXPECT_NEAR(step_flops(p, AttentionFlops::causal).per_token_model / (72 * L * h * h + 6 * L * s * h + 6 * h * V), 1.0,
              1e-12);
}

// GPT-3 Table D.1: 6N x 300B tokens = 6 x 174.6e9 x 300e9 = 3.14e23 FLOPs. Our count without the
// attention core (which 6N ignores) is 72Lh^2 + 6hV per token.
TEST(Flops, Gpt3TrainingCompute) {
  const Plan p = gpt3();
  const double L = 96, h = 12288, s = 2048;
  const double per_token_no_attention = step_flops(p).per_token_model - 12 * L * s * h;
  EXPECT_NEAR(per_token_no_attention * 300e9 / 3.14e23, 1.0, 0.005);
}

// Full recompute adds one forward: Narayanan 2021 Eq. 3, 96 B s l h^2 (1 + s/(6h) + V/(16lh)), is
// exactly our hardware FLOPs (HFU) for full recompute.
TEST(Flops, FullRecomputeIsNarayanansNinetySix) {
  Plan p = gpt3();
  p.training.recompute = Recompute::full;
  const double B = 1536, s = 2048, l = 96, h = 12288, V = 50257;
  EXPECT_NEAR(step_flops(p).hardware / (96 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h))), 1.0, 1e-12);
  // selective recompute re-runs the attention core: + 4 B s^2 h l
  p.training.recompute = Recompute::selective;
  const StepFlops f = step_flops(p);
  EXPECT_NEAR((f.hardware - f.model) / (4 * B * s * s * h * l), 1.0, 1e-12);
}

// A frozen LoRA base skips weight gradients: per token 2 x 24Lh^2 (forward + input gradients) + 12Lsh
// (attention) + 4hV (head forward + input gradient), plus 3x the adapters' 2r(in + out) per matrix.
TEST(Flops, LoraSkipsFrozenWeightGradients) {
  Plan p = gpt3();
  LoraSpec lora;
  lora.rank = 8;
  lora.targets = kQProj | kVProj;
  p.training.lora = lora;
  const double L = 96, h = 12288, s = 2048, V = 50257, r = 8;
  const double adapters = 2 * (2 * r * (h + h));  // q and v, forward
  EXPECT_NEAR(step_flops(p).per_token_model / (48 * L * h * h + 12 * L * s * h + 4 * h * V + 3 * L * adapters), 1.0, 1e-12);
}

// nccl-tests doc/PERFORMANCE.md: busbw = algbw x 2(n-1)/n for all-reduce, x (n-1)/n for all-gather,
// reduce-scatter and all-to-all, x 1 for send/recv.
TEST(Comm, BusBandwidthFactors) {
  EXPECT_DOUBLE_EQ(bus_factor(CommKind::all_reduce, 8), 1.75);
  EXPECT_DOUBLE_EQ(bus_factor(CommKind::all_gather, 8), 0.875);
  EXPECT_DOUBLE_EQ(bus_factor(CommKind::reduce_scatter, 4), 0.75);
  EXPECT_DOUBLE_EQ(bus_factor(CommKind::all_to_all, 2), 0.5);
  EXPECT_DOUBLE_EQ(bus_factor(CommKind::send_recv, 2), 1);
  EXPECT_DOUBLE_EQ(bus_factor(CommKind::all_reduce, 1), 0);
  // 1 GB all-reduce over 8 ranks on a 100 GB/s link at 50% efficiency with 10 us latency:
  const Link l{100e9, 0.5, 10e-6, 0, false};
  EXPECT_DOUBLE_EQ(collective_time(CommKind::all_reduce, 1e9, 8, l), 10e-6 + 1e9 * 1.75 / 50e9);
  EXPECT_DOUBLE_EQ(collective_time(CommKind::all_reduce, 1e9, 1, l), 0);
  // With 1 us per algorithm step: a ring all-reduce of 8 ranks takes 2 (8 - 1) = 14 steps (reduce-scatter
  // then all-gather), an all-gather 7; across nodes the all-reduce may take the double binary tree,
  // 2 ceil(log2 8) = 6 levels, whichever is shorter (NCCL picks per size).
  const Link hop{100e9, 0.5, 10e-6, 1e-6, false};
  EXPECT_DOUBLE_EQ(collective_time(CommKind::all_reduce, 1e9, 8, hop), 10e-6 + 14e-6 + 1e9 * 1.75 / 50e9);
  EXPECT_DOUBLE_EQ(collective_time(CommKind::all_gather, 1e9, 8, hop), 10e-6 + 7e-6 + 1e9 * 0.875 / 50e9);
  const Link net{100e9, 0.5, 10e-6, 1e-6, true};
  EXPECT_DOUBLE_EQ(collective_time(CommKind::all_reduce, 1e9, 8, net), 10e-6 + 6e-6 + 1e9 * 1.75 / 50e9);
}

// Rank placement, tp innermost then cp, dp, pp: with 8 GPUs per node a tp=8 group stays in the node,
// a dp or pp group of 64 GPUs crosses nodes; putting dp innermost moves dp inside the node instead.
TEST(Comm, GroupsThatSpanNodesPayTheNetwork) {
  Plan p = gpt3(8, 2);
  p.parallel.dp = 4;
  p.cluster.gpus = 64;
  EXPECT_FALSE(group_link(p, Axis::tp).inter_node);
  EXPECT_TRUE(group_link(p, Axis::dp_cp).inter_node);
  EXPECT_TRUE(group_link(p, Axis::pp).inter_node);
  EXPECT_DOUBLE_EQ(group_link(p, Axis::pp).bytes_per_s, 25e9);  // one rank per node: one NIC
  p.parallel.tp = 2;
  p.parallel.dp = 16;
  p.cluster.mesh_order = {Axis::dp, Axis::tp, Axis::cp, Axis::pp};  // dp stride 1: ranks 0..15
  EXPECT_TRUE(group_link(p, Axis::dp_cp).inter_node);  // 16 ranks > 8 per node
  // 8 of its ranks in each node: NCCL crosses through all 8 NICs at once, 8 x 25 GB/s at the InfiniBand
  // efficiency 0.9 (180 GB/s) — below NVLink's 300 GB/s x 0.67 = 201 GB/s, so the NICs bound it.
  EXPECT_DOUBLE_EQ(group_link(p, Axis::dp_cp).bytes_per_s, 8 * 25e9);
  EXPECT_DOUBLE_EQ(group_link(p, Axis::dp_cp).efficiency, 0.9);
  p.parallel.dp = 4;
  p.parallel.pp = 8;
  EXPECT_FALSE(group_link(p, Axis::dp_cp).inter_node);  // ranks 0..3
  EXPECT_FALSE(group_link(p, Axis::tp).inter_node);  // stride 4: ranks 0 and 4
}

// Point-to-point traffic across nodes is not a ring: each rank's bytes for other nodes leave through its
// own NIC (comm.cpp). The dp group of 16 over 2 nodes of A100 (8 ranks a node, 25 GB/s NIC each at 0.9,
// 20 us per collective across nodes) by hand: a 1 GB all-to-all sends (16 - 8) / 16 of it off the node,
// 0.5 GB / 22.5 GB/s = 22.2 ms, where the ring's 8 NICs would have carried 1 GB x 15/16 in 5.2 ms; a
// send/recv of 1 GB takes one NIC, 44.4 ms. The ring collectives keep the node's 8 NICs: an all-gather of
// 1 GB x 15/16 / (8 x 22.5 GB/s) = 5.21 ms. Inside a node nothing changes.
TEST(Comm, AllToAllAndSendRecvAcrossNodesTakeOneNicPerRank) {
  Plan p = gpt3(2, 1);
  p.parallel.dp = 16;
  p.cluster.gpus = 32;
  p.cluster.mesh_order = {Axis::dp, Axis::tp, Axis::cp, Axis::pp};
  const Link l = group_link(p, Axis::dp_cp);
  ASSERT_TRUE(l.inter_node);
  EXPECT_EQ(l.node_ranks, 8);
  EXPECT_DOUBLE_EQ(l.nic_bytes_per_s, 25e9);
  const double lat = 20e-6, nic = 25e9 * 0.9;
  EXPECT_NEAR(collective_time(CommKind::all_to_all, 1e9, 16, l), lat + 0.5e9 / nic, 1e-12);
  EXPECT_NEAR(collective_time(CommKind::send_recv, 1e9, 2, l), lat + 1e9 / nic, 1e-12);
  EXPECT_NEAR(collective_time(CommKind::all_gather, 1e9, 16, l), lat + 1e9 * 15 / 16 / (8 * nic), 1e-12);
  p.parallel.dp = 8;
  p.cluster.gpus = 16;
  const Link in_node = group_link(p, Axis::dp_cp);
  ASSERT_FALSE(in_node.inter_node);
  EXPECT_DOUBLE_EQ(collective_time(CommKind::all_to_all, 1e9, 8, in_node),
                   in_node.latency_s + 1e9 * 7 / 8 / (in_node.bytes_per_s * in_node.efficiency));
}

// CPU workers outnumbering their cores: each collective step waits peer_wait_s x (1 - cores / workers)
// for a peer off its core. 4 workers on 2 cores, 2 ms: 1 ms per step, so a 4-rank all-reduce's 6 ring
// steps add 6 ms to its latency; 2 workers on 2 cores, a GPU, or host_cores unknown: nothing.
TEST(Comm, CpuWorkersOutnumberingCoresWaitForPeersEachStep) {
  GpuSpec cpu = hardware_preset("cpu");
  Efficiency e = cpu.efficiency;
  e.host_cores = 2;
  e.peer_wait_s = 2e-3;
  EXPECT_DOUBLE_EQ(peer_wait_per_step(cpu, e, 4), 1e-3);
  EXPECT_DOUBLE_EQ(peer_wait_per_step(cpu, e, 2), 0);
  EXPECT_DOUBLE_EQ(peer_wait_per_step(hardware_preset("a100-80gb"), e, 4), 0);
  Efficiency unknown = e;
  unknown.host_cores = 0;
  EXPECT_DOUBLE_EQ(peer_wait_per_step(cpu, unknown, 4), 0);

  Plan p = plan_from_json(nlohmann::json::parse(
      R"({"model": "tiny-llama", "parallel": {"dp": 4}, "cluster": {"gpu": "cpu", "gpus": 4}})"));
  Calibration c;
  c.params.push_back({"host_cores", 2, false, ParamSource::fitted, ""});
  c.params.push_back({"peer_wait_s", 2e-3, false, ParamSource::fitted, ""});
  p.cluster.calibration = c;
  const Link dp = group_link(p, Axis::dp_cp);
  EXPECT_DOUBLE_EQ(dp.hop_latency_s, cpu.efficiency.intra_node_hop_s + 1e-3);
  EXPECT_DOUBLE_EQ(collective_time(CommKind::all_reduce, 4, 4, dp) - collective_time(CommKind::all_reduce, 4, 4,
                       Link{dp.bytes_per_s, dp.efficiency, dp.latency_s, cpu.efficiency.intra_node_hop_s, false}),
                   6e-3);
}

// CPU workers move a collective's bytes on their own cores: 4 workers on 2 cores each get half of the
// link's bandwidth, 4 on 3 cores three quarters, 4 on 1.6 cores 0.4, so a 4 MiB all-reduce's transfer
// takes twice or 4/3 as long; 2 workers on 2 (or 1.6) cores, a GPU, or host_cores unknown keep it all.
TEST(Comm, CpuWorkersOutnumberingCoresShareTheLinkBandwidth) {
  GpuSpec cpu = hardware_preset("cpu");
  Efficiency e = cpu.efficiency;
  e.host_cores = 2;
  EXPECT_DOUBLE_EQ(cpu_link_share(cpu, e, 4), 0.5);
  EXPECT_DOUBLE_EQ(cpu_link_share(cpu, e, 2), 1);
  EXPECT_DOUBLE_EQ(cpu_link_share(hardware_preset("a100-80gb"), e, 4), 1);
  e.host_cores = 3;
  EXPECT_DOUBLE_EQ(cpu_link_share(cpu, e, 4), 0.75);
  // A fitted 1.6 cores (two cores, partly taken by other work): 2 workers still have a core each for
  // their transfers; 4 share the 1.6 (docs/calibration.md, "Transfers and the cores").
  e.host_cores = 1.6;
  EXPECT_DOUBLE_EQ(cpu_link_share(cpu, e, 2), 1);
  EXPECT_DOUBLE_EQ(cpu_link_share(cpu, e, 4), 0.4);
  e.host_cores = 0;
  EXPECT_DOUBLE_EQ(cpu_link_share(cpu, e, 4), 1);

  Plan p = plan_from_json(nlohmann::json::parse(
      R"({"model": "tiny-llama", "parallel": {"dp": 4}, "cluster": {"gpu": "cpu", "gpus": 4}})"));
  const double bytes = 4 << 20;
  const double alone = collective_time(CommKind::all_reduce, bytes, 4, group_link(p, Axis::dp_cp));
  Calibration c;
  c.params.push_back({"host_cores", 2, false, ParamSource::fitted, ""});
  p.cluster.calibration = c;
  const Link dp = group_link(p, Axis::dp_cp);
  EXPECT_DOUBLE_EQ(dp.bytes_per_s, cpu.intra_node_bytes_per_s / 2);
  const double transfer = bytes * 2 * 3 / 4 / (cpu.intra_node_bytes_per_s * dp.efficiency);
  EXPECT_NEAR(collective_time(CommKind::all_reduce, bytes, 4, dp) - alone, transfer, 1e-12);
}

// Bubbles for uniform stages with F = 1, B = 2 (of which W = 0.5 weight gradients), p = 4, m = 8:
// GPipe and 1F1B (m + p - 1)(F + B); interleaved v = 2: m(F + B) + (p - 1)(F + B)/v;
// ZB-H1: (p - 1)(F + B_input - W) with B_input = 1.5 (Qi et al. 2023 §3.1; DeepSeek-V3's (PP-1)(F + B - 2W)
// counts B as the whole backward, B_input + W); ZBV: per chunk f = 0.5, b = 0.75, w = 0.25, the longest
// chain is 2(p - 1)(b - w) = (p - 1)(B_input - W) (see pipeline_time; the simulator checks both).
TEST(Pipeline, BubblesPerSchedule) {
  std::vector<StageTime> stages(4);
  for (auto& s : stages) {
    s.fwd = 1;
    s.bwd = 2;
    s.bwd_weight = 0.5;
  }
  EXPECT_DOUBLE_EQ(pipeline_time(PipelineSchedule::one_f_one_b, 1, 8, stages).total, (8 + 3) * 3.0);
  EXPECT_DOUBLE_EQ(pipeline_time(PipelineSchedule::gpipe, 1, 8, stages).bubble, 3 * 3.0);
  EXPECT_DOUBLE_EQ(pipeline_time(PipelineSchedule::interleaved, 2, 8, stages).bubble, 3 * 3.0 / 2);
  EXPECT_DOUBLE_EQ(pipeline_time(PipelineSchedule::zb_h1, 1, 8, stages).bubble, 3 * (1 + 1.5 - 0.5));
  EXPECT_DOUBLE_EQ(pipeline_time(PipelineSchedule::zbv, 2, 8, stages).bubble, 3 * (1.5 - 0.5));
  // F = B = W: ZB-H1 leaves a third of 1F1B's 3(p - 1)F (zero-bubble README), ZBV the V's fill (p - 1)F/2.
  for (auto& s : stages) {
    s.bwd = 2;
    s.bwd_weight = 1;
  }
  EXPECT_DOUBLE_EQ(pipeline_time(PipelineSchedule::zb_h1, 1, 8, stages).bubble, 3 * 1.0);
  EXPECT_DOUBLE_EQ(pipeline_time(PipelineSchedule::zbv, 2, 8, stages).bubble, 3 * 0.5);
  // A slower stage sets the pace: (m - 1) x slowest + sum of all stages.
  stages[2].fwd = 2;
  EXPECT_DOUBLE_EQ(pipeline_time(PipelineSchedule::one_f_one_b, 1, 8, stages).total, 7 * 4.0 + (3 + 3 + 4 + 3));
}

// On the ideal device a layer's forward is its GEMM FLOPs / peak + attention FLOPs / peak + its
// memory-bound traffic / bandwidth. GPT-style layer (GeLU, LayerNorm, learned positions), no dropout,
// T = 1024 tokens, h = 1024, f = 4096, flash attention (causal: half of 4Tsh executed).
TEST(Time, LayerForwardFromFirstPrinciples) {
  Plan p;
  p.model.layers = 1;
  p.model.hidden = 1024;
  p.model.heads = 8;
  p.model.kv_heads = 8;
  p.model.head_dim = 128;
  p.model.ffn_hidden = 4096;
  p.model.vocab = 1000;
  p.model.activation = Activation::gelu;
  p.model.norm = Norm::layernorm;
  p.model.position_embedding = PositionEmbedding::learned;
  p.model.max_seq_len = 1024;
  p.training.seq_len = 1024;
  p.training.global_batch = 1;
  p.cluster.gpu = ideal_gpu();
  const double T = 1024, h = 1024, f = 4096, s = 1024, d = 2;
  const double gemm = 2 * T * h * 3 * h + 2 * T * h * h + 2 * T * h * f + 2 * T * f * h;
  const double attention = (2 * T * s * h + 2 * T * s * h) / 2;
  const double traffic = 2 * (2 * d * T * h) /* norms */ + 2 * (3 * d * T * h) /* residual adds */ + d * T * 2 * f /* gelu */;
  const Workload w = build_workload(p, framework_profile(Framework::megatron), shape_of(p));
  const WorkloadTimes t = time_workload(p, w, framework_profile(Framework::megatron));
  EXPECT_NEAR(t.dense_layer.fwd, gemm / 100e12 + attention / 100e12 + traffic / 1e12, 1e-15);
  // backward: GEMMs twice (input and weight gradients), flash attention 2.5x, memory-bound ops 2x
  EXPECT_NEAR(t.dense_layer.bwd_input + t.dense_layer.bwd_weight,
              2 * gemm / 100e12 + 2.5 * attention / 100e12 + 2 * traffic / 1e12, 1e-15);
  EXPECT_NEAR(t.dense_layer.bwd_weight, gemm / 100e12, 1e-15);
}

// The GEMM efficiency curve on an H100 (bf16 peak 989.4 TFLOP/s, MAMF e_gemm 0.8006, 132 SMs, HBM
// 3.35 TB/s x 0.9, 2 us per kernel, no tile fill; no calibration), by hand with the tile/wave model of
// op_time.cpp: for each tile (128x128 at the full rate, 128x64 at 42.67/64, 64x64 at 32/64 of it),
// waves = ceil(tiles / 132), time = waves x 2 tm tn k / (peak / 132 x e x rate); the fastest tile,
// at least the memory time 2(mk + kn + mn) / (HBM 0.9), plus 2 us.
TEST(Time, GemmEfficiencyDependsOnSize) {
  Plan p;
  p.cluster.gpu = hardware_preset("h100-sxm-80gb");
  p.cluster.calibration = builtin_calibration("none");
  // 8192^3: 64 x 64 = 4,096 tiles of 128x128 in 32 waves (31.03 rounded up), each 2 x 128^2 x 8192 FLOPs
  // at 989.4e12 / 132 x 0.8006 = 6.0008e12 FLOP/s per SM: 44.73 us; 32 waves 1.4314 ms + 2 us: 0.7753
  // (wave quantization costs 3%). 128x64: 8,192 tiles in 63 waves at 2/3 of the rate: slower.
  const double per_sm = 989.4e12 / 132 * 0.8006;
  const double t8192 = 32 * 2 * 128.0 * 128 * 8192 / per_sm + 2e-6;
  EXPECT_NEAR(gemm_efficiency(p, 8192, 8192, 8192), 2 * 8192.0 * 8192 * 8192 / (989.4e12 * t8192), 1e-12);
  EXPECT_NEAR(gemm_efficiency(p, 8192, 8192, 8192), 0.7753, 1e-4);
  // 1024^3: 64 tiles of 128x128 in one wave, 2 x 128^2 x 1024 / per_sm = 5.59 us (half the SMs idle);
  // 128 tiles of 128x64 in one wave at 2/3 of the rate, 2 x 128 x 64 x 1024 / (per_sm x 2/3) = 4.19 us;
  // 256 tiles of 64x64 in 2 waves at half the rate, 5.59 us. 128x64 wins: 4.19 + 2 us, 0.3504 of peak.
  const double t1024 = 2 * 128.0 * 64 * 1024 / (per_sm * 42.6667 / 64) + 2e-6;
  EXPECT_NEAR(gemm_efficiency(p, 1024, 1024, 1024), 2 * 1024.0 * 1024 * 1024 / (989.4e12 * t1024), 1e-12);
  EXPECT_NEAR(gemm_efficiency(p, 1024, 1024, 1024), 0.3504, 1e-4);
  // 512^3: one wave whatever the tile: 128x128 2.80 us, 128x64 2.10 us, 64x64 (64 tiles at half the rate)
  // 2 x 64^2 x 512 / (per_sm / 2) = 1.40 us, above the memory time 2 x 3 x 512^2 / 3.015e12 = 0.52 us; + 2 us.
  const double t512 = 2 * 64.0 * 64 * 512 / (per_sm * 32 / 64) + 2e-6;
  EXPECT_NEAR(gemm_efficiency(p, 512, 512, 512), 2 * 512.0 * 512 * 512 / (989.4e12 * t512), 1e-12);
  // a skinny GEMM (n = 128, as a small LoRA or a TP-split head dim): the fastest tile, 128x64 (128 tiles,
  // one wave, 33.6 us), is below the memory time 2 x (8192^2 + 2 x 8192 x 128) / 3.015e12 = 45.9 us:
  // memory-bound, 45.9 + 2 us.
  const double bytes = 2 * (8192.0 * 8192 + 8192 * 128 + 8192 * 128);
  EXPECT_NEAR(gemm_efficiency(p, 8192, 128, 8192), 2 * 8192.0 * 128 * 8192 / (989.4e12 * (bytes / (3.35e12 * 0.9) + 2e-6)),
              1e-12);
}

// The launch-bound regime: with the device infinitely fast next to a host that takes 1 ms per kernel,
// a layer lasts as long as the host takes to issue its kernels. Megatron-Core's kernels for one LLaMA
// layer (framework.cpp megatron_core_launches, flash attention, no dropout), counted by hand from the
// workload's ops: forward 2 (layer glue) + 2 norms + 4 linears (qkv, o, gate|up, down) + RoPE + flash
// + SwiGLU + 2 residual adds = 13; backward 2 + 2 x 2 + 4 x 2 + 1 + 2 + 1 + 2 = 20, each at half the
// forward's host cost (autograd's C++ engine): 10 ms.
TEST(Time, LaunchBoundLayersTakeTheHostsTime) {
  Plan p;
  p.model = model_preset("tiny-llama");
  p.training.seq_len = 32;
  p.training.micro_batch = 1;
  p.training.global_batch = 1;
  p.training.dropout = 0;
  p.training.flash_attention = true;
  p.cluster.gpu = ideal_gpu();
  p.cluster.gpu.peak_bf16_flops = 1e30;
  p.cluster.gpu.hbm_bytes_per_s = 1e30;
  p.cluster.gpu.efficiency.host_overhead_s = 1e-3;
  const FrameworkProfile& fw = framework_profile(Framework::megatron);
  const WorkloadTimes t = time_workload(p, build_workload(p, fw, shape_of(p)), fw);
  const BlockTime& l = t.dense_layer;
  EXPECT_NEAR(l.host_fwd + l.fwd + l.exposed_fwd, 13e-3, 1e-12);
  EXPECT_NEAR(l.host_bwd[0] + l.bwd_input + l.bwd_weight + l.exposed_bwd, 10e-3, 1e-12);
  // On a CPU worker one thread issues and runs each kernel: the host's time adds to the device's.
  p.cluster.gpu.is_cpu = true;
  const WorkloadTimes c = time_workload(p, build_workload(p, fw, shape_of(p)), fw);
  EXPECT_NEAR(c.dense_layer.host_fwd, 13e-3, 1e-12);
}

// Overlap rules on the ideal device with tp = 2 inside a node: TP collectives are exposed unless
// tp_comm_overlap, then only what exceeds the GEMMs; full recompute re-runs the forward with its comm.
TEST(Time, TensorParallelExposure) {
  Plan p = gpt3(2, 1);
  p.cluster.gpu = ideal_gpu();
  p.cluster.gpu.peak_bf16_flops = 1e12;  // slow compute: the GEMMs hide everything
  const Workload w = build_workload(p, framework_profile(Framework::megatron), shape_of(p));
  WorkloadTimes t = time_workload(p, w, framework_profile(Framework::megatron));
  EXPECT_GT(t.dense_layer.comm_fwd, 0);
  EXPECT_DOUBLE_EQ(t.dense_layer.exposed_fwd, t.dense_layer.comm_fwd);
  // 2 all-reduces of 2Th bytes each forward, over 2 ranks: factor 2(2-1)/2 = 1, 100 GB/s NVLink
  const double T = 2048, h = 12288;
  EXPECT_NEAR(t.dense_layer.comm_fwd, 2 * (2 * T * h) / 100e9, 1e-12);
  p.parallel.tp_comm_overlap = true;
  t = time_workload(p, w, framework_profile(Framework::megatron));
  EXPECT_DOUBLE_EQ(t.dense_layer.exposed_fwd, 0);
  EXPECT_DOUBLE_EQ(t.dense_layer.recompute[static_cast<int>(Recompute::full)], t.dense_layer.fwd);
}

// Data-parallel gradient reduction: hidden behind the backward with dp_overlap, exposed without.
TEST(Time, DataParallelOverlap) {
  Plan p = gpt3(8, 1);
  p.model = model_preset("gpt-1.7b");
  p.parallel.tp = 1;
  p.parallel.dp = 8;
  p.cluster.gpus = 8;
  p.training.global_batch = 8;
  p.training.grad_dtype = GradDtype::bf16;
  p.parallel.dp_overlap = false;
  const StepEstimate exposed = estimate_time(p);
  // All-reduce of 2 B x all parameters over 8 ranks inside a node (300 GB/s, no calibration: eff 0.67),
  // in Megatron's buckets of max(40e6, 1e6 x 8) parameters, each paying the 10 us latency. Buckets take
  // the parameters in backward order (Megatron-Core param_and_grad_buffer.py), so the input embedding —
  // word and position, (51,200 + 2,048) x 2,304 = 122,683,392 parameters, more than a bucket — comes
  // last, in a bucket of its own: ceil(1,529,547,264 / 40e6) = 39 buckets of the rest, then it.
  const double params = 1'652'230'656, emb = 122'683'392;
  const double rest = 39 * 10e-6 + 2 * (params - emb) * 1.75 / (300e9 * 0.67);
  const double last = 10e-6 + 2 * emb * 1.75 / (300e9 * 0.67);
  const double ar = rest + last;
  EXPECT_DOUBLE_EQ(exposed.per_stage[0].dp_buckets, 40);
  EXPECT_NEAR(exposed.dp_exposed_s, ar, 1e-9);
  p.parallel.dp_overlap = true;
  const StepEstimate hidden = estimate_time(p);
  // The 39 buckets ready at even steps of the backward T end max(R/39, R - T 38/39) after it; the
  // embedding's, ready at its end, is reduced after them.
  const double T = hidden.per_stage[0].bwd;
  EXPECT_NEAR(hidden.dp_exposed_s, last + std::max(rest / 39, rest - T * 38 / 39), 1e-9);
  EXPECT_GT(hidden.dp_exposed_s, 0);  // the last bucket is never hidden
  EXPECT_NEAR(exposed.step_s - hidden.step_s, exposed.dp_exposed_s - hidden.dp_exposed_s, 1e-9);
}

// Each part of the step derived by hand for the two-layer GPT of tiny_gpt_by_hand.hpp (dp 2 x pp 2, 1F1B,
// m = 8 / (1 x 2) = 4 micro-batches), not as the remainder of the others:
// stage times per micro-batch C_s = F_s + B_s, each direction carrying one transfer: F0 = f0 + p2p, ...;
// 1F1B runs m C_max + (sum C - C_max) (Narayanan 2021 §2.2), the bubble being sum C - C_max = C_0 here;
// compute = m (f + b) of the slower stage (1, the head's); exposed communication = its m x 2 transfers plus
// the gradient all-reduce that runs past the backward (no overlap: stage 0's, which has no stage left to
// hide behind; stage 1's ends inside stage 0's backward); optimizer = the larger stage's step.
TEST(Time, StepPartsFromFirstPrinciples) {
  const Plan p = plan_from_json(nlohmann::json::parse(tinygpt::plan_json(8)));
  const tinygpt::Costs c = tinygpt::costs();
  const double m = 4;
  const double C0 = c.f0 + c.b0 + 2 * c.p2p, C1 = c.f1 + c.b1 + 2 * c.p2p;
  ASSERT_GT(C1, C0);  // the head makes stage 1 the slower one
  const double dp_exposed = std::max(c.reduce0, c.reduce1 - (c.b0 + c.p2p));
  const StepEstimate e = estimate_time(p);
  EXPECT_EQ(e.critical_stage, 1);
  EXPECT_NEAR(e.compute_s, m * (c.f1 + c.b1), 1e-12);
  EXPECT_NEAR(e.bubble_s, C0, 1e-12);
  EXPECT_NEAR(e.optimizer_s, c.opt0, 1e-12);
  EXPECT_NEAR(e.exposed_comm_s, m * 2 * c.p2p + dp_exposed, 1e-12);
  EXPECT_NEAR(e.dp_exposed_s, c.reduce0, 1e-12);
  EXPECT_NEAR(e.pp_p2p_s, m * 2 * c.p2p, 1e-12);
  const double step = m * C1 + C0 + c.reduce0 + c.opt0;
  EXPECT_NEAR(e.step_s, step, 1e-12);
  // 8 sequences of 1024 tokens per step; model FLOPs per token 3 x (L (24h^2 + 4sh) + 2hV) for this GeLU GPT
  // (Korthikanti 2022 App. A with f = 4h), over 4 GPUs of 100 TFLOP/s.
  const double L = 2, h = 1024, s = 1024, V = 1024, tokens = 8 * 1024;
  EXPECT_NEAR(e.tokens_per_s, tokens / step, 1e-6);
  EXPECT_NEAR(e.mfu, tokens * 3 * (L * (24 * h * h + 4 * s * h) + 2 * h * V) / (4 * 1e14 * step), 1e-12);
}

// The accuracy targets of issue 3 on the published runs (data/validation, docs/validation.md):
// Korthikanti et al. 2022 Table 5 mean |error| <= 3.65% and max <= 8.87% (what Calculon reaches on the
// same rows), Narayanan et al. 2021 Table 1 mean <= 5%. These are fit errors: the "published" profile's
// GEMM factor was fitted on these 18 rows (docs/validation.md gives the leave-one-source-out errors).
TEST(Validation, PublishedRunsWithinTargets) {
  const auto rows = validate_runs(published_runs());
  ASSERT_EQ(rows.size(), 18u);
  for (const SourceSummary& s : summarize(rows)) {
    if (s.source == "korthikanti22-t5") {
      EXPECT_EQ(s.rows, 8);
      EXPECT_LE(s.mean_abs_error, 0.0365);
      EXPECT_LE(s.max_abs_error, 0.0887);
    } else {
      EXPECT_EQ(s.source, "narayanan21-t1");
      EXPECT_EQ(s.rows, 10);
      EXPECT_LE(s.mean_abs_error, 0.05);
    }
  }
}

// The largest block there is — a DeepSeek-V3 MoE layer under TP + SP, CP and EP — keeps every
// collective. By hand: each TP region under sequence parallelism all-gathers its input forward,
// reduce-scatters its gradient and re-gathers the input backward (3), and reduce-scatters its output
// forward and all-gathers that gradient backward (2); attention and the MLP are two regions (10).
// Ring CP sends K and V forward and their gradients backward (2); the experts' dispatch and combine
// all-to-all run both ways (4), and with the experts tensor-parallel the dispatched rows are all-gathered
// over tp and reduce-scattered back, both ways (4 more on tp). 20 in all: more than the 12 the op lists
// once had room for, whose overflow wrote over the block's sums (caught by ASan as a failed capacity check).
TEST(Workload, LargestMoeLayerKeepsEveryCollective) {
  Plan p;
  p.model = model_preset("deepseek-v3");
  p.training.seq_len = 4096;
  p.parallel.tp = 2;
  p.parallel.cp = 2;
  p.parallel.ep = 2;
  p.parallel.sequence_parallel = true;
  p.cluster.gpu = hardware_preset("h100-sxm-80gb");
  const Workload w = build_workload(p, framework_profile(Framework::megatron), shape_of(p));
  int tp = 0, cp = 0, ep = 0;
  for (const Comm& c : w.moe_layer.comms) {
    tp += c.axis == Axis::tp;
    cp += c.axis == Axis::cp;
    ep += c.axis == Axis::ep;
  }
  EXPECT_EQ(w.moe_layer.comms.size(), 20u);
  EXPECT_EQ(tp, 14);
  EXPECT_EQ(cp, 2);
  EXPECT_EQ(ep, 4);
  // The last one is the MLP output's gradient all-gather: the full sequence-parallel buffer of this
  // CP rank, s/cp x b x h x 2 bytes = 2048 x 7168 x 2.
  const Comm& last = w.moe_layer.comms[w.moe_layer.comms.size() - 1];
  EXPECT_EQ(last.kind, CommKind::all_gather);
  EXPECT_EQ(last.pass, Pass::backward);
  EXPECT_DOUBLE_EQ(last.bytes, 2048.0 * 7168 * 2);
}

// CPU workers may train in bf16; the cpu preset gives no bf16 peak (data/hardware/cpu.json: 0), so bf16
// GEMMs take the fp32 ceiling (oneDNN/OpenBLAS widen them there) instead of a 0 that made the step NaN.
TEST(Time, BfloatOnACpuWithoutABfloatPeakRunsAtTheFp32Rate) {
  const GpuSpec cpu = hardware_preset("cpu");
  ASSERT_EQ(cpu.peak_bf16_flops, 0);
  EXPECT_EQ(cpu.peak_flops(Precision::bf16), cpu.peak_fp32_flops);
  Plan p;
  p.model = model_preset("tiny-llama");
  p.training.seq_len = 32;
  p.training.micro_batch = 2;
  p.training.global_batch = 2;
  p.training.precision = Precision::bf16;
  p.cluster.gpu = cpu;
  const double step = estimate_time(p).step_s;
  EXPECT_TRUE(std::isfinite(step));
  EXPECT_GT(step, 0);
}

// Transformer Engine's FP8 recipes cast the Linear layers' GEMMs to FP8 and leave DotProductAttention in
// BF16 (Megatron-Core --fp8-dot-product-attention is off by default): a layer's fused attention costs
// the same under fp8 as under bf16 (989.4 TFLOP/s on an H100 either way), while its GEMMs run at the FP8
// peak (1,978.9) and so take less time.
TEST(Time, Fp8TrainingRunsTheAttentionInBf16) {
  Plan p = plan_from_json(nlohmann::json::parse(
      R"({"model": "llama3-8b", "training": {"seq_len": 8192, "micro_batch": 1, "global_batch": 8, "precision": "bf16",
          "flash_attention": true}, "cluster": {"gpu": "h100-sxm-80gb", "gpus": 8, "calibration": "none"},
          "parallel": {"dp": 8}})"));
  const FrameworkProfile fw = framework_profile(Framework::megatron);
  const BlockTime bf16 = time_workload(p, build_workload(p, fw, shape_of(p)), fw).dense_layer;
  p.training.precision = Precision::fp8;
  const BlockTime fp8 = time_workload(p, build_workload(p, fw, shape_of(p)), fw).dense_layer;
  EXPECT_GT(bf16.attn_fwd, 0);
  EXPECT_DOUBLE_EQ(fp8.attn_fwd, bf16.attn_fwd);
  EXPECT_LT(fp8.gemm_fwd, bf16.gemm_fwd);
}

// CPU workers with no core to spare do not overlap their data-parallel communication: with host_cores
// calibrated below workers + 1 the step is the plan's with parallel.dp_overlap = false; with a core to
// spare (or host_cores unknown, or on GPUs) it is the plan's as written. 2 workers, ZeRO-0 (a gradient
// all-reduce in buckets the backward can hide: a 1.7B model) and ZeRO-3 (gathers behind compute).
TEST(Time, CpuWorkersWithoutASpareCoreDoNotOverlapDataParallelComm) {
  for (int zero : {0, 3}) {
    Plan p = plan_from_json(nlohmann::json::parse(
        R"({"model": "gpt-1.7b", "parallel": {"dp": 2, "zero": )" + std::to_string(zero) +
        R"(}, "training": {"seq_len": 1024}, "cluster": {"gpu": "cpu", "gpus": 2}})"));
    ASSERT_TRUE(p.parallel.dp_overlap);
    Plan serial = p;
    serial.parallel.dp_overlap = false;
    auto with_cores = [](Plan q, double cores) {
      Calibration c;
      c.params.push_back({"host_cores", cores, false, ParamSource::fitted, ""});
      q.cluster.calibration = c;
      return q;
    };
    const double overlapped = estimate_time(with_cores(p, 3)).step_s;
    EXPECT_FALSE(dp_overlaps(with_cores(p, 1.7)));
    EXPECT_TRUE(dp_overlaps(with_cores(p, 3)));
    EXPECT_TRUE(dp_overlaps(p));  // host_cores unknown: a core per worker, as the plan says
    EXPECT_DOUBLE_EQ(estimate_time(with_cores(p, 1.7)).step_s, estimate_time(with_cores(serial, 1.7)).step_s) << zero;
    EXPECT_DOUBLE_EQ(overlapped, estimate_time(with_cores(p, 3)).step_s);
    EXPECT_GT(estimate_time(with_cores(serial, 3)).step_s, overlapped) << zero << ": overlap hides some of it";
  }
  Plan gpu = plan_from_json(nlohmann::json::parse(
      R"({"model": "tiny-llama", "parallel": {"dp": 2}, "cluster": {"gpu": "a100-80gb", "gpus": 2}})"));
  Calibration c;
  c.params.push_back({"host_cores", 1, false, ParamSource::fitted, ""});
  gpu.cluster.calibration = c;
  EXPECT_TRUE(dp_overlaps(gpu));
}

// A CPU plan with no core to spare (1.5 cores shared) and the given latency per collective.
static Plan with_collective_latency(Plan p, double latency) {
  Calibration c;
  c.params.push_back({"host_cores", 1.5, false, ParamSource::fitted, ""});
  c.params.push_back({"intra_node_latency_s", latency, false, ParamSource::fitted, ""});
  p.cluster.calibration = c;
  return p;
}

// paraplan's executor reduces data-parallel gradients per unit, not in 25 MiB buckets
// (executor/src/zero_engine.cpp; framework.hpp dp_per_unit): tiny-llama has 4 units with trainable
// parameters (embedding, 2 layers, head), so each collective latency is paid 4 times per kind — ZeRO-0:
// 4 all-reduces; ZeRO-1: 4 all-reduces + 4 all-gathers of the updated parameters; ZeRO-2: 4
// reduce-scatters in each of the 2 micro-batches' backward + 4 all-gathers — plus the loss all-reduced
// once a step. With no core to spare nothing overlaps, so raising the link latency by 1 ms raises the
// exposed DP time by exactly that many milliseconds (collective times are affine in the latency).
TEST(Time, TheExecutorReducesDataParallelGradientsUnitByUnit) {
  const std::pair<int, int> zero_and_collectives[] = {{0, 4 + 1}, {1, 4 + 4 + 1}, {2, 2 * 4 + 4 + 1}};
  for (const auto& [zero, collectives] : zero_and_collectives) {
    Plan p = plan_from_json(nlohmann::json::parse(
        R"({"model": "tiny-llama", "training": {"micro_batch": 2, "global_batch": 8}, "parallel": {"dp": 2, "zero": )" +
        std::to_string(zero) + R"(}, "cluster": {"gpu": "cpu", "gpus": 2}})"));
    ASSERT_EQ(p.micro_batches(), 2);
    auto exposed = [&](double latency) { return estimate_time(with_collective_latency(p, latency)).dp_exposed_s; };
    EXPECT_NEAR(exposed(1e-3) - exposed(0), collectives * 1e-3, 1e-12) << "ZeRO-" << zero;
  }
  // ZeRO-3 with LoRA: each micro-batch gathers every unit in the forward and again in the backward, a
  // unit's adapters (trainable) and base (frozen) apart — embedding 1, each of the 2 layers 2, head 1:
  // 6 all-gathers a pass, 12 a micro-batch — and reduce-scatters the 2 layers' adapter gradients; with
  // the loss, 2 x (12 + 2) + 1 = 29 latencies a step.
  {
    Plan p = plan_from_json(nlohmann::json::parse(
        R"({"model": "tiny-llama", "training": {"micro_batch": 2, "global_batch": 8, "lora": {"rank": 8}},
            "parallel": {"dp": 2, "zero": 3}, "cluster": {"gpu": "cpu", "gpus": 2}})"));
    auto step = [&](double latency) { return estimate_time(with_collective_latency(p, latency)).step_s; };
    EXPECT_NEAR(step(1e-3) - step(0), 29e-3, 1e-12);
  }
  // Megatron's buckets are sized, not per unit: the same model there is one bucket.
  Plan m = plan_from_json(nlohmann::json::parse(
      R"({"model": "tiny-llama", "parallel": {"dp": 2}, "training": {"framework": "megatron"}, "cluster": {"gpu": "a100-80gb", "gpus": 2}})"));
  EXPECT_DOUBLE_EQ(estimate_time(m).per_stage.at(0).dp_buckets, 1);
}
