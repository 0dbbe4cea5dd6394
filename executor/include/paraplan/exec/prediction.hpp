#pragma once
// What the planner predicts for a plan the executor runs: memory per category on one rank with the
// executor's own framework profile ("paraplan": no CUDA context or NCCL buffers on CPU workers), and
// the step time once the planner's time model covers it. Stored beside the measurement of every run.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "paraplan/plan.hpp"

namespace paraplan::exec {

struct Prediction {
  // (category, bytes): weights, gradients, master, optimizer, activations, buffers, other — the
  // categories the memory meter measures — and "peak", their sum on the worst rank.
  std::vector<std::pair<std::string, double>> bytes;
  double peak_bytes = 0;                // what the allocator sees: the worst rank's allocated bytes
  double overhead_bytes = 0;            // CUDA context, NCCL, allocator headroom (GPU only; not measured)
  std::optional<double> step_s;         // the planner's time model (null when it gives none)
  double bytes_of(const std::string& category) const;
};

// The plan with training.framework set to the executor's profile.
planner::Plan as_executor_plan(const planner::Plan& plan);
// For pipeline stage `stage` (-1: the worst one).
Prediction predict_run(const planner::Plan& plan, int stage = -1);

// The planner's step-time prediction (planner/timing) for the executor's plan; nullopt when the model
// gives none (the run then stores NULL).
std::optional<double> predicted_step_seconds(const planner::Plan& plan);

}  // namespace paraplan::exec
