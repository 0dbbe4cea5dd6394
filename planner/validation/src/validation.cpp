// Published runs -> plans -> predictions. Software settings per source (what the papers' Megatron-LM
// versions did, not knobs per row):
// - narayanan21-t1 (Narayanan et al. SC'21, Table 1): fp16 with fp16 gradients all-reduced after the
//   backward (Megatron-LM 2021 had no overlapped gradient reduction), hidden and attention dropout 0.1,
//   unfused-softmax attention without FlashAttention, full recompute, 1F1B; the table gives no
//   micro-batch size: 1 is assumed. Published TFLOP/s use Eq. 3's 96-coefficient FLOPs, from which the
//   step time is derived: t = F / (X * GPUs).
// - korthikanti22-t5 (Korthikanti et al. 2022, Table 5): same software generation, measured step times.
#include "paraplan/validation.hpp"

#include <cmath>

#include "paraplan/csv_row.hpp"
#include "paraplan/calibration.hpp"
#include "paraplan/error.hpp"
#include "paraplan/limits.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/presets.hpp"
#include "paraplan/timing.hpp"

namespace paraplan::planner {

namespace {

using csv::Row;

// Narayanan 2021 Eq. 3: F = 96 B s l h^2 (1 + s/(6h) + V/(16 l h)) per iteration.
double narayanan_flops(double B, double s, double l, double h, double V) {
  return 96 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h));
}

// A run of the table as the paper ran it; the model's shape columns must agree with the preset.
PublishedRun read_run(Row& row) {
  PublishedRun r;
  r.source = row.text("source");
  r.model = row.text("model");
  if (r.source.empty()) row.errors.add(row.field("source"), "", "is required");
  Plan& p = r.plan;
  try {
    p.model = model_preset(r.model, row.field("model"));
    p.cluster.gpu = hardware_preset(row.text("gpu"), row.field("gpu"));
  } catch (const PlanError& e) {
    for (const auto& v : e.violations()) row.errors.add(v.field, v.value, v.rule);
    return r;
  }
  const std::pair<const char*, int64_t> shape[] = {
      {"layers", p.model.layers}, {"hidden", p.model.hidden}, {"heads", p.model.heads}, {"vocab", p.model.vocab}};
  for (const auto& [k, expect] : shape)
    if (row.has(k) && row.integer(k, expect, 1, limits::kWidth) != expect)
      row.errors.add(row.field(k), row.text(k), "must be the preset's " + std::string(k) + " (" +
                                                    std::to_string(expect) + ")");
  p.training.seq_len = row.integer("seq", 1, 1, limits::kSeqLen);
  p.training.micro_batch = static_cast<int>(row.integer("micro_batch", 1, 1, limits::kDegree, false));
  p.training.global_batch = row.integer("global_batch", 1, 1, limits::kGlobalBatch);
  p.training.precision = row.choice("precision", Precision::fp16, {{"fp16", Precision::fp16}, {"bf16", Precision::bf16}});
  p.training.grad_dtype = GradDtype::fp16;
  p.training.recompute = row.choice("recompute", Recompute::none, {{"none", Recompute::none},
                                                                   {"selective", Recompute::selective},
                                                                   {"full", Recompute::full}});
  p.training.flash_attention = false;
  p.training.dropout = 0.1;
  p.parallel.tp = static_cast<int>(row.integer("tp", 1, 1, limits::kDegree));
  p.parallel.pp = static_cast<int>(row.integer("pp", 1, 1, limits::kDegree));
  p.parallel.dp = static_cast<int>(row.integer("dp", 1, 1, limits::kGpus));
  p.parallel.virtual_stages = static_cast<int>(row.integer("virtual_stages", 1, 1, limits::kDegree, false));
  p.parallel.pp_schedule = p.parallel.virtual_stages > 1 ? PipelineSchedule::interleaved : PipelineSchedule::one_f_one_b;
  p.parallel.sequence_parallel = row.choice("sequence_parallel", false, {{"false", false}, {"true", true}});
  p.parallel.dp_overlap = false;
  // Megatron-LM of 2021-22 blocks on every pipeline transfer (v2.6 schedules.py send_forward_recv_forward;
  // overlap_p2p_comm came in 2023): Korthikanti's interleaved rows wait for theirs.
  p.parallel.pp_comm_overlap = false;
  p.cluster.calibration = builtin_calibration("published");
  p.cluster.gpus = static_cast<int>(row.integer("gpus", 1, 1, limits::kGpus));
  r.published_step_s = row.positive("published_step_s");
  r.published_tflops_per_gpu = row.positive("published_tflops_per_gpu");
  if (r.published_step_s <= 0 && r.published_tflops_per_gpu <= 0)
    row.errors.add(row.field("published_step_s"), "", "or published_tflops_per_gpu must be given");
  r.reference_flops_per_step = narayanan_flops(static_cast<double>(p.training.global_batch), p.training.seq_len,
                                               p.model.layers, p.model.hidden, p.model.vocab);
  row.check_plan(p);
  return r;
}

}  // namespace

std::vector<PublishedRun> published_runs_from_csv(const std::string& text, const std::string& origin) {
  return csv::read_runs(text, origin, {"source", "model", "seq", "gpu", "gpus", "tp", "pp", "dp", "global_batch"},
                        read_run);
}

std::vector<PublishedRun> published_runs() {
  return published_runs_from_csv(csv::compiled_in("published-step-time"), "data/validation/published-step-time.csv");
}

}  // namespace paraplan::planner
