#pragma once
// The step-time model: stages from their blocks' times (op_time.hpp), overlap rules, the pipeline
// bubble per schedule, the data-parallel reduction, the optimizer step and offload transfers.
#include <vector>

#include "paraplan/flops.hpp"
#include "paraplan/op_time.hpp"
#include "paraplan/plan.hpp"

namespace paraplan::planner {

// One pipeline stage, one micro-batch (all its chunks).
struct StageTime {
  int stage = 0;
  double fwd = 0, bwd = 0, bwd_weight = 0;  // including recompute, exposed comm and p2p
  double compute = 0;       // pure compute (fwd + bwd + recompute)
  double exposed_comm = 0;  // exposed TP/CP/EP + pipeline p2p + ZeRO-3 gathers + offload fetches (+ ZeRO-2 below)
  double p2p = 0, zero3_exposed = 0, offload_fetch = 0;  // parts of exposed_comm
  double dp_in_backward = 0;  // part of exposed_comm: ZeRO-2 reduce-scatters waited for in each backward (paraplan executor)
  double host = 0;          // the device waiting for the host: launches slower than kernels, per-micro-batch work
  double dp_comm = 0;       // gradient (and parameter) collectives per step, as issued
  double dp_buckets = 1;    // gradient-reduction buckets of the stage (ZeRO <= 2)
  double dp_last_bucket = 0;  // the input embedding's bucket, when it fills one: its reduction, after the others'
  double optimizer = 0;     // optimizer step (and offload transfers)
};

struct StepEstimate {
  double step_s = 0;
  double compute_s = 0, exposed_comm_s = 0, bubble_s = 0, optimizer_s = 0, host_s = 0;  // sum to step_s
  double tokens_per_s = 0, tflops_per_gpu = 0, mfu = 0, hfu = 0;
  AttentionFlops convention = AttentionFlops::full;
  StepFlops flops;
  int critical_stage = 0;
  // Parts of exposed_comm_s, for explanations.
  double tp_exposed_s = 0, pp_p2p_s = 0, dp_exposed_s = 0, zero3_exposed_s = 0;
  std::vector<StageTime> per_stage;
};

struct ShapeContext;
struct StageLayers;
StepEstimate estimate_time(const Plan& plan, AttentionFlops convention = AttentionFlops::full);
// With precomputed pieces (the search reuses contexts and FLOPs across plans).
StepEstimate estimate_time(const Plan& plan, const ShapeContext& ctx, const StepFlops& flops);
StepEstimate estimate_time(const Plan& plan, const ShapeContext& ctx, const StepFlops& flops,
                           const std::vector<StageLayers>& layers);

// One stage holding `layers` and, as the flags say, the embedding and the head (estimate_time puts them
// on the first and the last stage; the simulator places chunks itself: ZBV's V puts both on stage 0).
StageTime stage_time(const Plan& plan, const ShapeContext& ctx, int stage, const StageLayers& layers,
                     bool has_embedding, bool has_head);

// Step time and throughput only (what the search needs); the same model as estimate_time.
struct StepSummary {
  double step_s = 0, tokens_per_s = 0, mfu = 0;
};
StepSummary step_summary(const Plan& plan, const ShapeContext& ctx, const StepFlops& flops,
                         const std::vector<StageLayers>& layers);

// Pipeline time for per-stage forward / backward / weight-gradient times per micro-batch (per schedule;
// pipeline.hpp cites the sources).
struct PipelineTime {
  double total = 0, bubble = 0;
};
PipelineTime pipeline_time(PipelineSchedule schedule, int v, long long m, const std::vector<StageTime>& stages);
// The same from the sum of stage times (forward + backward per micro-batch) and the slowest stage.
PipelineTime pipeline_time(PipelineSchedule schedule, int v, long long m, double sum, const StageTime& slowest);

}  // namespace paraplan::planner
