// The charts of `paraplan calibrate --report`: predicted against measured, before and after calibration,
// for step times, probes and memory (drawn by the GUI's Qt Charts code, demo_common.hpp's write_plot).
#include <algorithm>
#include <limits>

#include "calibration_plot.hpp"

namespace paraplan::cli {

using nlohmann::json;

namespace {

// The diagonal predicted = measured over the range of the points.
teach::Series diagonal(const std::vector<teach::Series>& series) {
  double lo = std::numeric_limits<double>::infinity(), hi = 0;
  for (const teach::Series& s : series)
    for (double v : s.x) lo = std::min(lo, v), hi = std::max(hi, v);
  if (!(hi > 0)) return {"predicted = measured", {}, {}};
  return {"predicted = measured", {lo, hi}, {lo, hi}};
}

void add_point(teach::Series& s, double x, double y) {
  if (x > 0 && y > 0) {  // log axes: a zero (no prediction) cannot be drawn
    s.x.push_back(x);
    s.y.push_back(y);
  }
}

teach::Chart scatter(const std::string& title, const std::string& unit, std::vector<teach::Series> series) {
  series.erase(std::remove_if(series.begin(), series.end(), [](const teach::Series& s) { return s.x.empty(); }),
               series.end());
  series.push_back(diagonal(series));
  teach::Chart c;
  c.title = title;
  c.x_label = "measured (" + unit + ", log scale)";
  c.y_label = "predicted (" + unit + ", log scale)";
  c.series = std::move(series);
  c.log_x = c.log_y = true;
  return c;
}

}  // namespace

std::vector<teach::Chart> calibration_report_charts(const json& report) {
  const std::string profile = report.value("profile", std::string("calibrated"));
  teach::Series step_before{"uncalibrated (plan's profile)", {}, {}, true}, step_after{"calibrated: " + profile, {}, {}, true},
      step_held{"held out (k-fold)", {}, {}, true};
  teach::Series probe_before{"uncalibrated", {}, {}, true}, probe_after{"calibrated: " + profile, {}, {}, true};
  teach::Series memory{"executor runs, worst rank, each category", {}, {}, true};
  for (const json& r : report["rows"]) {
    const double m = r["measured_s"].get<double>();
    const bool probe = r["kind"] == "probes";
    add_point(probe ? probe_before : step_before, m, r["before_s"].get<double>());
    add_point(probe ? probe_after : step_after, m, r["after_s"].get<double>());
    if (r.contains("held_out_s")) add_point(step_held, m, r["held_out_s"].get<double>());
    if (r.contains("memory"))
      for (const json& c : r["memory"])
        add_point(memory, c["measured_bytes"].get<double>() / (1024.0 * 1024 * 1024),
                  c["predicted_bytes"].get<double>() / (1024.0 * 1024 * 1024));
  }
  std::vector<teach::Chart> charts;
  if (!step_before.x.empty())
    charts.push_back(scatter("Step time: runs and imported rows", "s", {step_before, step_after, step_held}));
  if (!probe_before.x.empty())
    charts.push_back(scatter("Probes: one GEMM, kernel or collective", "s", {probe_before, probe_after}));
  if (!memory.x.empty())
    charts.push_back(scatter("Memory by category, GiB = 2^30 bytes (calibration moves times only)", "GiB", {memory}));
  return charts;
}

}  // namespace paraplan::cli
