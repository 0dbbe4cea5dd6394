#include "paraplan/calibration.hpp"

#include <nlohmann/json.hpp>

#include "paraplan/embedded_data.hpp"
#include "paraplan/error.hpp"

namespace paraplan::planner {

std::vector<std::string> builtin_calibration_names() {
  std::vector<std::string> names{"none"};
  for (const auto& f : embedded::calibration())
    if (f.id) names.push_back(f.id);
  return names;
}

Calibration builtin_calibration(const std::string& name, const std::string& field) {
  if (name == "none") return {};
  for (const auto& f : embedded::calibration()) {
    if (!f.id || name != f.id) continue;
    const auto j = nlohmann::json::parse(f.text);
    Calibration c;
    c.name = name;
    c.provenance = j.value("provenance", "");
    c.gemm = j.value("gemm", 1.0);
    c.attention = j.value("attention", 1.0);
    c.memory = j.value("memory", 1.0);
    c.intra_node = j.value("intra_node", 1.0);
    c.inter_node = j.value("inter_node", 1.0);
    return c;
  }
  const auto names = builtin_calibration_names();
  std::string known;
  for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
  const std::string guess = closest_match(name, names);
  throw PlanError(field, "\"" + name + "\"",
                  "is not a calibration" + (guess.empty() ? "" : " (did you mean \"" + guess + "\"?)") + "; known: " + known);
}

Efficiency effective_efficiency(const GpuSpec& gpu, const Calibration& cal) {
  Efficiency e = gpu.efficiency;
  e.gemm *= cal.gemm;
  e.attention *= cal.attention;
  e.memory *= cal.memory;
  e.intra_node *= cal.intra_node;
  e.inter_node *= cal.inter_node;
  return e;
}

}  // namespace paraplan::planner
