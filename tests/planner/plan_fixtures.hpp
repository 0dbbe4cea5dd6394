#pragma once
// Plans the planner tests start from: a model preset on a GPU preset; each test sets what else it needs.
#include <cstdint>
#include <string>

#include "paraplan/plan.hpp"
#include "paraplan/presets.hpp"

namespace plantest {

// The model preset `model` at `seq_len` tokens per sequence on the GPU preset `gpu`, all else default.
inline paraplan::planner::Plan preset_plan(const std::string& model, int64_t seq_len, const std::string& gpu) {
  paraplan::planner::Plan p;
  p.model = paraplan::planner::model_preset(model);
  p.training.seq_len = seq_len;
  p.cluster.gpu = paraplan::planner::hardware_preset(gpu);
  return p;
}

}  // namespace plantest
