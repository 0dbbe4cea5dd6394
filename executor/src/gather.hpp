#pragma once
// The whole model's parameters on one rank, from the slices every rank holds: each data-parallel
// group's first rank (after a ZeRO-3 gather) contributes its pipeline stage's tensor-parallel slices,
// and world rank 0 puts them together (internal; includes ATen).
#include <ATen/ATen.h>

#include <functional>
#include <vector>

#include "paraplan/exec/communicator.hpp"
#include "paraplan/exec/layout.hpp"
#include "paraplan/plan.hpp"
#include "zero_engine.hpp"

namespace paraplan::exec {

struct WholeModel {
  std::vector<ParamInfo> params;  // in model order (model_layout), whole shapes
  std::vector<at::Tensor> tensors;  // on the host, the compute dtype
};

// Collective over the world. `keep` chooses the parameters (e.g. adapters only). Rank 0 gets them all;
// every other rank an empty WholeModel.
WholeModel gather_model(ZeroEngine& engine, ProcessGroups& groups, const planner::Plan& plan,
                        const std::function<bool(const ParamInfo&)>& keep);

}  // namespace paraplan::exec
