#pragma once
// Simulates one training step of one pipeline (one DP replica: by symmetry it stands for all) and
// reports the step time split like the planner's (compute + exposed communication + bubble +
// optimizer on the stage that finishes last), busy and idle time per stage, and memory over time.
#include <vector>

#include "paraplan/plan.hpp"
#include "paraplan/sim/costs.hpp"
#include "paraplan/sim/engine.hpp"
#include "paraplan/sim/schedule.hpp"
#include "paraplan/sim/step_graph.hpp"

namespace paraplan::sim {

// What a stage holds besides its dynamic memory, and where its chunks put the embedding and the head.
struct StageStatic {
  int dense_layers = 0, moe_layers = 0;
  bool has_embedding = false, has_head = false;
  double static_bytes = 0;          // weights, gradients, master weights, optimizer states, DP and PP buffers
  double headroom = 0;              // allocator headroom, a fraction of allocated bytes
  double fixed_overhead_bytes = 0;  // CUDA context and NCCL communicators
  double gather_window_s = 0;       // next step's forward that hides the ZeRO-1/2 parameter all-gather
};

struct StageResult {
  int stage = 0;
  StageStatic placed;
  double end_s = 0;               // the stage's step ends: optimizer done, parameters gathered
  double busy_s = 0, idle_s = 0;  // compute stream busy (optimizer included) and the rest of the step
  double bubble_s = 0;            // compute waiting for other stages
  double tp_s = 0, pp_s = 0, dp_s = 0, zero3_s = 0;  // compute waiting for communication, by kind
  double optimizer_s = 0;
  double peak_dynamic_bytes = 0;  // activations, working sets, ZeRO-3 gathered parameters and gradients
  double peak_time_s = 0;
  double peak_bytes = 0;          // (static + dynamic peak) x (1 + headroom) + fixed overheads
  double exposed_comm_s() const { return tp_s + pp_s + dp_s + zero3_s; }
  double total_bytes(double dynamic_bytes) const {
    return (placed.static_bytes + dynamic_bytes) * (1 + placed.headroom) + placed.fixed_overhead_bytes;
  }
};

struct SimResult {
  double step_s = 0;
  int critical_stage = 0;  // the stage that finishes last; its parts add up to step_s
  double compute_s = 0, exposed_comm_s = 0, bubble_s = 0, optimizer_s = 0;
  double tp_s = 0, pp_s = 0, dp_s = 0, zero3_s = 0;  // parts of exposed_comm_s
  std::vector<StageResult> stages;
  Schedule schedule;
  StepGraph graph;
  Timeline timeline;
};

struct SimOptions {
  bool record_memory = false;  // keep every memory change (for the CSV and the trace's counter tracks)
};

// The whole step of a plan (validate it first: load_plan does). Throws planner::PlanError when the
// schedule cannot apply.
SimResult simulate(const planner::Plan& plan, const SimOptions& options = {});

// The same from its parts: a schedule, unit costs, and per-stage statics (tests use synthetic costs).
SimResult simulate(const Schedule& schedule, const StepCosts& costs, const GraphOptions& graph_options,
                   const std::vector<StageStatic>& statics, const SimOptions& options = {});

}  // namespace paraplan::sim
