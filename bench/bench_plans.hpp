#pragma once
// The plan the planner benchmarks time: LLaMA-3.1-405B pretraining (8,192-token sequences, 2,048 per step,
// selective recompute) on H100 SXM 80 GB, one GPU per rank of dp x tp x pp.
#include "paraplan/plan.hpp"
#include "paraplan/presets.hpp"

namespace paraplan::bench {

inline planner::Plan llama405b_on_h100(int dp, int tp, int pp) {
  planner::Plan p;
  p.model = planner::model_preset("llama3-405b");
  p.cluster.gpu = planner::hardware_preset("h100-sxm-80gb");
  p.cluster.gpus = dp * tp * pp;
  p.training.seq_len = 8192;
  p.training.global_batch = 2048;
  p.training.recompute = planner::Recompute::selective;
  p.parallel.dp = dp;
  p.parallel.tp = tp;
  p.parallel.pp = pp;
  return p;
}

}  // namespace paraplan::bench
