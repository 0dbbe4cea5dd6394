// `paraplan simulate` end to end: the summary, the --json contract, the trace and CSV files, and the
// exit code 2 with the validator's message for input that cannot exist or a schedule that cannot apply.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "../cli/run_paraplan.hpp"
#include "../planner/tiny_gpt_by_hand.hpp"

using clitest::Result;
using clitest::run;
using nlohmann::json;

namespace {

const std::string kPlan = clitest::example();
const std::string kPipeline = " --set parallel.pp=4 --set parallel.dp=2 --set training.global_batch=16";

}  // namespace

TEST(CliSimulate, SummaryWithUnits) {
  const Result r = run("simulate " + kPlan + kPipeline);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("Step time"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pipeline bubble"), std::string::npos);
  EXPECT_NE(r.out.find("GiB (2^30 bytes)"), std::string::npos);
  EXPECT_NE(r.out.find("planner (closed form)"), std::string::npos);
}

TEST(CliSimulate, JsonContract) {
  const Result r = run("simulate " + kPlan + kPipeline + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const json j = json::parse(r.out);
  for (const char* k : {"step_s", "bubble_s", "exposed_comm_s", "per_stage"}) EXPECT_TRUE(j.contains(k)) << k;
  ASSERT_EQ(j["per_stage"].size(), 4u);
  for (size_t s = 0; s < 4; ++s) {
    const json& st = j["per_stage"][s];
    EXPECT_EQ(st["stage"], s);
    for (const char* k : {"peak_bytes", "busy_s", "idle_s", "end_s"}) EXPECT_TRUE(st[k].is_number()) << k;
  }
  for (const char* k : {"compute_s", "optimizer_s"}) EXPECT_TRUE(j[k].is_number()) << k;
}

// The two-layer GPT of tiny_gpt_by_hand.hpp, dp 2 x pp 2, global batch 4: m = 2 micro-batches of 1F1B, timed
// by hand from its per-stage costs (f, b per micro-batch, transfer p2p, all-reduce R and optimizer O per step).
// Stage 0 runs F0 F1 B0 B1, stage 1 F0 B0 F1 B1 (warm-up p - s - 1 forwards); a transfer starts when its
// pass ends, a pass when its input has arrived and its stage is free; without overlap the all-reduce follows
// the last backward and the optimizer follows it. Busy = passes + optimizer; idle = the step - busy.
TEST(CliSimulate, BusyAndIdleByHand) {
  const std::string plan = clitest::write_temp("paraplan_tiny_gpt.json", tinygpt::plan_json(4));
  const Result r = run("simulate " + plan + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const json j = json::parse(r.out);
  const tinygpt::Costs c = tinygpt::costs();
  const double d = c.p2p;
  const double s1_f0_end = c.f0 + d + c.f1;                            // stage 1's F0 after the activation arrives
  const double s1_b0_end = s1_f0_end + c.b1;
  const double s1_f1_end = std::max(s1_b0_end, 2 * c.f0 + d) + c.f1;  // needs stage 0's F1 (sent at 2 f0)
  const double s1_b1_end = s1_f1_end + c.b1;
  const double s0_b0_end = std::max(2 * c.f0, s1_b0_end + d) + c.b0;  // needs B0's gradient
  const double s0_b1_end = std::max(s0_b0_end, s1_b1_end + d) + c.b0;
  const double end0 = s0_b1_end + c.reduce0 + c.opt0, end1 = s1_b1_end + c.reduce1 + c.opt1;
  ASSERT_GT(end0, end1);  // stage 0 waits for the gradients: it ends the step
  const double step = end0;
  const double busy0 = 2 * (c.f0 + c.b0) + c.opt0, busy1 = 2 * (c.f1 + c.b1) + c.opt1;
  EXPECT_NEAR(j["step_s"].get<double>(), step, 1e-12);
  ASSERT_EQ(j["per_stage"].size(), 2u);
  EXPECT_NEAR(j["per_stage"][0]["busy_s"].get<double>(), busy0, 1e-12);
  EXPECT_NEAR(j["per_stage"][0]["idle_s"].get<double>(), step - busy0, 1e-12);
  EXPECT_NEAR(j["per_stage"][1]["busy_s"].get<double>(), busy1, 1e-12);
  EXPECT_NEAR(j["per_stage"][1]["idle_s"].get<double>(), step - busy1, 1e-12);
  EXPECT_NEAR(j["per_stage"][0]["end_s"].get<double>(), end0, 1e-12);
  EXPECT_NEAR(j["per_stage"][1]["end_s"].get<double>(), end1, 1e-12);
  // The step split on stage 0: its passes, the optimizer, the all-reduce it waits for, the two gradients it
  // waits for while they travel, and the rest of its waiting (for stage 1's compute) as bubble.
  EXPECT_NEAR(j["compute_s"].get<double>(), 2 * (c.f0 + c.b0), 1e-12);
  EXPECT_NEAR(j["optimizer_s"].get<double>(), c.opt0, 1e-12);
  EXPECT_NEAR(j["exposed_comm_s"].get<double>(), 2 * d + c.reduce0, 1e-12);
  EXPECT_NEAR(j["bubble_s"].get<double>(), (s1_b0_end - 2 * c.f0) + (s1_b1_end - s0_b0_end), 1e-12);
}

TEST(CliSimulate, TraceAndMemoryFiles) {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string trace = (dir / "paraplan_sim_trace.json").string(), csv = (dir / "paraplan_sim_mem.csv").string();
  std::filesystem::remove(trace);
  std::filesystem::remove(csv);
  const Result r = run("simulate " + kPlan + kPipeline + " --set parallel.pp_schedule=\\\"zbv\\\" --set parallel.virtual_stages=2 --trace " +
                       trace + " --memory " + csv);
  ASSERT_EQ(r.code, 0) << r.out;
  std::ifstream t(trace);
  const json j = json::parse(t);
  EXPECT_GT(j["traceEvents"].size(), 100u);
  std::ifstream m(csv);
  std::string header;
  std::getline(m, header);
  EXPECT_EQ(header, "time_s,stage,dynamic_bytes,allocated_bytes,total_bytes");
}

// Bad input: the plan validator's messages and exit code 2.
TEST(CliSimulate, BadInputExitsTwo) {
  Result r = run("simulate " + kPlan + " --set parallel.tp=3");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("parallel.tp"), std::string::npos) << r.out;
  // Interleaved needs m a multiple of pp: 8 GPUs, pp = 4, dp = 2, global batch 6 -> m = 3.
  r = run("simulate " + kPlan + kPipeline +
          " --set training.global_batch=6 --set parallel.pp_schedule=\\\"interleaved\\\" --set parallel.virtual_stages=2");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("interleaved schedule needs a multiple of pp"), std::string::npos) << r.out;
  r = run("simulate " + kPlan + kPipeline + " --set parallel.pp_schedule=\\\"zbv\\\" --set parallel.virtual_stages=3");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("must be 2 for zbv"), std::string::npos) << r.out;
}
