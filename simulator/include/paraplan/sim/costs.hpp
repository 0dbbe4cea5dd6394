#pragma once
// What each unit of the model (the embedding, a transformer layer, the head) costs one rank per
// micro-batch, taken from the planner's time and memory models (BlockTime, saved bytes, RankParams,
// collective_time over group_link), and how the units fall into model chunks (chunk_layers).
#include <vector>

#include "paraplan/comm.hpp"
#include "paraplan/context.hpp"
#include "paraplan/plan.hpp"

namespace paraplan::sim {

struct UnitCost {
  planner::BlockKind kind = planner::BlockKind::dense_layer;
  // Forward: compute, TP/CP/EP collectives the compute waits for, and those hidden under it.
  double f_compute_s = 0, f_exposed_s = 0, f_hidden_s = 0;
  // Backward, activation-gradient part ("B"), recompute included.
  double b_compute_s = 0, b_exposed_s = 0, b_hidden_s = 0;
  double w_compute_s = 0;  // weight-gradient GEMMs ("W")
  double saved_bytes = 0;    // kept from the forward to the end of the backward (by the recompute mode)
  double working_bytes = 0;  // alive while this unit's backward runs (gradients, recomputed activations)
  // Data parallelism, per rank: trainable parameters before ZeRO (gradient buckets fill with these),
  // dense (sharded over dp*cp) and routed-expert ones (over dp*cp/ep), and ZeRO-3 traffic.
  double trainable_dense = 0, trainable_expert = 0;
  int weight_tensors = 1;       // its trainable weight matrices: a gradient bucket closes only between them
  double gather_s = 0;          // ZeRO-3: all-gather of its parameters (plus the host fetch under param offload)
  double scatter_s = 0;         // ZeRO-3: reduce-scatter of its gradients
  double gathered_bytes = 0;    // ZeRO-3: its parameters while gathered (16-bit)
  double unsharded_grad_bytes = 0;  // ZeRO-3: its gradients before the reduce-scatter
};

struct ChunkCost {
  int first_unit = 0, units = 0;  // units [first_unit, first_unit + units) of StepCosts::units
  int dense = 0, moe = 0;
  bool embedding = false, head = false;
  // Sums over the chunk's units (one segment); B_full = B + W for schedules that do not split.
  double f_compute_s = 0, f_exposed_s = 0, f_hidden_s = 0;
  double b_compute_s = 0, b_exposed_s = 0, b_hidden_s = 0, w_compute_s = 0;
  double saved_bytes = 0, working_bytes = 0;  // working: the largest of its units
};

// Data-parallel collectives once per step (ZeRO <= 2): gradient buckets, then the parameter all-gather.
struct DataParallelCosts {
  bool reduce_grads = false;  // ZeRO <= 2 with a data-parallel group > 1
  bool gather_params = false; // ZeRO-1/2: all-gather the updated parameter shards after the step
  planner::CommKind reduce_kind = planner::CommKind::all_reduce;  // ZeRO-0 all-reduce, ZeRO-1/2 reduce-scatter
  double grad_bytes_per_param = 4, weight_bytes_per_param = 2;
  int n_dense = 1, n_expert = 1;  // dp*cp and dp*cp/ep
  planner::Link link;
  double bucket_params = 0;   // gradient bucket size in parameters
  // Time of one collective over `dense` and `expert` parameters (one call per group, as step.cpp).
  double time(planner::CommKind kind, double bytes_per_param, double dense, double expert) const;
};

struct StepCosts {
  std::vector<UnitCost> units;    // in model order: embedding, layers, head
  std::vector<ChunkCost> chunks;  // per model chunk (p v of them), in layer order
  double p2p_s = 0;               // one boundary activation (or its gradient) between two stages
  bool zero3 = false;             // ZeRO-3 with a sharding group > 1: gathers and reduce-scatters per unit
  DataParallelCosts dp;
};

// Units and chunks of the plan; `ctx` is make_context(plan).
StepCosts build_costs(const planner::Plan& plan, const planner::ShapeContext& ctx);

}  // namespace paraplan::sim
