#pragma once
// Plans for the export tests: the example plan file (data/examples/llama3-8b.json: LLaMA-3-8B on 8 H100s,
// dp 8, ZeRO-0, bf16 with fp32 gradients, selective recompute, global batch 1024) with --set style changes.
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "paraplan/plan_io.hpp"

namespace exporttest {

inline nlohmann::json example_doc() {
  std::ifstream in(std::string(PARAPLAN_SOURCE_DIR) + "/data/examples/llama3-8b.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

inline paraplan::planner::Plan plan_of(const std::vector<std::string>& sets) {
  nlohmann::json doc = example_doc();
  for (const auto& s : sets) paraplan::planner::apply_override(doc, s);
  return paraplan::planner::plan_from_json(doc);
}

}  // namespace exporttest
