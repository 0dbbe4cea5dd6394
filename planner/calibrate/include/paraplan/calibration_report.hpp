#pragma once
// `paraplan calibrate --report`: predicted against measured for every row — step times before and after
// calibration (and held out, when cross-validated), memory by category for executor runs — with mean,
// median and max |error| per kind of row. The data for the table, the CSV and the GUI's plot.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "paraplan/calibrate.hpp"

namespace paraplan::planner {

// The rows of `device` in `set` predicted before (the plan's own calibration) and with `after`.
std::vector<CalibratedRow> evaluate_rows(const MeasurementSet& set, const std::string& device,
                                         const Calibration& after);

// {"profile", "device", "rows": [{id, kind, what, label, measured_s, before_s, after_s, [held_out_s],
//   before_error, after_error, memory: [{category, predicted_bytes, measured_bytes}]}],
//  "summary": {"step_time": {kind: {"before", "after", ["held_out"]}}, "memory": {...}}}
// Errors are predicted / measured - 1. Memory rows: the executor run's worst rank per category.
nlohmann::json calibration_report(const Store& store, const std::vector<CalibratedRow>& rows, const Calibration& after,
                                  const std::string& device);

// The report's rows as CSV (one line per row, a header first).
std::string calibration_report_csv(const nlohmann::json& report);

}  // namespace paraplan::planner
