#pragma once
// Time of each block of the workload — its kernels and its TP/CP/EP collectives — for one micro-batch on
// one rank: compute per op from peak x efficiency (roofline for memory-bound ops), collectives over the
// two-level topology. The step-time model (timing.hpp) builds stages and steps from these.
#include "paraplan/framework.hpp"
#include "paraplan/plan.hpp"
#include "paraplan/workload.hpp"

namespace paraplan::planner {

// One block, one micro-batch, one rank.
struct BlockTime {
  double fwd = 0;         // forward compute (GEMMs, attention, memory-bound kernels)
  double bwd_input = 0;   // backward: activation gradients ("B" in zero-bubble terms)
  double bwd_weight = 0;  // backward: weight gradients ("W")
  double recompute[3] = {0, 0, 0};  // extra forward work per Recompute mode (incl. its exposed comm)
  double gemm_fwd = 0, gemm_bwd = 0;  // GEMM parts, which TP communication can hide behind
  double attn_fwd = 0;    // attention core forward, which the CP ring hides behind
  double comm_fwd = 0, comm_bwd = 0;        // TP/CP/EP collectives as issued
  double exposed_fwd = 0, exposed_bwd = 0;  // the part not hidden behind compute
  // Time the device waits for the host's launches (the host issues slower than the device runs), per
  // pass; the backward's by Recompute mode (a recomputed forward is launched again). On CPU workers,
  // where every kernel runs as it is issued, the whole host time.
  double host_fwd = 0;
  double host_bwd[3] = {0, 0, 0};
};

struct WorkloadTimes {
  BlockTime embedding, dense_layer, moe_layer, head;
};
WorkloadTimes time_workload(const Plan& plan, const Workload& w, const FrameworkProfile& fw);
// The same with the plan's effective efficiency (calibration.hpp) resolved once by the caller.
WorkloadTimes time_workload(const Plan& plan, const Workload& w, const FrameworkProfile& fw, const Efficiency& e);

// Time of a memory-bound kernel moving `bytes` through HBM on the plan's device (roofline + kernel cost).
double memory_bound_time(const Plan& plan, double bytes);
// The efficiency curve of a GEMM (m x k times k x n, operands in the plan's precision): achieved
// fraction of the device's peak, e_gemm x min(1, intensity / ridge) x F / (F + F_half) — the roofline
// with Hockney's half-performance size F_half = peak x e_gemm x kernel_overhead (docs/time-model.md).
double gemm_efficiency(const Plan& plan, double m, double n, double k);

}  // namespace paraplan::planner
