#include "paraplan/pipeline.hpp"

#include <algorithm>

namespace paraplan::planner {

std::vector<int> chunk_layers(const Plan& plan) {
  const int chunks = plan.parallel.chunks();
  if (!plan.parallel.layer_split.empty()) return plan.parallel.layer_split;
  const int layers = plan.model.layers;
  std::vector<int> split(chunks, layers / chunks);
  int extra = layers % chunks;
  // Inner chunks first (1 .. chunks-2), then the last, then the first.
  for (int j = 1; j + 1 < chunks && extra > 0; ++j, --extra) ++split[j];
  if (extra > 0 && chunks > 1) { ++split[chunks - 1]; --extra; }
  if (extra > 0) { ++split[0]; --extra; }
  return split;
}

int stage_of_chunk(const Plan& plan, int chunk) {
  const int p = plan.parallel.pp;
  if (plan.parallel.pp_schedule == PipelineSchedule::zbv) return chunk < p ? chunk : 2 * p - 1 - chunk;
  return chunk % p;
}

std::vector<StageLayers> stage_layers(const Plan& plan) {
  const int p = plan.parallel.pp;
  const std::vector<int> split = chunk_layers(plan);
  const int first_moe = plan.model.moe ? plan.model.moe->dense_layers : plan.model.layers;
  std::vector<StageLayers> out(p);
  int start = 0;
  for (size_t j = 0; j < split.size(); ++j) {
    const int end = start + split[j];
    const int moe = std::max(0, end - std::max(start, first_moe));
    StageLayers& s = out[stage_of_chunk(plan, static_cast<int>(j))];
    s.moe += moe;
    s.dense += split[j] - moe;
    start = end;
  }
  return out;
}

double inflight_microbatches(PipelineSchedule schedule, int p, int v, long long m, int stage) {
  const double md = static_cast<double>(m);
  if (p == 1) return std::min(md, 1.0);  // no pipeline: gradient accumulation runs micro-batches one by one
  switch (schedule) {
    case PipelineSchedule::gpipe:
      return md;
    case PipelineSchedule::one_f_one_b:
      return std::min(md, static_cast<double>(p - stage));
    case PipelineSchedule::zb_h1:
      // Activations live until W. Stage s runs p - s - 1 warm-up forwards, then s forward/B pairs before its
      // first W, so every stage holds min(m, p) (Qi et al. 2023 §3.1: ZB-H1 "ensures all workers maintain the
      // same number of in-flight microbatches"); the simulator shows it (tests/simulator/test_bubbles.cpp).
      return std::min(md, static_cast<double>(p));
    case PipelineSchedule::interleaved: {
      const double warm = 2.0 * (p - stage - 1) + static_cast<double>(v - 1) * p + 1;
      return std::min(md * v, warm) / v;
    }
    case PipelineSchedule::zbv:
      return std::min(md, static_cast<double>(p));
  }
  return md;
}

}  // namespace paraplan::planner
