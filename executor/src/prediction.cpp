#include "paraplan/exec/prediction.hpp"

#include "paraplan/memory.hpp"
#include "paraplan/timing.hpp"

namespace paraplan::exec {

using namespace planner;

double Prediction::bytes_of(const std::string& category) const {
  for (const auto& [k, v] : bytes)
    if (k == category) return v;
  return 0;
}

Plan as_executor_plan(const Plan& plan) {
  Plan p = plan;
  p.training.framework = Framework::paraplan;
  return p;
}

std::optional<double> predicted_step_seconds(const Plan& plan) {
  const double s = estimate_time(plan).step_s;
  return s > 0 ? std::optional<double>(s) : std::nullopt;
}

Prediction predict_run(const Plan& plan, int stage) {
  const Plan p = as_executor_plan(plan);
  const MemoryBreakdown m = estimate_memory(p);
  const StageMemory& w = m.per_stage.at(static_cast<size_t>(stage < 0 ? m.worst_stage : stage));
  Prediction out;
  out.bytes = {{"weights", w.weights_bytes},         {"gradients", w.gradients_bytes},
               {"master", w.master_weights_bytes},   {"optimizer", w.optimizer_bytes},
               {"activations", w.activations_bytes}, {"buffers", w.buffers_bytes},
               {"other", 0.0},                       {"peak", w.allocated_bytes()}};
  out.peak_bytes = w.allocated_bytes();
  out.overhead_bytes = w.overhead_bytes;
  out.step_s = predicted_step_seconds(p);
  return out;
}

}  // namespace paraplan::exec
