#pragma once
// The "paraplan" framework profile models paraplan's own executor, whose kernels are known exactly
// (executor/src/functions.cpp, engine.cpp): what each op keeps for the backward, what its backward
// allocates, and which reusable buffers data parallelism allocates. The executor's tests hold the
// prediction equal to the counting allocator's measurement on CPU, category by category, to the byte.
#include "paraplan/params.hpp"
#include "paraplan/rank_params.hpp"
#include "paraplan/plan.hpp"
#include "paraplan/workload.hpp"

namespace paraplan::planner {

// Rewrites the saved and working bytes of every op to the executor's (called by build_workload when
// the profile's exact_executor is set).
void apply_executor_ops(Workload& w, const Plan& plan);

struct ExecutorActivations {
  double saved = 0;    // everything kept for the backward, at the peak
  double working = 0;  // what the op running at the peak allocates on top
};
// The activation peak of a stage holding `dense_layers` layers (and the embedding / head), phase by
// phase: in the backward, op k runs while everything saved before it is still alive and what the ops
// after it kept is already freed, so the peak is max_k(saved alive at k + working of k), not the sum
// of all saved and the largest working set.
ExecutorActivations executor_activations(const Plan& plan, const Workload& w, int dense_layers, bool has_embedding,
                                         bool has_head);

// ZeRO-2/3 buffers as executor/src/engine.cpp allocates them, once, for the largest unit: the gradient
// bucket and its reduce-scatter output chunk (ZeRO >= 2), and the gather buffer (ZeRO-3).
double executor_buffers(const Plan& plan, const RankParams& embedding, const RankParams& layer, const RankParams& head,
                        double weight_bytes, double grad_bytes);

}  // namespace paraplan::planner
