// vTrain's measured single-node runs as plans, and the error summaries validate prints.
#include <gtest/gtest.h>

#include <cmath>

#include "paraplan/error.hpp"
#include "paraplan/validation.hpp"

using namespace paraplan;
using namespace paraplan::planner;

// The file holds 1,440 runs (vTrain's ground_truth_single.csv has 1,440 data lines; its column names
// are a '#' line here). The first, read off the file: 2 GPUs, global batch 16, micro-batch 8, hidden
// 1024, 16 heads, 24 layers, sequence 1024, tp 1, dp 1, pp 2, 372.160408 ms.
TEST(VTrain, ReadsEveryRowOfTheFile) {
  const std::vector<PublishedRun> runs = vtrain_runs();
  ASSERT_EQ(runs.size(), 1440u);
  const Plan& p = runs[0].plan;
  EXPECT_EQ(runs[0].source, "vtrain-single");
  EXPECT_EQ(p.cluster.gpus, 2);
  EXPECT_EQ(p.training.global_batch, 16);
  EXPECT_EQ(p.training.micro_batch, 8);
  EXPECT_EQ(p.model.hidden, 1024);
  EXPECT_EQ(p.model.heads, 16);
  EXPECT_EQ(p.model.layers, 24);
  EXPECT_EQ(p.training.seq_len, 1024);
  EXPECT_EQ(p.parallel.tp, 1);
  EXPECT_EQ(p.parallel.dp, 1);
  EXPECT_EQ(p.parallel.pp, 2);
  EXPECT_DOUBLE_EQ(runs[0].published_step_s, 0.372160408);
  EXPECT_EQ(p.training.framework, Framework::megatron_2021);
  EXPECT_EQ(p.cluster.calibration.name, "vtrain-a100");
}

TEST(VTrain, ABadCellNamesItsLineAndValue) {
  const std::string text =
      "# GPUs,global batch,micro batch,hidden size,attention heads,# layers,sequence length,tp,dp,pp,time\n"
      "2,16,8,1024,16,24,1024,1,1,2,372.16\n"
      "2,16,x,1024,16,24,1024,1,1,2,372.16\n";
  try {
    vtrain_runs_from_csv(text, "v.csv");
    FAIL() << "accepted a non-numeric cell";
  } catch (const PlanError& e) {
    EXPECT_NE(std::string(e.what()).find("v.csv:3"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("\"x\": must be a positive number"), std::string::npos) << e.what();
  }
}

// Errors by hand: ten rows of one source with errors +1%, -2%, ..., the p90 by nearest rank is the 9th
// smallest |error|; the shape groups split them by tp.
TEST(VTrain, SummariesByHand) {
  std::vector<ValidationRow> rows;
  const double errors[] = {0.01, -0.02, 0.03, -0.04, 0.05, -0.06, 0.07, -0.08, 0.09, -0.10};
  for (int i = 0; i < 10; ++i) {
    ValidationRow r;
    r.run.source = "s";
    r.run.plan.parallel.tp = i < 4 ? 1 : 2;
    r.error = errors[i];
    rows.push_back(r);
  }
  const auto sums = summarize(rows);
  ASSERT_EQ(sums.size(), 1u);
  EXPECT_EQ(sums[0].rows, 10);
  EXPECT_NEAR(sums[0].mean_abs_error, 0.055, 1e-12);  // (1 + 2 + ... + 10) / 10 %
  EXPECT_NEAR(sums[0].mean_error, -0.005, 1e-12);     // (1 - 2 + 3 - ... - 10) / 10 %
  EXPECT_NEAR(sums[0].p90_abs_error, 0.09, 1e-12);    // ceil(0.9 x 10) = 9th of the sorted |errors|
  EXPECT_NEAR(sums[0].max_abs_error, 0.10, 1e-12);
  const auto groups = bias_by_shape(rows);
  auto find = [&](const std::string& g) {
    for (const auto& x : groups)
      if (x.group == g) return x;
    ADD_FAILURE() << "no group " << g;
    return GroupBias{};
  };
  EXPECT_EQ(find("tp=1").rows, 4);
  EXPECT_NEAR(find("tp=1").mean_error, (0.01 - 0.02 + 0.03 - 0.04) / 4, 1e-12);
  EXPECT_NEAR(find("tp=2").mean_error, (0.05 - 0.06 + 0.07 - 0.08 + 0.09 - 0.10) / 6, 1e-12);
  EXPECT_EQ(find("hidden=0").rows, 10);  // a default ModelSpec (hidden 0): one group
}
