// Predictions of the published runs and their errors: per source (mean, p90, max |error|, bias) and per
// plan shape (the groups a systematic error shows in).
#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "paraplan/calibration.hpp"
#include "paraplan/timing.hpp"
#include "paraplan/validation.hpp"

namespace paraplan::planner {

std::vector<PublishedRun> all_validation_runs() {
  std::vector<PublishedRun> runs = published_runs();
  for (PublishedRun& r : vtrain_runs()) runs.push_back(std::move(r));
  for (PublishedRun& r : mbridge_runs()) runs.push_back(std::move(r));
  for (PublishedRun& r : mbridge_held_out_runs()) runs.push_back(std::move(r));
  return runs;
}

TrackRecord moe_track_record() {
  static const TrackRecord record = [] {
    TrackRecord t;
    std::vector<PublishedRun> moe;  // vTrain's GPT rows hold none: not read (1,440 plans to build)
    for (auto source : {published_runs, mbridge_runs, mbridge_held_out_runs})
      for (PublishedRun& r : source())
        if (r.plan.model.moe) moe.push_back(std::move(r));
    bool first = true;
    for (const ValidationRow& v : validate_runs(moe)) {
      ++t.rows;
      t.too_fast += v.error < 0;
      t.in_no_fit += v.run.in_no_fit || fitted_on_another_gpu(v.run.plan.cluster.gpu, v.run.plan.cluster.calibration);
      t.min_error = first ? v.error : std::min(t.min_error, v.error);
      t.max_error = first ? v.error : std::max(t.max_error, v.error);
      t.mean_abs_error += std::abs(v.error);
      first = false;
      if (std::find(t.sources.begin(), t.sources.end(), v.run.source) == t.sources.end()) t.sources.push_back(v.run.source);
    }
    if (t.rows > 0) t.mean_abs_error /= t.rows;
    return t;
  }();
  return record;
}

std::vector<ValidationRow> validate_runs(const std::vector<PublishedRun>& runs, const Calibration* calibration) {
  std::vector<ValidationRow> out;
  out.reserve(runs.size());
  for (const PublishedRun& r : runs) {
    ValidationRow v;
    v.run = r;
    if (calibration) v.run.plan.cluster.calibration = *calibration;
    v.predicted_step_s = estimate_time(v.run.plan).step_s;
    v.published_step_s = r.published_step_s > 0
                             ? r.published_step_s
                             : r.reference_flops_per_step / (r.published_tflops_per_gpu * 1e12 * r.plan.cluster.gpus);
    v.error = (v.predicted_step_s - v.published_step_s) / v.published_step_s;
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<SourceSummary> summarize(const std::vector<ValidationRow>& rows) {
  std::vector<SourceSummary> out;
  std::map<std::string, std::vector<double>> abs_errors;
  for (const ValidationRow& r : rows) {
    auto it = std::find_if(out.begin(), out.end(), [&](const SourceSummary& s) { return s.source == r.run.source; });
    if (it == out.end()) {
      out.push_back({r.run.source});
      it = out.end() - 1;
    }
    it->rows++;
    it->mean_abs_error += std::fabs(r.error);
    it->mean_error += r.error;
    it->max_abs_error = std::max(it->max_abs_error, std::fabs(r.error));
    abs_errors[r.run.source].push_back(std::fabs(r.error));
  }
  for (auto& s : out) {
    s.mean_abs_error /= s.rows;
    s.mean_error /= s.rows;
    auto& e = abs_errors[s.source];
    std::sort(e.begin(), e.end());
    // nearest rank: the smallest |error| with at least 90 % of the rows at or below it
    s.p90_abs_error = e[static_cast<size_t>(std::ceil(0.9 * static_cast<double>(e.size()))) - 1];
  }
  return out;
}

std::vector<GroupBias> bias_by_shape(const std::vector<ValidationRow>& rows) {
  std::vector<GroupBias> out;
  std::map<std::pair<std::string, std::string>, std::pair<int, long long>> order;  // field rank, value
  auto add = [&](const ValidationRow& r, int field, const char* name, long long value) {
    const std::string group = std::string(name) + "=" + std::to_string(value);
    order[{r.run.source, group}] = {field, value};
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const GroupBias& g) { return g.source == r.run.source && g.group == group; });
    if (it == out.end()) {
      out.push_back({r.run.source, group});
      it = out.end() - 1;
    }
    it->rows++;
    it->mean_error += r.error;
    it->mean_abs_error += std::fabs(r.error);
  };
  for (const ValidationRow& r : rows) {
    const Plan& p = r.run.plan;
    add(r, 0, "hidden", p.model.hidden);
    add(r, 1, "micro_batch", p.training.micro_batch);
    add(r, 2, "tp", p.parallel.tp);
    add(r, 3, "pp", p.parallel.pp);
    add(r, 4, "dp", p.parallel.dp);
  }
  std::stable_sort(out.begin(), out.end(), [&](const GroupBias& a, const GroupBias& b) {
    if (a.source != b.source) return a.source < b.source;
    return order[{a.source, a.group}] < order[{b.source, b.group}];
  });
  for (auto& g : out) {
    g.mean_error /= g.rows;
    g.mean_abs_error /= g.rows;
  }
  return out;
}

}  // namespace paraplan::planner
