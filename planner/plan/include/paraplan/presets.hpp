#pragma once
// Built-in presets from data/models and data/hardware (compiled in).
#include <string>
#include <vector>

#include "paraplan/hardware.hpp"
#include "paraplan/model.hpp"

namespace paraplan::planner {

struct PresetInfo {
  std::string id;
  std::string name;
  std::string description;
  std::string source;
};

std::vector<PresetInfo> model_presets();
std::vector<PresetInfo> hardware_presets();
// Throw PlanError(field, id, "unknown preset ...; did you mean ...") for unknown ids.
ModelSpec model_preset(const std::string& id, const std::string& field = "model");
GpuSpec hardware_preset(const std::string& id, const std::string& field = "cluster.gpu");
bool is_model_preset(const std::string& id);

}  // namespace paraplan::planner
