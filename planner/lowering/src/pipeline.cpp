#include "paraplan/pipeline.hpp"

#include <algorithm>

namespace paraplan::planner {

namespace {

// The even split: `layers / chunks` each, and the remainder one by one to the inner chunks
// (1 .. chunks-2) first, then the last, then the first.
struct EvenSplit {
  EvenSplit(int layers, int n_chunks)
      : chunks(n_chunks), base(layers / n_chunks), extra(layers % n_chunks), inner_extra(std::min(extra, std::max(0, n_chunks - 2))) {}
  int operator()(int j) const {  // layers of chunk j
    if (j > 0 && j + 1 < chunks) return base + (j <= inner_extra ? 1 : 0);
    if (chunks == 1) return base;
    if (j == chunks - 1) return base + (extra > inner_extra ? 1 : 0);
    return base + (extra > inner_extra + 1 ? 1 : 0);
  }
  int chunks, base, extra, inner_extra;
};

}  // namespace

std::vector<int> chunk_layers(const Plan& plan) {
  if (!plan.parallel.layer_split.empty()) return plan.parallel.layer_split;
  const int chunks = plan.parallel.chunks();
  const EvenSplit even(plan.model.layers, chunks);
  std::vector<int> split(chunks);
  for (int j = 0; j < chunks; ++j) split[j] = even(j);
  return split;
}

std::vector<StageLayers> stage_layers(const Plan& plan) {
  const int p = plan.parallel.pp;
  const int chunks = plan.parallel.chunks();
  const int layers = plan.model.layers;
  const bool explicit_split = !plan.parallel.layer_split.empty();
  // chunk_layers without its vector (the search calls this for every pipeline shape).
  const EvenSplit even(layers, chunks);
  auto chunk_size = [&](int j) { return explicit_split ? plan.parallel.layer_split[j] : even(j); };
  const int first_moe = plan.model.moe ? plan.model.moe->dense_layers : layers;
  std::vector<StageLayers> out(p);
  int start = 0;
  for (int j = 0; j < chunks; ++j) {
    const int n = chunk_size(j);
    const int end = start + n;
    const int moe = std::max(0, end - std::max(start, first_moe));
    StageLayers& s = out[stage_of_chunk(plan, j)];
    s.moe += moe;
    s.dense += n - moe;
    start = end;
  }
  return out;
}

double interleaved_warmup(int p, int v, int rank) {
  return 2.0 * (p - rank - 1) + static_cast<double>(v - 1) * p;
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
      const double warm = interleaved_warmup(p, v, stage) + 1;
      return std::min(md * v, warm) / v;
    }
    case PipelineSchedule::zbv:
      return std::min(md, static_cast<double>(p));
  }
  return md;
}

}  // namespace paraplan::planner
