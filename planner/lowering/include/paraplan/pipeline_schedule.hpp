#pragma once
// Pipeline schedules: the order in which each stage runs forward (F), backward (B) and weight-gradient
// (W) passes of its model chunks, one list per stage. Each generator follows its paper's definition
// (pipeline_schedule.cpp cites them). One definition for the three that need it: the simulator executes
// the lists with their data dependencies, the executor runs them, and the memory model of the
// executor's own profile walks them.
#include <cstdint>
#include <string>
#include <vector>

#include "paraplan/parallel.hpp"

namespace paraplan::planner {

// F: forward. B: backward — the whole backward for schedules that do not split it, the activation
// gradient only ("B" of Qi et al. 2023) for those that do. W: weight gradient (split schedules only).
enum class OpType : uint8_t { F, B, W };

struct ScheduleOp {
  OpType type = OpType::F;
  int16_t chunk = 0;   // local chunk on the stage, 0 .. v-1
  int32_t mb = 0;      // micro-batch
};

struct Schedule {
  PipelineSchedule kind = PipelineSchedule::one_f_one_b;
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

// Throws PlanError naming the schedule and the rule when it cannot apply (interleaved with
// m not a multiple of p or v < 2, ZBV with v != 2, v != 1 for the others, p or m < 1).
Schedule make_schedule(PipelineSchedule kind, int p, int v, long long m);

// "F0 F1 B0 F2 B1 ..." (v = 1) or "F0c0 F1c0 F0c1 ..." (micro-batch, then local chunk when v > 1).
std::string to_string(const std::vector<ScheduleOp>& ops, int v);

// Point-to-point messages of a schedule: F of model chunk c sends its output to F of chunk c + 1, B of
// chunk c sends its input gradient to B of chunk c - 1. A send is asynchronous (gloo and NCCL complete
// it only once the receiver has posted its receive), so the sender may drop the tensor only when it
// knows the receiver has begun the op that receives it. send_release(s)[stage][k] is the index of the
// first op of that stage that happens after (Lamport 1978) the receiving op began, by program order and
// the messages received before it; ops.size() for the end of the step; -1 when op k sends nothing.
std::vector<std::vector<int>> send_release(const Schedule& s);

}  // namespace paraplan::planner
