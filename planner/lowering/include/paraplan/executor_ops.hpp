#pragma once
// The "paraplan" framework profile models paraplan's own executor, whose kernels are known exactly
// (executor/src/*_fn.cpp): the op list's saved and working bytes here serve the consumers of the
// workload (the simulator's timeline); the memory model itself walks the executor's allocations
// exactly (executor_stage.hpp), and the executor's tests hold that equal to the counting allocator's
// measurement on CPU, category by category, to the byte.
#include "paraplan/params.hpp"
#include "paraplan/rank_params.hpp"
#include "paraplan/plan.hpp"
#include "paraplan/workload.hpp"

namespace paraplan::planner {

// Rewrites the saved and working bytes of every op to the executor's (called by build_workload when
// the profile's exact_executor is set).
void apply_executor_ops(Workload& w, const Plan& plan);

}  // namespace paraplan::planner
