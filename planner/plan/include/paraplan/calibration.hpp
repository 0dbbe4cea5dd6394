#pragma once
// Calibration profiles: the time model's parameters (the Efficiency fields of a GPU) as fitted or
// measured on real runs, with their provenance. Built-in profiles live in data/calibration/*.json; any
// file in the same format can be named instead (cluster.calibration, --calibration). "none" uses the
// hardware data as it is.
//
// A profile file:
//   {"name": "...", "description": "...", "provenance": "...",
//    "parameters": {"gemm": {"factor": 0.879, "source": "fitted", "note": "..."},
//                   "kernel_overhead_s": {"value": 4.1e-6, "source": "measured"}, ...},
//    ... any further fields (fit rows, residuals, cross-validation) are kept but not read here}
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "paraplan/hardware.hpp"

namespace paraplan::planner {

// The parameters a profile may set: every Efficiency field, with its unit and meaning.
struct EfficiencyField {
  const char* name;
  double Efficiency::*member;
  const char* unit;     // "fraction of peak", "s", ...
  const char* meaning;
  double min = 0, max = 1;  // the range a hardware file may give (data/hardware/*.json "efficiency")
};
const std::vector<EfficiencyField>& efficiency_fields();

// A built-in profile by name, or a profile file when `name_or_path` ends in .json; throws PlanError naming
// `field` for unknown names, unreadable files and malformed profiles.
Calibration load_calibration(const std::string& name_or_path, const std::string& field = "cluster.calibration",
                             const std::string& base_dir = ".");
Calibration builtin_calibration(const std::string& name, const std::string& field = "cluster.calibration");
std::vector<std::string> builtin_calibration_names();
// Parses a profile document; `origin` names it in errors and becomes Calibration::origin.
Calibration calibration_from_json(const nlohmann::json& doc, const std::string& origin, const std::string& field);
nlohmann::json calibration_to_json(const Calibration& c);

// The efficiencies the time model uses: the hardware's values with the profile's applied.
Efficiency effective_efficiency(const GpuSpec& gpu, const Calibration& cal);

// Whether `cal` names a device it was fitted on (its file's "device") and that is not `gpu`: its figures,
// and the held-out errors measured on its rows, are of another GPU's runs.
bool fitted_on_another_gpu(const GpuSpec& gpu, const Calibration& cal);
// The built-in profiles fitted on `device`'s rows (their file's "device"), e.g. "mbridge-h100" for
// h100-sxm-80gb: what a prediction made with another GPU's profile can point to.
std::vector<std::string> builtin_calibrations_of(const std::string& device);
// Where each parameter of effective_efficiency comes from, in efficiency_fields() order.
std::vector<ParamSource> parameter_sources(const Calibration& cal);

}  // namespace paraplan::planner
