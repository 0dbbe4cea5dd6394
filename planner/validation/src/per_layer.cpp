// Korthikanti et al. 2022 Table 4: one layer's forward and backward time of the 22B model under each
// recompute / sequence-parallel mode, against the time model's (validation.hpp).
#include <algorithm>

#include "paraplan/csv_row.hpp"
#include "paraplan/timing.hpp"
#include "paraplan/validation.hpp"

namespace paraplan::planner {

namespace {

// The 22B plan of Korthikanti's Table 5 (its first row), with the mode's recompute and SP.
Plan table5_22b() {
  for (const PublishedRun& r : published_runs())
    if (r.source == "korthikanti22-t5" && r.model == "gpt-22b") return r.plan;
  throw std::runtime_error("data/validation/published-step-time.csv has no korthikanti22-t5 gpt-22b row");
}

// One layer's forward and backward (with its recompute and exposed TP communication) of one micro-batch:
// the stage's times with all its layers and with half of them, the difference per layer (the embedding,
// the head and the loss cancel out).
std::pair<double, double> layer_times(Plan p) {
  const int layers = p.model.layers, half = layers / 2;
  const StageTime all = estimate_time(p).per_stage.at(0);
  p.model.layers = half;
  const StageTime part = estimate_time(p).per_stage.at(0);
  return {(all.fwd - part.fwd) / (layers - half), (all.bwd - part.bwd) / (layers - half)};
}

}  // namespace

std::vector<LayerTimeRow> korthikanti_table4(const Calibration* calibration) {
  const Plan base = table5_22b();
  std::vector<LayerTimeRow> out;
  csv::for_each_row(csv::compiled_in("korthikanti22-t4"), "data/validation/korthikanti22-t4.csv",
                    {"mode", "recompute", "sequence_parallel", "forward_ms", "backward_ms"}, [&](csv::Row& row, int) {
                      LayerTimeRow r;
                      r.mode = row.text("mode");
                      r.published_fwd_s = row.positive("forward_ms") * 1e-3;
                      r.published_bwd_s = row.positive("backward_ms") * 1e-3;
                      Plan p = base;
                      p.training.recompute = row.choice("recompute", Recompute::none,
                                                        {{"none", Recompute::none},
                                                         {"selective", Recompute::selective},
                                                         {"full", Recompute::full}});
                      p.parallel.sequence_parallel =
                          row.choice("sequence_parallel", false, {{"false", false}, {"true", true}});
                      if (calibration) p.cluster.calibration = *calibration;
                      std::tie(r.predicted_fwd_s, r.predicted_bwd_s) = layer_times(p);
                      out.push_back(r);
                    });
  return out;
}

}  // namespace paraplan::planner
