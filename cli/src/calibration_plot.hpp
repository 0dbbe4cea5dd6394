#pragma once
// The charts of `paraplan calibrate --report` (calibration_plot.cpp), from calibration_report's JSON.
#include <nlohmann/json.hpp>
#include <vector>

#include "paraplan/teach/chart.hpp"

namespace paraplan::cli {

// Predicted against measured on log-log axes with the diagonal: step times of runs and imported rows
// (uncalibrated, calibrated, held out), probes, and memory per category. Kinds with no rows are left out.
std::vector<teach::Chart> calibration_report_charts(const nlohmann::json& report);

}  // namespace paraplan::cli
