// Leave-one-source-out on the published runs: the fit of fit.hpp on all sources but one, predicting it;
// and leave-one-row-out within one source.
#include "paraplan/held_out.hpp"

#include <cmath>
#include <map>

#include "paraplan/error.hpp"
#include "paraplan/fit.hpp"
#include "paraplan/measurements.hpp"

namespace paraplan::planner {

namespace {

Measurement measurement_of(const ValidationRow& v) {
  Measurement m;
  m.kind = MeasurementKind::imported;
  m.what = "step";
  m.device = v.run.plan.cluster.gpu.id;
  m.plan = v.run.plan;
  m.measured_s = v.published_step_s;
  m.id = v.run.source + ":" + std::to_string(v.run.line);
  m.label = v.run.model;
  m.calibration = v.run.plan.cluster.calibration.name;
  return m;
}

// The fitted parameters on top of the row's own profile (its other parameters stay as they were).
Calibration layered(const Calibration& own, const Calibration& fitted) {
  Calibration c = own;
  for (const CalibratedParam& f : fitted.params) {
    std::erase_if(c.params, [&](const CalibratedParam& p) { return p.name == f.name; });
    c.params.push_back(f);
  }
  return c;
}

// Mean and max |predicted / measured - 1| of `rows` under a fit.
std::pair<double, double> errors(const std::vector<Measurement>& rows, const Calibration& fitted) {
  double sum = 0, worst = 0;
  for (const Measurement& m : rows) {
    const double e = std::fabs(predict(m, layered(m.plan.cluster.calibration, fitted)) / m.measured_s - 1);
    sum += e;
    worst = std::max(worst, e);
  }
  return {rows.empty() ? 0 : sum / static_cast<double>(rows.size()), worst};
}

// The device every row shares (a fit is of one device).
const GpuSpec& one_device(const std::vector<PublishedRun>& runs, const char* option) {
  const GpuSpec& gpu = runs.front().plan.cluster.gpu;
  for (const PublishedRun& r : runs)
    if (r.plan.cluster.gpu.id != gpu.id)
      throw PlanError(option, r.source + " on " + r.plan.cluster.gpu.id,
                      "all rows must be of one device (" + gpu.id + ") to share a fit");
  return gpu;
}

}  // namespace

std::vector<RowHeldOut> leave_one_row_out(const std::vector<PublishedRun>& runs, const FitOptions& options) {
  if (runs.size() < 2)
    throw PlanError("--held-out", std::to_string(runs.size()) + " row(s)",
                    "needs at least two rows: one is held out while the others are fitted");
  const GpuSpec& gpu = one_device(runs, "--held-out");
  std::vector<Measurement> all;
  const std::vector<ValidationRow> rows = validate_runs(runs);
  for (const ValidationRow& v : rows) all.push_back(measurement_of(v));
  const FitResult everything = fit_parameters(all, gpu, options);
  std::vector<RowHeldOut> out;
  for (size_t i = 0; i < all.size(); ++i) {
    std::vector<Measurement> others = all;
    others.erase(others.begin() + static_cast<std::ptrdiff_t>(i));
    const FitResult without = fit_parameters(others, gpu, options);
    RowHeldOut r;
    r.run = rows[i].run;
    r.published_step_s = all[i].measured_s;
    r.in_fit_step_s = predict(all[i], layered(all[i].plan.cluster.calibration, everything.calibration));
    r.held_out_step_s = predict(all[i], layered(all[i].plan.cluster.calibration, without.calibration));
    r.in_fit_error = r.in_fit_step_s / r.published_step_s - 1;
    r.held_out_error = r.held_out_step_s / r.published_step_s - 1;
    out.push_back(r);
  }
  return out;
}

std::vector<SourceHeldOut> leave_one_source_out(const std::vector<PublishedRun>& runs,
                                                const std::set<std::string>& fields) {
  std::map<std::string, std::vector<Measurement>> by_source;
  std::vector<Measurement> all;
  for (const ValidationRow& v : validate_runs(runs)) {
    all.push_back(measurement_of(v));
    by_source[v.run.source].push_back(all.back());
  }
  if (by_source.size() < 2)
    throw PlanError("--held-out", std::to_string(by_source.size()) + " source(s)",
                    "needs rows of at least two sources: one is held out while the others are fitted");
  const GpuSpec& gpu = one_device(runs, "--held-out");
  FitOptions options;
  options.fields = fields;
  const FitResult everything = fit_parameters(all, gpu, options);
  std::vector<SourceHeldOut> out;
  for (const auto& [source, rows] : by_source) {
    std::vector<Measurement> others;
    for (const Measurement& m : all)
      if (m.id.rfind(source + ":", 0) != 0) others.push_back(m);
    const FitResult without = fit_parameters(others, gpu, options);
    SourceHeldOut s;
    s.source = source;
    s.rows = static_cast<int>(rows.size());
    s.in_fit_mean_abs_error = errors(rows, everything.calibration).first;
    std::tie(s.held_out_mean_abs_error, s.held_out_max_abs_error) = errors(rows, without.calibration);
    out.push_back(s);
  }
  return out;
}

}  // namespace paraplan::planner
