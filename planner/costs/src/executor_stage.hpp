#pragma once
// The exact memory of one stage of paraplan's executor (framework profile "paraplan"): the schedule's
// ops walked with every tensor the executor allocates (executor_replay.hpp), so that the planner's
// prediction equals the counting allocator's measurement on CPU workers to the byte.
#include <vector>

#include "paraplan/params.hpp"
#include "paraplan/rank_params.hpp"
#include "paraplan/plan.hpp"

namespace paraplan::planner {

// What a pipeline stage holds: its model chunks (pipeline.hpp stage_of_chunk), and so the embedding,
// the head and how many layers.
struct StageUnits {
  std::vector<int> chunks;
  bool embedding = false, head = false;
  int layers = 0;
};
StageUnits stage_units(const Plan& plan, int stage);

struct ExecutorStage {
  double peak = 0;             // activations and transient buffers at the stage's highest point in a step
  double buffers_at_peak = 0;  // of which transient buffers (ZeRO reduce-scatter chunks)
  double tables = 0;           // RoPE tables and the causal mask, made once (buffers)
  double engine_buffers = 0;   // ZeRO-2/3 bucket, its reduce-scatter chunk, ZeRO-3 gather buffer, QLoRA's
                               // dequantisation buffer (buffers)
  double nf4_weights = -1;     // QLoRA: the exact bytes of the frozen base (NF4 linears, bf16 others) and
                               // the adapters; -1 without QLoRA
  int peak_op = -1;            // the op of the stage's schedule during which the peak occurs
  double activations() const { return peak - buffers_at_peak; }
  double buffers() const { return tables + engine_buffers + buffers_at_peak; }
};

// embedding, layer, head: one rank's parameters of each block (context.hpp); wb, gb: bytes per weight
// and per gradient element.
ExecutorStage executor_stage(const Plan& plan, int stage, const RankParams& embedding, const RankParams& layer,
                             const RankParams& head, double wb, double gb);

}  // namespace paraplan::planner
