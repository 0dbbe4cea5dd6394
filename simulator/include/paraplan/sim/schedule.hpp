#pragma once
// Pipeline schedules: the order in which each stage runs forward (F), backward (B) and weight-gradient
// (W) passes of its model chunks, one list per stage. Each generator follows its paper's definition
// (schedule.cpp cites them); the simulator executes the lists with their data dependencies.
#include <cstdint>
#include <string>
#include <vector>

#include "paraplan/parallel.hpp"

namespace paraplan::sim {

// F: forward. B: backward — the whole backward for schedules that do not split it, the activation
// gradient only ("B" of Qi et al. 2023) for those that do. W: weight gradient (split schedules only).
enum class OpType : uint8_t { F, B, W };

struct ScheduleOp {
  OpType type = OpType::F;
  int16_t chunk = 0;   // local chunk on the stage, 0 .. v-1
  int32_t mb = 0;      // micro-batch
};

struct Schedule {
  planner::PipelineSchedule kind = planner::PipelineSchedule::one_f_one_b;
  int p = 1, v = 1;
  long long m = 1;
  bool split_backward = false;  // B is the activation gradient only and W ops follow (ZB-H1, ZBV)
  std::vector<std::vector<ScheduleOp>> stages;  // per stage, in execution order

  // The model chunk (0 .. p v - 1, in layer order) that local chunk `local` of `stage` holds:
  // round robin (Megatron interleaving: chunk k p + s on stage s) or the V of ZBV (s and 2p - 1 - s).
  int model_chunk(int stage, int local) const;
  int stage_of(int model_chunk) const;
  int local_of(int model_chunk) const;
};

// Throws planner::PlanError naming the schedule and the rule when it cannot apply (interleaved with
// m not a multiple of p or v < 2, ZBV with v != 2, v != 1 for the others, p or m < 1).
Schedule make_schedule(planner::PipelineSchedule kind, int p, int v, long long m);

// "F0 F1 B0 F2 B1 ..." (v = 1) or "F0c0 F1c0 F0c1 ..." (micro-batch, then local chunk when v > 1).
std::string to_string(const std::vector<ScheduleOp>& ops, int v);

}  // namespace paraplan::sim
