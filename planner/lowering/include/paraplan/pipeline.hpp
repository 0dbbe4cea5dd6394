#pragma once
// Pipeline facts shared by the memory model, the time model and the simulator: how layers are
// split over stages, and how many micro-batches a stage holds at its activation peak.
#include <vector>

#include "paraplan/plan.hpp"

namespace paraplan::planner {

// Layers of each model chunk (pp * virtual_stages entries; chunk j runs on stage j % pp).
// Explicit parallel.layer_split wins; otherwise as even as possible, with the remainder going to the
// inner chunks first, because the first chunk also holds the embedding and the last one the head
// and the loss (torchtitan's first/last-stage-fewer-layers rule does the same).
std::vector<int> chunk_layers(const Plan& plan);

// The stage that holds chunk `chunk` (0 .. pp*v - 1, in layer order): round robin (Megatron
// interleaving: chunk k pp + s on stage s), or the V of ZBV: chunks s and 2pp - 1 - s on stage s
// (Qi et al. 2024; PyTorch ScheduleZBVZeroBubble), so stage 0 holds both the embedding and the head.
inline int stage_of_chunk(const Plan& plan, int chunk) {
  const int p = plan.parallel.pp;
  if (plan.parallel.pp_schedule == PipelineSchedule::zbv) return chunk < p ? chunk : 2 * p - 1 - chunk;
  return chunk % p;
}
// The stage holding the final norm, the output head and the loss.
inline int head_stage(const Plan& plan) { return stage_of_chunk(plan, plan.parallel.chunks() - 1); }

struct StageLayers {
  int dense = 0;  // dense-MLP transformer layers on the stage (all its chunks)
  int moe = 0;    // MoE transformer layers on the stage
  int total() const { return dense + moe; }
};
std::vector<StageLayers> stage_layers(const Plan& plan);

// Micro-batches whose activations stage `stage` (0-based) holds at its peak, in units of one
// micro-batch through all the stage's layers.
//   GPipe: m (Huang et al. 2019 §2.3)            1F1B: min(m, p - s) (Narayanan 2021 §2.2)
//   ZB-H1: min(m, p) on every stage: W, which frees the activations, lags B by s micro-batches (Qi 2023 §3.1)
//   interleaved: min(m v, 2(p - s - 1) + (v - 1) p + 1) / v chunk-micro-batches (Megatron-Core
//     schedules.py warm-up count); for s = 0 this is p (1 + (p - 1)/(p v)) (Korthikanti 2022 §4.2.3)
//   ZBV: min(m, p) on every stage (Qi et al. 2024, zero-bubble README: V-schedules balance memory at 1x 1F1B);
//     exact for m >= 2p - 1 and on the last stage; below that stage s holds (min(m, 2p-s-1) + min(m, s+1))/2
//     (the simulator), which min(m, p) bounds from above
double inflight_microbatches(PipelineSchedule schedule, int p, int v, long long m, int stage);

// Megatron-Core's warm-up of the interleaved schedule on pipeline rank `rank`: the chunk-forwards it runs
// before its first backward, 2(p - rank - 1) + (v - 1) p (schedules.py get_pp_rank_microbatches with
// microbatch_group_size_per_vp_stage = p, its default); as many backwards close the step.
double interleaved_warmup(int p, int v, int rank);

}  // namespace paraplan::planner
