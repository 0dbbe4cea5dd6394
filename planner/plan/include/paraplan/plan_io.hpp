#pragma once
// Reading and writing the plan format (docs/plan-format.md). Every problem in the input becomes a
// PlanError naming the field, the value and the rule; unknown fields get a "did you mean".
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "paraplan/error.hpp"
#include "paraplan/plan.hpp"

namespace paraplan::planner {

// Parses and validates a plan document. Relative hf_config paths resolve against base_dir.
Plan plan_from_json(const nlohmann::json& doc, const std::string& base_dir = ".");
// Parses JSON text; malformed JSON is a PlanError naming `origin` with line and column.
nlohmann::json parse_json_text(const std::string& text, const std::string& origin);
// Reads a plan file, applies "--set" style overrides ("parallel.tp=4"), parses and validates.
Plan load_plan(const std::string& path, const std::vector<std::string>& overrides = {});
// Applies one "a.b.c=value" override; value is JSON if it parses as JSON, else a string.
void apply_override(nlohmann::json& doc, const std::string& assignment);

// The normalized document: every field written out, presets by id. plan_from_json(plan_to_json(p)) == p.
nlohmann::json plan_to_json(const Plan& plan);
nlohmann::json model_to_json(const ModelSpec& m);
nlohmann::json gpu_to_json(const GpuSpec& g);
nlohmann::json efficiency_to_json(const Efficiency& e);  // every field of efficiency_fields()

// Pieces, for presets and tests. `field` is the dotted path used in messages.
ModelSpec model_from_json(const nlohmann::json& j, const std::string& field, const std::string& base_dir,
                          Violations& errors);
ModelSpec model_from_hf_config(const nlohmann::json& config, const std::string& origin, Violations& errors);
GpuSpec gpu_from_json(const nlohmann::json& j, const std::string& field, Violations& errors);

// Checks every rule that ties the sections together (plan_rules.cpp; the parallel ones are in
// parallel_rules.hpp).
void validate_plan(const Plan& plan, Violations& errors);

}  // namespace paraplan::planner
