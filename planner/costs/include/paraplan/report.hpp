#pragma once
// JSON views of the planner's answers, shared by the CLI (--json), the GUI and the tests.
#include <cstdint>
#include <nlohmann/json_fwd.hpp>

#include "paraplan/memory.hpp"
#include "paraplan/plan.hpp"
#include "paraplan/timing.hpp"

namespace paraplan::planner {

// {name, params, all_params, trainable_params, trainable_percent, active_params}
// Bytes in JSON are whole numbers, rounded to nearest; fractions come only from averaging shards
// (e.g. over ZeRO ranks or interleaved chunks). Integers below 2^63; past it, floating-point numbers.
nlohmann::json whole_bytes(double bytes);

nlohmann::json model_report(const Plan& plan);
// {per_stage: [{stage, layers, weights_bytes, ..., total_bytes}], peak_bytes, gpu_memory_bytes, fits, worst_stage}
nlohmann::json memory_report(const MemoryBreakdown& m);
// {step_s, compute_s, exposed_comm_s, bubble_s, optimizer_s, tokens_per_s, tflops_per_gpu, mfu, hfu, ...}
nlohmann::json time_report(const StepEstimate& t);
// For a token budget: {tokens, wall_s, gpu_hours, cost (when a price per GPU-hour is known)}
nlohmann::json budget_report(const Plan& plan, const StepEstimate& t, double tokens);
// {plan, model, memory, time}
nlohmann::json plan_report(const Plan& plan, const MemoryBreakdown& m, const StepEstimate& t);

}  // namespace paraplan::planner
