// One device's measurements -> a fitted profile, its k-fold cross-validated error and its document.
#include "paraplan/calibrate.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <map>
#include <set>

#include <fmt/format.h>

#include "paraplan/error.hpp"
#include "paraplan/format.hpp"

namespace paraplan::planner {

using nlohmann::json;

namespace {

std::string utc_now() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::vector<Measurement> rows_of(const MeasurementSet& set, const std::string& device) {
  std::vector<Measurement> out;
  for (const Measurement& m : set.rows)
    if (m.device == device) out.push_back(m);
  return out;
}

std::string estimator(const FitOptions& o) { return o.robust ? "Huber's robust fit" : "least squares"; }

}  // namespace

ErrorSummary summarize_errors(const std::vector<double>& errors) {
  ErrorSummary s;
  s.rows = static_cast<int>(errors.size());
  if (errors.empty()) return s;
  std::vector<double> a;
  for (double e : errors) a.push_back(std::fabs(e));
  std::sort(a.begin(), a.end());
  for (double e : a) s.mean_abs += e;
  s.mean_abs /= static_cast<double>(a.size());
  const size_t n = a.size();
  s.median_abs = n % 2 ? a[n / 2] : (a[n / 2 - 1] + a[n / 2]) / 2;
  s.max_abs = a.back();
  s.p90_abs = a[static_cast<size_t>(std::ceil(0.9 * static_cast<double>(n))) - 1];
  return s;
}

json summary_json(const ErrorSummary& s) {
  return {{"rows", s.rows},
          {"mean_abs_error", s.mean_abs},
          {"median_abs_error", s.median_abs},
          {"p90_abs_error", s.p90_abs},
          {"max_abs_error", s.max_abs}};
}

std::string choose_device(const MeasurementSet& set, const std::string& asked) {
  std::map<std::string, int> devices;
  for (const Measurement& m : set.rows) ++devices[m.device];
  if (set.rows.empty()) {
    std::string why;
    for (size_t i = 0; i < set.skipped.size() && i < 8; ++i) why += "; " + set.skipped[i];
    if (set.skipped.size() > 8) why += "; and " + std::to_string(set.skipped.size() - 8) + " more";
    throw PlanError("--db", "", "holds no usable measurement of the kinds asked for (--use): a succeeded `paraplan run`, "
                                "a `paraplan probe` or rows of `paraplan import`" + why);
  }
  std::string list;
  for (const auto& [d, n] : devices) list += (list.empty() ? "" : ", ") + d + " (" + std::to_string(n) + " rows)";
  if (!asked.empty()) {
    if (!devices.count(asked)) throw PlanError("--gpu", asked, "has no measurements in the store; it holds " + list);
    return asked;
  }
  if (devices.size() > 1)
    throw PlanError("--gpu", "", "must name the device to calibrate: the store holds measurements of " + list);
  return devices.begin()->first;
}

Calibration calibration_before(const Measurement& m) {
  if (m.kind == MeasurementKind::probe || m.calibration.empty()) return {};
  try {
    return load_calibration(m.calibration);
  } catch (const std::exception&) {
    return {};  // a profile file that is gone: the datasheet values
  }
}

CalibrationOutcome calibrate(const MeasurementSet& set, const CalibrateOptions& options, const std::string& store_path) {
  CalibrationOutcome out;
  out.device = choose_device(set, options.device);
  std::vector<Measurement> rows = rows_of(set, out.device);
  const GpuSpec gpu = rows.front().plan.cluster.gpu;
  const auto say = [&](const std::string& line) {
    if (options.progress) options.progress(line);
  };
  const auto used = [&](const std::vector<Measurement>& v) {
    const RowsUsed fitted = rows_used(v, options.fit);
    const auto n = std::count_if(v.begin(), v.end(), fitted);
    return std::to_string(n);
  };
  say("fitting " + used(rows) + " row(s) of " + out.device + "...");
  out.fit = fit_parameters(rows, gpu, options.fit);
  if (out.fit.calibration.params.empty())
    throw PlanError("--use", "", "the " + std::to_string(rows.size()) + " measurement(s) of " + out.device +
                                     " constrain no parameter of the time model");

  // k-fold cross-validation: measurement j is in fold j mod k, a run's compute and optimizer rows in its
  // step row's fold (held out together: one run's rows share its noise); each fold is predicted by a fit
  // without it.
  std::vector<size_t> group(rows.size());
  size_t groups = 0;
  for (size_t i = 0; i < rows.size(); ++i)
    group[i] = i > 0 && is_part_of_step(rows[i]) && rows[i].run_id == rows[i - 1].run_id ? group[i - 1] : groups++;
  const int k = std::min<int>(options.folds, static_cast<int>(groups));
  std::vector<std::optional<double>> held(rows.size());
  if (k >= 2) {
    out.folds = k;
    const auto fold_of = [&](size_t i) { return static_cast<int>(group[i] % static_cast<size_t>(k)); };
    for (int f = 0; f < k; ++f) {
      std::vector<Measurement> train;
      for (size_t i = 0; i < rows.size(); ++i)
        if (fold_of(i) != f) train.push_back(rows[i]);
      say("cross-validation: fold " + std::to_string(f + 1) + " of " + std::to_string(k) + ", fitting " +
          used(train) + " row(s)...");
      const FitResult part = fit_parameters(train, gpu, options.fit);
      for (size_t i = 0; i < rows.size(); ++i)
        if (fold_of(i) == f) held[i] = predict(rows[i], part.calibration);
    }
  }

  out.profile = out.fit.calibration;
  out.profile.name = options.name;
  std::map<std::string, int> by_kind;
  for (const Measurement& m : rows) ++by_kind[row_kind(m)];
  std::string counts;
  for (const auto& [kind, n] : by_kind) counts += (counts.empty() ? "" : ", ") + std::to_string(n) + " " + kind;
  for (CalibratedParam& p : out.profile.params)
    for (const FittedParam& fp : out.fit.params)
      if (fp.field->name == p.name)
        p.note = std::string(fp.source == ParamSource::measured ? "measured by probes" : "fitted") + " on " +
                 std::to_string(fp.rows) + " rows; +/-" + text::percent(fp.rel_sigma) + " (1 sigma); datasheet " +
                 fmt::format("{:.4g}", fp.datasheet);

  // The rows before, after and held out, and their summaries per kind.
  std::map<std::string, std::vector<double>> before, after, held_out;
  json jrows = json::array();
  for (size_t i = 0; i < rows.size(); ++i) {
    const Measurement& m = rows[i];
    CalibratedRow r;
    r.before_s = predict(m, calibration_before(m));
    r.after_s = predict(m, out.profile);
    r.held_out_s = held[i];
    const std::string kind = row_kind(m);
    before[kind].push_back(r.before_s / m.measured_s - 1);
    after[kind].push_back(r.after_s / m.measured_s - 1);
    if (r.held_out_s) held_out[kind].push_back(*r.held_out_s / m.measured_s - 1);
    json row = {{"id", m.id}, {"kind", kind}, {"what", m.what}, {"label", m.label}, {"measured_s", m.measured_s},
                {"before_s", r.before_s}, {"after_s", r.after_s}, {"fitted", out.fit.used(m)}};
    if (r.held_out_s) row["held_out_s"] = *r.held_out_s;
    jrows.push_back(row);
    out.rows.push_back(r);
  }
  // The CalibratedRow pointers refer to `rows`, which the outcome keeps alive through `set` only when
  // the caller keeps it; point them at the caller's set instead.
  for (size_t i = 0, j = 0; i < set.rows.size() && j < out.rows.size(); ++i)
    if (set.rows[i].device == out.device) out.rows[j++].m = &set.rows[i];

  json cv = json::object(), err_before = json::object(), err_after = json::object();
  for (const auto& [kind, e] : held_out) cv[kind] = summary_json(summarize_errors(e));
  for (const auto& [kind, e] : before) err_before[kind] = summary_json(summarize_errors(e));
  for (const auto& [kind, e] : after) err_after[kind] = summary_json(summarize_errors(e));

  std::set<std::string> hardware, software;
  for (const Measurement& m : rows) {
    if (!m.hardware.empty() && m.hardware != "{}") hardware.insert(m.hardware);
    if (!m.software.empty() && m.software != "{}") software.insert(m.software);
  }
  out.profile.provenance = "paraplan calibrate on " + out.device + ": " + counts + (store_path.empty() ? "" : " of " + store_path) +
                           "; " + estimator(options.fit) + " on log(predicted/measured), " +
                           (out.folds ? std::to_string(out.folds) + "-fold cross-validated" : "not cross-validated") +
                           " (the file's cross_validation)";
  json params = json::object();
  for (const FittedParam& fp : out.fit.params)
    params[fp.field->name] = {{"value", fp.value},     {"datasheet", fp.datasheet},  {"source", to_string(fp.source)},
                              {"rows", fp.rows},       {"rel_sigma", fp.rel_sigma}, {"unit", fp.field->unit}};
  out.profile.device = out.device;
  Calibration stored = out.profile;
  if (options.as_factors)
    for (CalibratedParam& p : stored.params)
      for (const FittedParam& fp : out.fit.params)
        if (fp.field->name == p.name && fp.datasheet > 0) {
          p.value /= fp.datasheet;
          p.is_factor = true;
        }
  json doc = calibration_to_json(stored);
  doc["description"] = options.description.empty()
                           ? "Time-model parameters of " + out.device + " fitted by `paraplan calibrate`"
                           : options.description;
  doc["device"] = out.device;
  doc["created_at"] = utc_now();
  if (!store_path.empty()) doc["store"] = store_path;
  doc["hardware"] = json::array();
  for (const std::string& h : hardware) doc["hardware"].push_back(json::parse(h, nullptr, false));
  doc["software"] = json::array();
  for (const std::string& s : software) doc["software"].push_back(json::parse(s, nullptr, false));
  doc["fit"] = {{"method", estimator(options.fit) +
                               " on log(predicted/measured) over log parameters within their ranges: a Nelder-Mead "
                               "simplex search, then Levenberg-Marquardt; each kind of row weighing the same in total, "
                               "then each kind reweighted by its scatter and refitted" +
                               (options.fit.robust ? std::string(", then Huber's weights (1.345 robust standard "
                                                                 "deviations) by iteratively reweighted least squares")
                                                   : std::string())},
                {"estimator", options.fit.robust ? kHuberEstimator : "least squares"},
                {"iterations", out.fit.iterations},
                {"converged", out.fit.converged},
                {"rms_log_residual", out.fit.rms_log_residual},
                {"parameters", params},
                {"error_before", err_before},
                {"error_after", err_after},
                {"dropped", out.fit.dropped},
                {"skipped", set.skipped}};
  if (options.rows_in_document) doc["fit"]["rows"] = jrows;
  doc["cross_validation"] = {{"folds", out.folds}, {"held_out", cv}};
  out.document = doc;
  return out;
}

}  // namespace paraplan::planner
