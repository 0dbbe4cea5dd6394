#pragma once
// JSON views of the planner's answers, shared by the CLI (--json), the GUI and the tests.
#include <nlohmann/json_fwd.hpp>

#include "paraplan/memory.hpp"
#include "paraplan/plan.hpp"

namespace paraplan::planner {

// {name, params, all_params, trainable_params, trainable_percent, active_params}
nlohmann::json model_report(const Plan& plan);
// {per_stage: [{stage, layers, weights_bytes, ..., total_bytes}], peak_bytes, gpu_memory_bytes, fits, worst_stage}
nlohmann::json memory_report(const MemoryBreakdown& m);
// {plan, model, memory}
nlohmann::json plan_report(const Plan& plan, const MemoryBreakdown& m);

}  // namespace paraplan::planner
