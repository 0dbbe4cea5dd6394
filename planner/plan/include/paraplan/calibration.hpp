#pragma once
// Built-in calibrations live in data/calibration/*.json; "none" uses the hardware ceilings as they are.
#include <string>
#include <vector>

#include "paraplan/hardware.hpp"

namespace paraplan::planner {

// A built-in calibration by name; throws PlanError naming `field` for unknown names.
Calibration builtin_calibration(const std::string& name, const std::string& field = "cluster.calibration");
std::vector<std::string> builtin_calibration_names();
// The efficiencies the time model uses: hardware ceilings x calibration factors.
Efficiency effective_efficiency(const GpuSpec& gpu, const Calibration& cal);

}  // namespace paraplan::planner
