// `paraplan simulate` end to end: the summary, the --json contract, the trace and CSV files, and the
// exit code 2 with the validator's message for input that cannot exist or a schedule that cannot apply.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "../cli/run_paraplan.hpp"

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
  double slowest_end = 0;
  for (size_t s = 0; s < 4; ++s) {
    const json& st = j["per_stage"][s];
    EXPECT_EQ(st["stage"], s);
    for (const char* k : {"peak_bytes", "busy_s", "idle_s"}) EXPECT_TRUE(st[k].is_number()) << k;
    EXPECT_NEAR(st["busy_s"].get<double>() + st["idle_s"].get<double>(), j["step_s"].get<double>(), 1e-9);
    slowest_end = std::max(slowest_end, st["end_s"].get<double>());
  }
  EXPECT_DOUBLE_EQ(slowest_end, j["step_s"].get<double>());
  // The step splits into compute + exposed communication + bubble + optimizer.
  EXPECT_NEAR(j["compute_s"].get<double>() + j["exposed_comm_s"].get<double>() + j["bubble_s"].get<double>() +
                  j["optimizer_s"].get<double>(),
              j["step_s"].get<double>(), 1e-9);
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
