#pragma once
// The messages of a plan that must be rejected, for tests of the plan format's rules.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "paraplan/plan_io.hpp"

namespace plantest {

inline std::vector<std::string> errors_of(const nlohmann::json& doc) {
  try {
    paraplan::planner::plan_from_json(doc);
  } catch (const paraplan::planner::PlanError& e) {
    std::vector<std::string> out;
    for (const auto& v : e.violations()) out.push_back(v.to_string());
    return out;
  }
  return {};
}

inline bool mentions(const std::vector<std::string>& errs, const std::string& needle) {
  for (const auto& e : errs)
    if (e.find(needle) != std::string::npos) return true;
  return false;
}

inline nlohmann::json with(nlohmann::json doc, const std::string& assignment) {
  paraplan::planner::apply_override(doc, assignment);
  return doc;
}

}  // namespace plantest
