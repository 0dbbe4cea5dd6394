#pragma once
// Plans for the export tests: the example plan file (data/examples/llama3-8b.json: LLaMA-3-8B on 8 H100s,
// dp 8, ZeRO-0, bf16 with fp32 gradients, selective recompute, global batch 1024) with --set style changes;
// and checked_export, through which every test exports, so that each export is judged by its tool's checker.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "export_checkers.hpp"
#include "paraplan/plan_io.hpp"

namespace exporttest {

inline nlohmann::json example_doc() {
  static const nlohmann::json doc = [] {
    std::ifstream in(std::string(PARAPLAN_SOURCE_DIR) + "/data/examples/llama3-8b.json");
    std::stringstream ss;
    ss << in.rdbuf();
    return nlohmann::json::parse(ss.str());
  }();
  return doc;
}

inline paraplan::planner::Plan plan_of(const std::vector<std::string>& sets) {
  nlohmann::json doc = example_doc();
  for (const auto& s : sets) paraplan::planner::apply_override(doc, s);
  return paraplan::planner::plan_from_json(doc);
}

// export_plan, then the target tool's checker (export_checkers.hpp): each rule the export breaks is a test
// failure. An inexpressible plan throws PlanError, as export_plan does.
inline paraplan::planner::ExportResult checked_export(const paraplan::planner::Plan& plan, paraplan::planner::ExportFormat f,
                                                      const paraplan::planner::ExportOptions& options = {}) {
  paraplan::planner::ExportResult r = paraplan::planner::export_plan(plan, f, options);
  for (const auto& problem : exportcheck::check_export(f, r.text, r.notes))
    ADD_FAILURE() << problem << "\n--- " << paraplan::planner::to_string(f) << " export:\n" << r.text;
  return r;
}

}  // namespace exporttest
