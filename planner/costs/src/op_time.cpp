// Time of each block's kernels and collectives, one micro-batch on one rank. Sources:
// - compute: time = max(FLOPs / (peak x efficiency), bytes / (HBM x efficiency)) + a fixed cost per kernel
//   (the roofline of ASTRA-sim Roofline.cc / llm-analysis; efficiencies in data/hardware with sources);
// - FlashAttention backward = 2.5x its forward FLOPs (5 matmuls against 2, Dao 2023 Alg. 2);
// - collectives: comm.cpp (nccl-tests bus bandwidth, two-level topology); TP exposed unless
//   tp_comm_overlap (Transformer Engine), CP ring behind the attention core (ring attention).
#include "paraplan/op_time.hpp"

#include <algorithm>

#include "paraplan/bytes_per_param.hpp"
#include "paraplan/calibration.hpp"
#include "paraplan/comm.hpp"

namespace paraplan::planner {

namespace {

struct Hw {
  double peak, hbm, e_gemm, e_attn, e_mem, overhead;
  double host;     // host-side cost per kernel (Efficiency::host_overhead_s)
  bool host_adds;  // a CPU worker: one thread runs the host's part and the kernel's, one after the other
};

// CPU workers sharing a machine's cores: with W workers on C < W cores each runs at C / W of its speed
// (the operating system shares the cores evenly), on compute, memory traffic and per-kernel costs alike.
// One worker always has a core (C < 1 would only rescale the peaks, which the efficiencies do).
double core_share(const Plan& plan, const Efficiency& e) {
  if (!plan.cluster.gpu.is_cpu || e.host_cores <= 0) return 1;
  const double workers = std::min(plan.cluster.gpus, plan.cluster.gpus_per_node);
  return std::min(1.0, std::max(1.0, e.host_cores) / workers);
}

Hw hw_of(const Plan& plan) {
  const GpuSpec& g = plan.cluster.gpu;
  const Efficiency e = effective_efficiency(g, plan.cluster.calibration);
  const double share = core_share(plan, e);
  if (share == 1)  // the common case, kept free of arithmetic that could move a result by one bit
    return {g.peak_flops(plan.training.precision), g.hbm_bytes_per_s, e.gemm, e.attention, e.memory,
            e.kernel_overhead_s, e.host_overhead_s, g.is_cpu};
  return {g.peak_flops(plan.training.precision) * share, g.hbm_bytes_per_s * share, e.gemm, e.attention, e.memory,
          e.kernel_overhead_s / share, e.host_overhead_s / share, g.is_cpu};
}

// An op's kernels as the framework issues them: `kernels` launches whose device time is `device_s`.
// On a CPU worker the host's part adds to the work; a GPU's host runs ahead of the device, so the
// slower of the two sets the pace (the launch-bound regime of small kernels).
double issue(double device_s, double kernels, const Hw& hw) {
  if (device_s <= 0) return 0;
  return hw.host_adds ? device_s + kernels * hw.host : std::max(device_s, kernels * hw.host);
}

double memory_time(double bytes, const Hw& hw) {
  return bytes > 0 ? bytes / (hw.hbm * hw.e_mem) + hw.overhead : 0;
}

double gemm_time(double flops, double bytes, const Hw& hw) {
  if (flops <= 0) return 0;
  return std::max(flops / (hw.peak * hw.e_gemm), bytes / (hw.hbm * hw.e_mem)) + hw.overhead;
}

struct Links {
  Link tp, cp, ep;
  int n_tp, n_cp, n_ep;
};

BlockTime time_block(const Plan& plan, const Block& b, double d, const Hw& hw, const Links& l) {
  BlockTime t;
  const bool flash = plan.training.flash_attention;
  double attn_recompute = 0, attn_bwd = 0;
  for (const Op& op : b.ops) {
    double f = 0, bi = 0, bw = 0;
    switch (op.kind) {
      case OpKind::gemm:
      case OpKind::router: {
        f = issue(gemm_time(op.flops, d * (op.m * op.k + op.k * op.n + op.m * op.n), hw), 1, hw);
        bi = f;                          // activation gradient: same shape
        bw = op.weight_grad ? f : 0;     // weight gradient: same shape, trainable weights only
        t.gemm_fwd += f;
        t.gemm_bwd += bi + bw;
        break;
      }
      case OpKind::attention: {
        if (op.flops > 0 && flash) {
          f = issue(op.flops / (hw.peak * hw.e_attn) + hw.overhead, 1, hw);
          bi = 2.5 * f;
        } else if (op.flops > 0) {
          f = issue(gemm_time(op.flops, op.io_bytes, hw) + hw.overhead, 2, hw);  // QK^T and AV as batched GEMMs
          bi = 2 * f;
        } else {
          f = issue(memory_time(op.io_bytes, hw), 1, hw);
          bi = 2 * f;
        }
        t.attn_fwd += f;
        attn_recompute += f;
        attn_bwd += bi;
        break;
      }
      default:  // memory-bound: the backward reads the incoming gradient and the saved input, writes one
        f = issue(memory_time(op.io_bytes, hw), 1, hw);
        bi = 2 * f;
        bw = op.weight_grad ? f : 0;  // embedding gradient scatter
        break;
    }
    if (op.lora_flops > 0) {
      // The adapter's two thin GEMMs (x.A and (xA).B); trainable, so both gradients.
      const double lf = issue(op.lora_flops / (hw.peak * hw.e_gemm) + 2 * hw.overhead, 2, hw);
      f += lf;
      bi += lf;
      bw += lf;
    }
    t.fwd += f;
    t.bwd_input += bi;
    t.bwd_weight += bw;
  }
  double tp_f = 0, tp_b = 0, cp_f = 0, cp_b = 0, ep_f = 0, ep_b = 0;
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
    (c.axis == Axis::tp ? (fwd ? tp_f : tp_b) : c.axis == Axis::cp ? (fwd ? cp_f : cp_b) : (fwd ? ep_f : ep_b)) += ct;
  }
  t.comm_fwd = tp_f + cp_f + ep_f;
  t.comm_bwd = tp_b + cp_b + ep_b;
  const bool overlap_tp = plan.parallel.tp_comm_overlap;
  t.exposed_fwd = (overlap_tp ? std::max(0.0, tp_f - t.gemm_fwd) : tp_f) + std::max(0.0, cp_f - t.attn_fwd) + ep_f;
  t.exposed_bwd = (overlap_tp ? std::max(0.0, tp_b - t.gemm_bwd) : tp_b) + std::max(0.0, cp_b - attn_bwd) + ep_b;
  t.recompute[static_cast<int>(Recompute::selective)] = attn_recompute;
  t.recompute[static_cast<int>(Recompute::full)] = t.fwd + t.exposed_fwd;  // the forward again, comm included
  return t;
}

}  // namespace

double memory_bound_time(const Plan& plan, double bytes) { return memory_time(bytes, hw_of(plan)); }

double gemm_efficiency(const Plan& plan, double m, double n, double k) {
  const Hw hw = hw_of(plan);
  const double flops = 2 * m * n * k;
  const double bytes = activation_bytes(plan.training.precision) * (m * k + k * n + m * n);
  const double t = gemm_time(flops, bytes, hw);
  return t > 0 ? flops / (hw.peak * t) : 0;
}

WorkloadTimes time_workload(const Plan& plan, const Workload& w) {
  const Hw hw = hw_of(plan);
  Links l{group_link(plan, Axis::tp), group_link(plan, Axis::cp), group_link(plan, Axis::ep),
          plan.parallel.tp, plan.parallel.cp, plan.parallel.ep};
  WorkloadTimes t;
  t.embedding = time_block(plan, w.embedding, w.act_bytes, hw, l);
  t.dense_layer = time_block(plan, w.dense_layer, w.act_bytes, hw, l);
  if (plan.model.moe) t.moe_layer = time_block(plan, w.moe_layer, w.act_bytes, hw, l);
  t.head = time_block(plan, w.head, w.act_bytes, hw, l);
  return t;
}

}  // namespace paraplan::planner
