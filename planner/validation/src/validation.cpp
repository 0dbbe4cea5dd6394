// Published runs -> plans -> predictions. Software settings per source (what the papers' Megatron-LM
// versions did, not knobs per row):
// - narayanan21-t1 (Narayanan et al. SC'21, Table 1): fp16 with fp16 gradients all-reduced after the
//   backward (Megatron-LM 2021 had no overlapped gradient reduction), hidden and attention dropout 0.1,
//   unfused-softmax attention without FlashAttention, full recompute, 1F1B; the table gives no
//   micro-batch size: 1 is assumed. Published TFLOP/s use Eq. 3's 96-coefficient FLOPs, from which the
//   step time is derived: t = F / (X * GPUs).
// - korthikanti22-t5 (Korthikanti et al. 2022, Table 5): same software generation, measured step times.
#include "paraplan/validation.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "paraplan/calibration.hpp"
#include "paraplan/embedded_data.hpp"
#include "paraplan/error.hpp"
#include "paraplan/presets.hpp"
#include "paraplan/timing.hpp"

namespace paraplan::planner {

namespace {

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> cells;
  std::stringstream ss(line);
  std::string c;
  while (std::getline(ss, c, ',')) cells.push_back(c);
  if (!line.empty() && line.back() == ',') cells.emplace_back();
  return cells;
}

// Narayanan 2021 Eq. 3: F = 96 B s l h^2 (1 + s/(6h) + V/(16 l h)) per iteration.
double narayanan_flops(double B, double s, double l, double h, double V) {
  return 96 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h));
}

}  // namespace

std::vector<PublishedRun> published_runs() {
  const char* text = nullptr;
  for (const auto& f : embedded::validation())
    if (f.id && std::string(f.id) == "published-step-time") text = f.text;
  if (!text) throw std::runtime_error("data/validation/published-step-time.csv is not compiled in");
  std::stringstream in(text);
  std::string line;
  std::vector<std::string> header;
  std::vector<PublishedRun> runs;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto cells = split(line);
    if (header.empty()) {
      header = cells;
      continue;
    }
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < header.size() && i < cells.size(); ++i) row[header[i]] = cells[i];
    auto num = [&](const char* k) { return row[k].empty() ? 0.0 : std::stod(row[k]); };
    PublishedRun r;
    r.source = row["source"];
    r.model = row["model"];
    Plan& p = r.plan;
    p.model = model_preset(r.model);
    p.training.seq_len = static_cast<int64_t>(num("seq"));
    p.training.micro_batch = row["micro_batch"].empty() ? 1 : static_cast<int>(num("micro_batch"));
    p.training.global_batch = static_cast<int64_t>(num("global_batch"));
    p.training.precision = row["precision"] == "bf16" ? Precision::bf16 : Precision::fp16;
    p.training.grad_dtype = GradDtype::fp16;
    p.training.recompute = row["recompute"] == "full" ? Recompute::full
                           : row["recompute"] == "selective" ? Recompute::selective : Recompute::none;
    p.training.flash_attention = false;
    p.training.dropout = 0.1;
    p.parallel.tp = static_cast<int>(num("tp"));
    p.parallel.pp = static_cast<int>(num("pp"));
    p.parallel.dp = static_cast<int>(num("dp"));
    p.parallel.virtual_stages = static_cast<int>(num("virtual_stages"));
    p.parallel.pp_schedule = p.parallel.virtual_stages > 1 ? PipelineSchedule::interleaved : PipelineSchedule::one_f_one_b;
    p.parallel.sequence_parallel = row["sequence_parallel"] == "true";
    p.parallel.dp_overlap = false;
    p.cluster.gpu = hardware_preset(row["gpu"]);
    p.cluster.calibration = builtin_calibration("published");
    p.cluster.gpus = static_cast<int>(num("gpus"));
    r.published_step_s = num("published_step_s");
    r.published_tflops_per_gpu = num("published_tflops_per_gpu");
    r.reference_flops_per_step = narayanan_flops(static_cast<double>(p.training.global_batch), p.training.seq_len,
                                                 p.model.layers, p.model.hidden, p.model.vocab);
    runs.push_back(r);
  }
  return runs;
}

std::vector<ValidationRow> validate_runs(const std::vector<PublishedRun>& runs) {
  std::vector<ValidationRow> out;
  for (const PublishedRun& r : runs) {
    ValidationRow v;
    v.run = r;
    v.predicted_step_s = estimate_time(r.plan).step_s;
    v.published_step_s = r.published_step_s > 0
                             ? r.published_step_s
                             : r.reference_flops_per_step / (r.published_tflops_per_gpu * 1e12 * r.plan.cluster.gpus);
    v.error = (v.predicted_step_s - v.published_step_s) / v.published_step_s;
    out.push_back(v);
  }
  return out;
}

std::vector<SourceSummary> summarize(const std::vector<ValidationRow>& rows) {
  std::vector<SourceSummary> out;
  for (const ValidationRow& r : rows) {
    auto it = std::find_if(out.begin(), out.end(), [&](const SourceSummary& s) { return s.source == r.run.source; });
    if (it == out.end()) {
      out.push_back({r.run.source});
      it = out.end() - 1;
    }
    it->rows++;
    it->mean_abs_error += std::fabs(r.error);
    it->max_abs_error = std::max(it->max_abs_error, std::fabs(r.error));
  }
  for (auto& s : out) s.mean_abs_error /= s.rows;
  return out;
}

}  // namespace paraplan::planner
