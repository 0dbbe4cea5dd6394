#pragma once
// The fit's cache of a run row: what lowering the row's plan gives, which no calibration changes. Apart
// from measurements.hpp so that its includers (the GUI, the executor's worker, the CLI) do not compile
// the time model's context, FLOP and pipeline headers.
#include <vector>

#include "paraplan/context.hpp"
#include "paraplan/flops.hpp"
#include "paraplan/measurements.hpp"
#include "paraplan/pipeline.hpp"

namespace paraplan::planner {

// A run row's lowered workload, FLOPs and pipeline split, which no calibration changes: the fit builds
// them once per row and re-times them at every evaluation (rebuilding them was a quarter of a fit).
struct PreparedRun {
  explicit PreparedRun(const Plan& plan);
  ShapeContext ctx;
  StepFlops flops;
  std::vector<StageLayers> layers;
};
// predict_on for a run row (not a probe) whose plan was prepared: the same value.
double predict_on(const Plan& plan, const Measurement& m, PreparedRun& prepared);

}  // namespace paraplan::planner
