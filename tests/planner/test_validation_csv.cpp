// The validation table's reader (published_runs_from_csv): every cell checked, each row's plan obeys the
// plan rules, and every refusal names "<file>:<line>: <column>", the value and the rule.
#include <gtest/gtest.h>

#include "paraplan/validation.hpp"
#include "csv_cells.hpp"
#include "plan_errors.hpp"

using namespace paraplan::planner;

namespace {

const char* kHeader =
    "source,model,layers,hidden,heads,vocab,seq,gpu,gpus,tp,pp,dp,virtual_stages,micro_batch,global_batch,"
    "recompute,sequence_parallel,precision,published_tflops_per_gpu,published_step_s\n";
// Narayanan et al. 2021 Table 1, first row (data/validation/published-step-time.csv).
const char* kRow = "narayanan21-t1,gpt-1.7b,24,2304,24,51200,2048,a100-80gb,32,1,1,32,1,,512,full,false,fp16,137,\n";

std::vector<std::string> errors_of(const std::string& table) {
  return plantest::csv_errors(&published_runs_from_csv, table, "t.csv");
}

// kRow with cell `col` (0-based) replaced.
std::string row_with(size_t col, const std::string& value) { return plantest::row_with_cell(kHeader, kRow, col, value); }

}  // namespace

TEST(ValidationCsv, ReadsTheTable) {
  const auto runs = published_runs_from_csv(std::string("# a comment\n") + kHeader + kRow, "t.csv");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].plan.parallel.dp, 32);
  EXPECT_EQ(runs[0].plan.training.recompute, Recompute::full);
  EXPECT_DOUBLE_EQ(runs[0].published_tflops_per_gpu, 137);
  EXPECT_FALSE(published_runs().empty());  // the compiled-in table passes the same reader
}

TEST(ValidationCsv, EveryCellIsChecked) {
  using plantest::mentions;
  EXPECT_TRUE(mentions(errors_of(row_with(9, "x")), "t.csv:2: tp = x: must be an integer"));
  EXPECT_TRUE(mentions(errors_of(row_with(9, "1.5")), "t.csv:2: tp = 1.5: must be an integer"));
  EXPECT_TRUE(mentions(errors_of(row_with(6, "-2048")), "t.csv:2: seq = -2048: must be between 1 and"));
  EXPECT_TRUE(mentions(errors_of(row_with(1, "gpt-2b")), "t.csv:2: model = \"gpt-2b\": is not a preset"));
  EXPECT_TRUE(mentions(errors_of(row_with(3, "2048")), "t.csv:2: hidden = 2048: must be the preset's hidden (2304)"));
  EXPECT_TRUE(mentions(errors_of(row_with(15, "most")), "t.csv:2: recompute = most: must be one of none, selective, full"));
  EXPECT_TRUE(mentions(errors_of(row_with(18, "nan")), "t.csv:2: published_tflops_per_gpu = nan: must be a number > 0"));
  EXPECT_TRUE(mentions(errors_of(row_with(18, "")), "published_tflops_per_gpu must be given"));
  // The row's plan obeys the plan rules: 32 GPUs cannot be dp 32 x tp 2.
  EXPECT_TRUE(mentions(errors_of(row_with(9, "2")), "t.csv:2: cluster.gpus = 32: must equal dp*tp*pp*cp"));
  EXPECT_TRUE(mentions(errors_of(std::string(kHeader) + "narayanan21-t1,gpt-1.7b\n"),
                       "t.csv:2 = 2 cells: must have one cell per header column (20)"));
  EXPECT_TRUE(mentions(errors_of("source,model\n"), "t.csv:1: the header has no column \"seq\""));
}
