// Time of each block's kernels and collectives, one micro-batch on one rank. Sources:
// - compute: each op's device work by the roofline (ASTRA-sim Roofline.cc / llm-analysis; efficiencies in
//   data/hardware with sources), GEMMs by tiles in waves of SMs (gemm_math), plus a fixed cost per kernel
//   the framework launches for the op (framework.hpp LaunchProfile) and the host's time to issue them;
// - FlashAttention backward = 2.5x its forward FLOPs (5 matmuls against 2, Dao 2023 Alg. 2);
// - collectives: comm.cpp (nccl-tests bus bandwidth, two-level topology); TP exposed unless
//   tp_comm_overlap (Transformer Engine), CP ring behind the attention core (ring attention), EP
//   all-to-all under the paired micro-batch's compute with ep_comm_overlap.
#include "paraplan/op_time.hpp"

#include <algorithm>
#include <cmath>
#include <string_view>

#include "paraplan/bytes_per_param.hpp"
#include "paraplan/calibration.hpp"
#include "paraplan/comm.hpp"
#include "paraplan/pipeline.hpp"

namespace paraplan::planner {

namespace {

struct Hw {
  double peak, hbm, e_gemm, e_attn, e_mem, overhead, host, sms, k_fill;
  bool host_adds;  // a CPU worker: one thread issues and runs each kernel, so host and device times add
  double attn_peak;  // the fused attention kernel's peak: FP8 training runs it in BF16 (below)
};

// Under FP8 training Transformer Engine casts the GEMMs of its Linear layers to FP8; DotProductAttention
// stays in BF16 unless asked for FP8 (Megatron-Core --fp8-dot-product-attention, off by default; of the
// Megatron-Bridge 25.11 recipes only GB200 Qwen3 MoE sets it), so its FLOPs run at the BF16 peak.
double attention_peak(const GpuSpec& g, Precision p) {
  return p == Precision::fp8 ? g.peak_flops(Precision::bf16) : g.peak_flops(p);
}

// CPU workers sharing a machine's cores: with W workers computing at once on C < W cores each runs at
// C / W of its speed (the operating system shares the cores evenly), on compute, memory traffic and
// per-kernel costs alike. One worker always has a core (C < 1 would only rescale the peaks, which the
// efficiencies do). A pipeline stage waiting in the bubble sleeps in its receive and leaves its core to
// the others: of the (m v + p - 1) slots of a 1F1B or interleaved step a stage computes in m v, so on
// average W m v / (m v + p - 1) workers compute (zero-bubble schedules: a third of that bubble, Qi et
// al. 2024). The sweep's small pp=2 run (4 micro-batches) took 72.0 ms a step: 91.6 ms predicted with
// both workers always computing, 73.6 ms with this (the profile fitted on half A, docs/calibration.md).
double core_share(const Plan& plan, const Efficiency& e) {
  if (!plan.cluster.gpu.is_cpu || e.host_cores <= 0) return 1;
  const ParallelPlan& par = plan.parallel;
  double computing = plan.cluster.ranks_per_node();
  if (par.pp > 1) {
    const double slots = static_cast<double>(plan.micro_batches()) * par.virtual_stages;
    const bool zero_bubble = par.pp_schedule == PipelineSchedule::zb_h1 || par.pp_schedule == PipelineSchedule::zbv;
    const double bubble = (par.pp - 1) / (zero_bubble ? 3.0 : 1.0);
    computing *= slots / (slots + bubble);
  }
  return std::min(1.0, std::max(1.0, e.host_cores) / computing);
}

Hw hw_of(const Plan& plan, const Efficiency& e) {
  const GpuSpec& g = plan.cluster.gpu;
  const double share = core_share(plan, e);
  if (share == 1)  // the common case, kept free of arithmetic that could move a result by one bit
    return {g.peak_flops(plan.training.precision), g.hbm_bytes_per_s, e.gemm, e.attention, e.memory,
            e.kernel_overhead_s, e.host_overhead_s, static_cast<double>(g.sm_count), e.gemm_k_fill, g.is_cpu,
            attention_peak(g, plan.training.precision)};
  return {g.peak_flops(plan.training.precision) * share, g.hbm_bytes_per_s * share, e.gemm, e.attention, e.memory,
          e.kernel_overhead_s / share, e.host_overhead_s / share, static_cast<double>(g.sm_count), e.gemm_k_fill,
          g.is_cpu, attention_peak(g, plan.training.precision) * share};
}

// A GEMM's math time with tile and wave quantization (NVIDIA Deep Learning Performance Guide, "Matrix
// Multiplication Background": the output is cut into tiles, one per SM at a time, so a GEMM takes
// ceil(tiles / SMs) waves of one tile's time). Like cuBLAS's heuristics, the tile is the fastest of
// 128x128, 128x64 and 64x64; a smaller tile reuses each loaded element less, so its math rate is taken in
// proportion to its arithmetic intensity tm tn / (tm + tn) (64 : 42.7 : 32), capped by the 128x128 rate.
// A tile's time is its k-loop plus a fixed prologue/epilogue worth gemm_k_fill elements of k.
// Without an SM count: FLOPs at e_gemm.
double gemm_math(double m, double n, double k, double batch, const Hw& hw) {
  if (m <= 0 || n <= 0 || k <= 0) return 0;
  if (hw.sms <= 0) return 2 * m * n * k * batch / (hw.peak * hw.e_gemm);
  struct Tile { double tm, tn, rate; };
  static constexpr Tile kTiles[] = {{128, 128, 1.0}, {128, 64, 42.6667 / 64}, {64, 64, 32.0 / 64}};
  double best = 0;
  for (const Tile& t : kTiles) {
    const double tiles = batch * std::ceil(m / t.tm) * std::ceil(n / t.tn);
    const double waves = std::ceil(tiles / hw.sms);
    const double time = waves * 2 * t.tm * t.tn * (k + hw.k_fill) / (hw.peak / hw.sms * hw.e_gemm * t.rate);
    if (best == 0 || time < best) best = time;
  }
  return best;
}

// Device time of the work of one or more kernels (no fixed cost): the roofline.
double memory_work(double bytes, const Hw& hw) { return bytes > 0 ? bytes / (hw.hbm * hw.e_mem) : 0; }
double gemm_work(double flops, double bytes, const Hw& hw) {
  return flops > 0 ? std::max(flops / (hw.peak * hw.e_gemm), bytes / (hw.hbm * hw.e_mem)) : 0;
}
double memory_time(double bytes, const Hw& hw) { return bytes > 0 ? memory_work(bytes, hw) + hw.overhead : 0; }

struct Links {
  Link tp, cp, ep;
  int n_tp, n_cp, n_ep;
};

// The kernels one op launches under the framework (framework.hpp LaunchProfile).
Launches launches_of(const Op& op, const LaunchProfile& lp, bool flash) {
  switch (op.kind) {
    case OpKind::gemm:
    case OpKind::router: return lp.linear;
    case OpKind::attention:
      if (op.flops > 0) return flash ? lp.flash : lp.attention_core;
      return flash ? Launches{} : lp.softmax;  // flash: the softmax is inside the fused kernel
    case OpKind::norm: return lp.norm;
    case OpKind::embedding: return lp.embedding;
    case OpKind::loss: return lp.loss;
    case OpKind::elementwise: break;
  }
  const std::string_view name = op.name;
  if (op.io_bytes <= 0) return {};  // a dropout whose traffic the fused residual add counts
  if (name == "residual_add") return lp.residual;
  if (name == "rope") return lp.rope;
  if (name == "router_topk") return lp.moe_router;
  if (name == "moe_permute" || name == "moe_combine")  // op.batch permutation passes
    return {lp.moe_permute.fwd * op.batch, lp.moe_permute.bwd * op.batch};
  return lp.activation;  // gelu, swiglu, expert activations
}

// The share of a rank's micro-batch passes that EP A2A overlap pairs with another's: all but the
// forwards a schedule runs before its first backward (and as many backwards after its last forward).
// Megatron-Core schedules.py get_pp_num_microbatches: interleaved, (pp - rank - 1) x 2 + (v - 1) x pp
// warm-up passes, + 1 with overlap_moe_expert_parallel_comm; 1F1B pp - rank - 1; one at least (a pass
// cannot pair with its own micro-batch); averaged over the pipeline ranks, out of m x v passes.
double ep_overlap_paired_share(const Plan& plan) {
  const ParallelPlan& par = plan.parallel;
  const double passes = static_cast<double>(plan.micro_batches()) * par.virtual_stages;
  if (passes <= 0) return 0;
  double unpaired = 0;
  for (int r = 0; r < par.pp; ++r) {
    const double warmup = par.virtual_stages > 1 ? interleaved_warmup(par.pp, par.virtual_stages, r) + 1
                                                 : par.pp - r - 1.0;
    unpaired += std::min(passes, std::max(1.0, warmup));
  }
  return 1 - unpaired / par.pp / passes;
}

// One block, one micro-batch: each op's kernels cost their device work plus the fixed per-kernel cost,
// and the host's time to issue them. A pass of many layers takes, per layer, the longer of the device's
// and the host's time (the host runs ahead while the device is busy, and the device waits for launches
// when kernels are shorter than their issue time: PyTorch's asynchronous CUDA semantics; vTrain, Bang
// et al. 2024 §3, measures the CPU launch overhead that makes small layers slower than their kernels).
BlockTime time_block(const Plan& plan, const FrameworkProfile& fw, const Block& b, double d, const Hw& hw, const Links& l) {
  BlockTime t;
  const LaunchProfile& lp = fw.launches;
  const bool flash = plan.training.flash_attention;
  const double gb = grad_bytes_per_param(plan.training.precision, plan.training.grad_dtype);
  double attn_recompute = 0, attn_bwd = 0, attn_launches = 0;
  double launches_fwd = lp.per_layer.fwd * (b.kind == BlockKind::dense_layer || b.kind == BlockKind::moe_layer);
  double launches_bwd = lp.per_layer.bwd * (b.kind == BlockKind::dense_layer || b.kind == BlockKind::moe_layer);
  double attention_batch = 0;  // of the last core attention: decides the softmax kernel
  for (const Op& op : b.ops) {
    Launches k = launches_of(op, lp, flash);
    double traffic = 1;
    if (op.kind == OpKind::attention && op.flops > 0) attention_batch = op.batch;
    if (op.kind == OpKind::attention && op.flops <= 0 && !flash && lp.softmax_fused_batch_multiple > 0 &&
        std::fmod(attention_batch, lp.softmax_fused_batch_multiple) != 0) {
      k = lp.softmax_eager;
      traffic = lp.softmax_eager_traffic;
    }
    double f = 0, bi = 0, bw = 0;
    switch (op.kind) {
      case OpKind::gemm:
      case OpKind::router: {
        // A grouped GEMM (batch > 1: Transformer Engine GroupedLinear, one cuBLAS GEMM per local expert on
        // several streams) cuts each expert's GEMM into its own tiles; the waves are shared; every expert
        // reads its own weights.
        f = std::max(gemm_math(op.m, op.n, op.k, op.batch, hw),
                     memory_work(d * op.batch * (op.m * op.k + op.k * op.n + op.m * op.n), hw));
        k.fwd *= op.batch;
        k.bwd *= op.batch;
        bi = f;                          // activation gradient: same shape
        bw = op.weight_grad ? f : 0;     // weight gradient: same shape, trainable weights only
        // Frameworks without gradient-accumulation fusion add each weight gradient into the main
        // gradient buffer (read both, write one) after every micro-batch's backward.
        if (op.weight_grad && lp.grad_accumulation_passes > 0)
          bw += memory_work(lp.grad_accumulation_passes * gb * op.batch * op.k * op.n, hw);
        t.gemm_fwd += f + k.fwd * hw.overhead;
        t.gemm_bwd += bi + bw + k.bwd * hw.overhead;
        break;
      }
      case OpKind::attention: {
        if (op.flops > 0 && flash) {
          f = op.flops / (hw.attn_peak * hw.e_attn);
          bi = 2.5 * f;
        } else if (op.flops > 0) {
          // QK^T [s x d] . [d x s_kv] and AV [s x s_kv] . [s_kv x d], batched; the backward runs four of them.
          const double qk = gemm_math(op.m, op.n, op.k, op.batch, hw), av = gemm_math(op.m, op.k, op.n, op.batch, hw);
          f = op.m > 0 ? std::max(qk + av, memory_work(op.io_bytes, hw)) : gemm_work(op.flops, op.io_bytes, hw);
          bi = 2 * f;
        } else {
          f = memory_work(traffic * op.io_bytes, hw);
          bi = 2 * f;
        }
        t.attn_fwd += f + k.fwd * hw.overhead;
        attn_recompute += f + k.fwd * hw.overhead;
        attn_bwd += bi + k.bwd * hw.overhead;
        attn_launches += k.fwd;
        break;
      }
      default:  // memory-bound: the backward reads the incoming gradient and the saved input, writes one
        f = memory_work(op.io_bytes, hw);
        bi = op.bwd_io_bytes >= 0 ? memory_work(op.bwd_io_bytes, hw) : 2 * f;
        bw = op.weight_grad ? f : 0;  // embedding gradient scatter
        break;
    }
    // The fixed cost of every kernel the op launches (the backward's go with the activation gradient).
    f += k.fwd * hw.overhead;
    bi += k.bwd * hw.overhead;
    launches_fwd += k.fwd;
    launches_bwd += k.bwd;
    if (op.lora_flops > 0) {
      // The adapter's two thin GEMMs (x.A and (xA).B); trainable, so both gradients.
      const double lf = op.lora_flops / (hw.peak * hw.e_gemm) + 2 * hw.overhead;
      f += lf;
      bi += lf;
      bw += lf;
      launches_fwd += 2;
      launches_bwd += 4;
    }
    t.fwd += f;
    t.bwd_input += bi;
    t.bwd_weight += bw;
  }
  double tp_f = 0, tp_b = 0, cp_f = 0, cp_b = 0, ep_f = 0, ep_b = 0;
  double tp_fixed_f = 0, tp_fixed_b = 0;  // TP collectives tp_comm_overlap cannot hide (Comm::gemm_overlappable)
  for (const Comm& c : b.comms) {
    double ct = 0;
    switch (c.axis) {
      case Axis::tp: ct = collective_time(c.kind, c.bytes, l.n_tp, l.tp); break;
      case Axis::cp:  // the ring: one latency per hop
        ct = collective_time(c.kind, c.bytes, l.n_cp, l.cp) + (l.n_cp - 2) * l.cp.latency_s;
        break;
      case Axis::ep: ct = collective_time(c.kind, c.bytes, l.n_ep, l.ep); break;
      default: break;
    }
    const bool fwd = c.pass == Pass::forward;
    if (c.axis == Axis::tp && !c.gemm_overlappable)
      (fwd ? tp_fixed_f : tp_fixed_b) += ct;
    else
      (c.axis == Axis::tp ? (fwd ? tp_f : tp_b) : c.axis == Axis::cp ? (fwd ? cp_f : cp_b) : (fwd ? ep_f : ep_b)) += ct;
    (fwd ? launches_fwd : launches_bwd) += ct > 0 ? 1 : 0;
  }
  t.comm_fwd = tp_f + tp_fixed_f + cp_f + ep_f;
  t.comm_bwd = tp_b + tp_fixed_b + cp_b + ep_b;
  const bool overlap_tp = plan.parallel.tp_comm_overlap;
  // EP A2A overlap (Megatron-Core --overlap-moe-expert-parallel-comm, moe/README.md "Expert Parallel (EP)
  // Communication Overlap": "merging FWD-BWD passes of adjacent microbatches"): a forward all-to-all runs
  // under the backward compute of the micro-batch it is paired with, a backward one under the forward's.
  // The warm-up forwards and cool-down backwards a schedule runs alone keep theirs exposed; per
  // micro-batch the block carries the average (ep_overlap_paired_share).
  const double paired = plan.parallel.ep_comm_overlap ? ep_overlap_paired_share(plan) : 0;
  const double ep_f_exposed = paired * std::max(0.0, ep_f - (t.bwd_input + t.bwd_weight)) + (1 - paired) * ep_f;
  const double ep_b_exposed = paired * std::max(0.0, ep_b - t.fwd) + (1 - paired) * ep_b;
  t.exposed_fwd = (overlap_tp ? std::max(0.0, tp_f - t.gemm_fwd) : tp_f) + tp_fixed_f + std::max(0.0, cp_f - t.attn_fwd) +
                  ep_f_exposed;
  t.exposed_bwd = (overlap_tp ? std::max(0.0, tp_b - t.gemm_bwd) : tp_b) + tp_fixed_b + std::max(0.0, cp_b - attn_bwd) +
                  ep_b_exposed;
  t.recompute[static_cast<int>(Recompute::selective)] = attn_recompute;
  t.recompute[static_cast<int>(Recompute::full)] = t.fwd + t.exposed_fwd;  // the forward again, comm included
  // The host: forward kernels at host_overhead_s each, backward ones (autograd's engine) at bwd_host_factor
  // of it; a recomputed forward is issued again inside the backward.
  const double host_fwd = launches_fwd * hw.host, host_bwd = launches_bwd * hw.host * lp.bwd_host_factor;
  const double host_rec[3] = {0, attn_launches * hw.host, host_fwd};
  auto excess = [&](double host, double device) { return hw.host_adds ? host : std::max(0.0, host - device); };
  t.host_fwd = excess(host_fwd, t.fwd + t.exposed_fwd);
  for (int rc = 0; rc < 3; ++rc)
    t.host_bwd[rc] = excess(host_bwd + host_rec[rc], t.bwd_input + t.bwd_weight + t.exposed_bwd + t.recompute[rc]);
  return t;
}

Hw hw_of(const Plan& plan) { return hw_of(plan, effective_efficiency(plan.cluster.gpu, plan.cluster.calibration)); }

}  // namespace

double memory_bound_time(const Plan& plan, double bytes) { return memory_time(bytes, hw_of(plan)); }

double gemm_efficiency(const Plan& plan, double m, double n, double k) {
  const Hw hw = hw_of(plan);
  const double flops = 2 * m * n * k;
  const double bytes = activation_bytes(plan.training.precision) * (m * k + k * n + m * n);
  if (flops <= 0) return 0;
  const double t = std::max(gemm_math(m, n, k, 1, hw), memory_work(bytes, hw)) + hw.overhead;
  return flops / (hw.peak * t);
}

WorkloadTimes time_workload(const Plan& plan, const Workload& w, const FrameworkProfile& fw) {
  return time_workload(plan, w, fw, effective_efficiency(plan.cluster.gpu, plan.cluster.calibration));
}

WorkloadTimes time_workload(const Plan& plan, const Workload& w, const FrameworkProfile& fw, const Efficiency& e) {
  const Hw hw = hw_of(plan, e);
  Links l{group_link(plan, Axis::tp, e), group_link(plan, Axis::cp, e), group_link(plan, Axis::ep, e),
          plan.parallel.tp, plan.parallel.cp, plan.parallel.ep};
  WorkloadTimes t;
  t.embedding = time_block(plan, fw, w.embedding, w.act_bytes, hw, l);
  t.dense_layer = time_block(plan, fw, w.dense_layer, w.act_bytes, hw, l);
  if (plan.model.moe) t.moe_layer = time_block(plan, fw, w.moe_layer, w.act_bytes, hw, l);
  t.head = time_block(plan, fw, w.head, w.act_bytes, hw, l);
  return t;
}

}  // namespace paraplan::planner
