#pragma once
// Everything about a plan that depends only on its workload shape (tp, cp, ep, sequence parallel,
// micro-batch): the lowered workload, its op times, the parameters each rank holds per block. Built
// once and shared by every plan of that shape — the search evaluates millions of plans on a few
// hundred shapes.
#include "paraplan/framework.hpp"
#include "paraplan/params.hpp"
#include "paraplan/rank_params.hpp"
#include "paraplan/plan.hpp"
#include "paraplan/op_time.hpp"
#include "paraplan/workload.hpp"

namespace paraplan::planner {

struct ShapeContext {
  // Builds the workload straight into `w`: brace-initialising the aggregate zero-filled all 14 KB
  // (the op lists' unused capacity included) before overwriting it, 56% of a memory estimate's
  // instructions (callgrind).
  ShapeContext(const Plan& plan, const FrameworkProfile& profile);

  FrameworkProfile fw;  // the plan's framework, with the cluster's overhead overrides applied
  // The time model's parameters for the plan's GPU and calibration, resolved once with the op times
  // (memory-only contexts leave them default): every op, link and step term reads them (resolving them
  // per term was a fifth of a calibration fit's time).
  Efficiency eff;
  Workload w;
  WorkloadTimes times;
  RankParams dense, moe, embedding, head, tied_head;  // per block, one rank, before ZeRO
};

// What make_context fills: the memory model reads the workload and the parameters only; the op times
// (a third of the cost of a context) are for the time model.
enum class ContextParts { memory, memory_and_time };

ShapeContext make_context(const Plan& plan, ContextParts parts = ContextParts::memory_and_time);

// Re-resolves the context's parameters and op times for the plan's calibration: the workload and the
// per-rank parameters do not depend on it, so a fit that tries many calibrations on one plan lowers it once.
void retime_context(ShapeContext& c, const Plan& plan);

}  // namespace paraplan::planner
