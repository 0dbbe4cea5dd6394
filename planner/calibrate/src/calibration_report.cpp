// Predicted against measured, per row and summarized (calibration_report.hpp).
#include "paraplan/calibration_report.hpp"

#include <cmath>
#include <map>
#include <sstream>

namespace paraplan::planner {

using nlohmann::json;

namespace {

json summary_json(const std::vector<double>& errors) { return summary_json(summarize_errors(errors)); }

// The worst rank's bytes per category: the largest measured value and the prediction beside it.
json memory_rows(const Store& store, int64_t run_id) {
  std::map<std::string, std::pair<double, double>> worst;  // category -> (measured, predicted)
  for (const MemoryRecord& m : store.memory(run_id)) {
    auto it = worst.find(m.category);
    if (it == worst.end() || m.measured_bytes > it->second.first)
      worst[m.category] = {m.measured_bytes, m.predicted_bytes.value_or(0)};
  }
  json out = json::array();
  for (const auto& [cat, v] : worst)
    out.push_back({{"category", cat}, {"measured_bytes", v.first}, {"predicted_bytes", v.second}});
  return out;
}

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

}  // namespace

std::vector<CalibratedRow> evaluate_rows(const MeasurementSet& set, const std::string& device,
                                         const Calibration& after) {
  std::vector<CalibratedRow> out;
  for (const Measurement& m : set.rows) {
    if (m.device != device) continue;
    CalibratedRow r;
    r.m = &m;
    r.before_s = predict(m, calibration_before(m));
    r.after_s = predict(m, after);
    out.push_back(r);
  }
  return out;
}

json calibration_report(const Store& store, const std::vector<CalibratedRow>& rows, const Calibration& after,
                        const std::string& device) {
  json jrows = json::array();
  std::map<std::string, std::vector<double>> before, aft, held;
  std::vector<double> memory_errors;
  for (const CalibratedRow& r : rows) {
    const Measurement& m = *r.m;
    const std::string kind = row_kind(m);
    json row = {{"id", m.id},
                {"kind", kind},
                {"what", m.what},
                {"label", m.label},
                {"measured_s", m.measured_s},
                {"before_s", r.before_s},
                {"after_s", r.after_s},
                {"before_error", r.before_s / m.measured_s - 1},
                {"after_error", r.after_s / m.measured_s - 1}};
    before[kind].push_back(r.before_s / m.measured_s - 1);
    aft[kind].push_back(r.after_s / m.measured_s - 1);
    if (r.held_out_s) {
      row["held_out_s"] = *r.held_out_s;
      held[kind].push_back(*r.held_out_s / m.measured_s - 1);
    }
    if (m.kind == MeasurementKind::run && m.what == "step") {
      row["memory"] = memory_rows(store, m.run_id);
      for (const json& c : row["memory"])
        if (c["measured_bytes"].get<double>() > 0)
          memory_errors.push_back(c["predicted_bytes"].get<double>() / c["measured_bytes"].get<double>() - 1);
    }
    jrows.push_back(row);
  }
  json step = json::object();
  for (const auto& [kind, e] : before) {
    step[kind] = {{"before", summary_json(e)}, {"after", summary_json(aft[kind])}};
    if (held.count(kind)) step[kind]["held_out"] = summary_json(held[kind]);
  }
  return {{"profile", after.origin.empty() ? after.name : after.origin},
          {"device", device},
          {"rows", jrows},
          {"summary", {{"step_time", step}, {"memory", summary_json(memory_errors)}}}};
}

std::string calibration_report_csv(const json& report) {
  std::ostringstream out;
  out << "id,kind,what,label,measured_s,before_s,after_s,held_out_s,before_error,after_error\n";
  for (const json& r : report["rows"]) {
    out << csv_cell(r["id"].get<std::string>()) << "," << r["kind"].get<std::string>() << ","
        << r["what"].get<std::string>() << "," << csv_cell(r["label"].get<std::string>()) << ","
        << r["measured_s"].get<double>() << "," << r["before_s"].get<double>() << "," << r["after_s"].get<double>()
        << "," << (r.contains("held_out_s") ? std::to_string(r["held_out_s"].get<double>()) : "") << ","
        << r["before_error"].get<double>() << "," << r["after_error"].get<double>() << "\n";
  }
  return out.str();
}

}  // namespace paraplan::planner
