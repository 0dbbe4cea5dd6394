// Inputs the fuzz targets (tests/fuzz, docs/reliability.md) found to crash the planner's readers, each now
// refused with a PlanError naming the file (or field), the value and the rule.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "paraplan/plan_io.hpp"
#include "plan_errors.hpp"

using namespace paraplan::planner;
using nlohmann::json;

namespace {

std::string error_of_text(const std::string& text) {
  try {
    parse_json_text(text, "in.json");
  } catch (const PlanError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// fuzz_hf_config, corpus/hf_config/regression-number-overflow.json ("...drop": 0.1e3081): nlohmann throws
// out_of_range, not parse_error, for a number past a double's range; parse_json_text let it escape
// (paraplan exited 1 with the library's message, and a config.json ended the fuzzer with terminate).
TEST(FuzzRegressions, JsonNumberBeyondADouble) {
  EXPECT_EQ(error_of_text(R"({"embd_pdrop": 0.1e3081})"),
            "in.json: malformed JSON: number overflow parsing '0.1e3081' (beyond the range of a double)");
  // --set reads its value as JSON when it parses: 1e400 does not, so it is the string "1e400" and refused as one.
  json doc = json::parse(R"({"model": "llama3-8b", "cluster": {"gpus": 8}})");
  apply_override(doc, "parallel.tp=1e400");
  EXPECT_TRUE(plantest::mentions(plantest::errors_of(doc), "parallel.tp = \"1e400\": must be an integer"));
}
