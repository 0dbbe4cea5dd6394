#pragma once
// One training step of one pipeline as a task graph: the schedule's F/B/W passes on each stage's
// compute stream, TP/CP/EP collectives the compute waits for, pipeline transfers between stages, DP
// gradient buckets during the backward, ZeRO-3 gathers (one unit prefetched) and reduce-scatters, the
// optimizer step and the ZeRO-1/2 parameter all-gather. Memory changes ride on the tasks.
#include <vector>

#include "paraplan/sim/costs.hpp"
#include "paraplan/sim/engine.hpp"
#include "paraplan/sim/schedule.hpp"

namespace paraplan::sim {

struct GraphOptions {
  bool dp_overlap = true;           // buckets reduce during the backward; ZeRO-3 prefetches the next unit
  std::vector<double> optimizer_s;  // per stage (empty: no optimizer step)
};

// TP/CP/EP collectives that the time model hides under the GEMMs: drawn beside their compute task.
struct HiddenComm {
  TaskId compute = -1;
  double duration_s = 0;
};

struct StepGraph {
  Graph graph;
  std::vector<TaskId> optimizer;        // per stage (-1: none)
  std::vector<TaskId> param_allgather;  // per stage (-1: none)
  std::vector<HiddenComm> hidden;
};

StepGraph build_step_graph(const Schedule& schedule, const StepCosts& costs, const GraphOptions& options);

}  // namespace paraplan::sim
