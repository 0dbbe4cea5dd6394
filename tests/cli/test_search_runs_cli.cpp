// `paraplan search` and `paraplan runs` end to end: exit codes, messages, and JSON that other tools read.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <vector>
#include <nlohmann/json.hpp>

#include "paraplan/plan_io.hpp"
#include "paraplan/presets.hpp"
#include "paraplan/store.hpp"
#include "run_paraplan.hpp"

using clitest::run;
using clitest::write_temp;
using nlohmann::json;

namespace {
json parse_stdout(const std::string& out) {
  // Progress goes to stderr only on a terminal; the output here is the JSON document.
  return json::parse(out);
}
}  // namespace

// A plan with no parallel section: the search takes the cluster size from cluster.gpus and sets every
// degree itself (the file's dp would default to gpus, which the global batch need not allow).
TEST(CliSearch, StartsFromAPlanWithoutParallelSection) {
  const std::string f = write_temp("paraplan-search-noparallel.json",
                                   R"({"model": "llama3-8b", "training": {"seq_len": 4096, "global_batch": 16},
                                       "cluster": {"gpu": "h100-sxm-80gb", "gpus": 32}})");
  const auto r = run("search " + f + " --json --top 3");
  ASSERT_EQ(r.code, 0) << r.out;
  const json j = parse_stdout(r.out);
  EXPECT_EQ(j["gpus"], 32);
  ASSERT_EQ(j["top"].size(), 3u);
  for (const json& c : j["top"]) {
    const json& par = c["plan"]["parallel"];
    EXPECT_EQ(par["dp"].get<int>() * par["tp"].get<int>() * par["pp"].get<int>() * par["cp"].get<int>(), 32);
    EXPECT_EQ(16 % (par["dp"].get<int>() * c["plan"]["training"]["micro_batch"].get<int>()), 0);
    EXPECT_TRUE(c["peak_bytes"].is_number_integer());  // whole bytes
  }
}

// Every written plan is a plan `paraplan plan` accepts (issue 3: "each result is a plan file").
TEST(CliSearch, WrittenPlansAreAccepted) {
  const auto dir = std::filesystem::temp_directory_path() / "paraplan-search-write";
  std::filesystem::remove_all(dir);
  const auto r = run("search " + clitest::example() + " --gpus 16 --top 3 --write " + dir.string());
  ASSERT_EQ(r.code, 0) << r.out;
  for (int i = 1; i <= 3; ++i) {
    const auto p = run("plan " + (dir / ("rank-0" + std::to_string(i) + ".json")).string());
    EXPECT_EQ(p.code, 0) << p.out;
  }
}

// A cluster that spans nodes must be whole nodes: 12 GPUs at 8 per node is refused before searching,
// with the same rule `paraplan plan` applies.
TEST(CliSearch, PartialNodesExitTwo) {
  const auto r = run("search " + clitest::example() + " --gpus 12");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("cluster.gpus = 12: must be a multiple of gpus_per_node (8)"), std::string::npos) << r.out;
}

// On a rack-scale NVLink GPU the searched cluster's nodes are the part of a domain the job holds when the
// plan names none (plan-format.md): 256 GB200 = 64 trays of 4, Slurm segment 16, so 64 GPUs a node (by
// hand, as MBridge.AGb200RowsNodeIsTheNvlinkDomainItsJobHolds); an H100 plan keeps 8.
TEST(CliSearch, ARackScaleNvlinkDomainIsTheNodeWhenThePlanNamesNone) {
  const std::string plan = write_temp("search-gb200.json", R"({"model": "llama3-8b",
    "training": {"seq_len": 4096, "micro_batch": 1, "global_batch": 256}, "cluster": {"gpu": "gb200", "gpus": 8}})");
  auto r = run("search " + plan + " --gpus 256 --top 1 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(parse_stdout(r.out)["top"][0]["plan"]["cluster"]["gpus_per_node"].get<int>(), 64);
  r = run("search " + plan + " --gpus 256 --top 1 --json --set cluster.gpu=h100-sxm-80gb");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(parse_stdout(r.out)["top"][0]["plan"]["cluster"]["gpus_per_node"].get<int>(), 8);
}

// Ranking by cost needs a price; without one it is an error, not a silent ranking by throughput.
TEST(CliSearch, CostWithoutPriceExitsTwo) {
  auto r = run("search " + clitest::example() + " --sort cost");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("cluster.price_per_gpu_hour"), std::string::npos) << r.out;
  r = run("search " + clitest::example() + " --sort cost --set cluster.price_per_gpu_hour=2 --json --top 1");
  ASSERT_EQ(r.code, 0) << r.out;
  const json best = parse_stdout(r.out)["top"][0];
  // $/1M tokens = price * gpus / tokens_per_s / 3600 * 1e6 (8 GPUs at $2 per GPU-hour).
  EXPECT_NEAR(best["cost_per_million_tokens"].get<double>(),
              2.0 * 8 / best["tokens_per_s"].get<double>() / 3600 * 1e6, 1e-9);
}

// `paraplan runs --json`: a list with the fields the issue names, read from a store written here.
TEST(CliRuns, JsonListsPredictedBesideMeasured) {
  const auto db = std::filesystem::temp_directory_path() / "paraplan-cli-runs.sqlite";
  std::filesystem::remove(db);
  {
    paraplan::planner::Store store(db.string());
    paraplan::planner::NewRun nr;
    nr.plan_json = paraplan::planner::plan_to_json(paraplan::planner::load_plan(clitest::example())).dump();
    nr.name = "two ranks";
    nr.world_size = 2;
    nr.steps = 3;
    nr.predicted_peak_bytes = 3.0 * (1 << 20);
    nr.predicted_step_s = 0.25;
    const int64_t a = store.create_run(nr);
    store.set_running(a);
    // Slowest rank per step: 0.4 s (step 1, excluded as warm-up), then 0.3 s and 0.5 s: mean 0.4 s.
    const double times[3][2] = {{0.4, 0.2}, {0.3, 0.1}, {0.2, 0.5}};
    for (int step = 1; step <= 3; ++step)
      for (int rank = 0; rank < 2; ++rank) store.add_step({a, rank, step, 5.0 - step, times[step - 1][rank], 0.05, 1000});
    store.add_memory({{a, 0, "peak", 3.0 * (1 << 20), 3.5 * (1 << 20)}, {a, 1, "peak", 3.0 * (1 << 20), 3.25 * (1 << 20)}});
    store.finish_run(a);
    const int64_t b = store.create_run(nr);
    store.fail_run(b, "rank 1: model.safetensors is truncated");
  }
  const auto r = run("runs --db " + db.string() + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const json j = parse_stdout(r.out);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 2u);
  const json& ok = j[0];
  EXPECT_EQ(ok["id"], 1);
  EXPECT_EQ(ok["status"], "succeeded");
  EXPECT_EQ(ok["plan"]["model"], "llama3-8b");  // presets by id (plan_to_json)
  EXPECT_DOUBLE_EQ(ok["predicted_peak_bytes"].get<double>(), 3.0 * (1 << 20));
  EXPECT_DOUBLE_EQ(ok["measured_peak_bytes"].get<double>(), 3.5 * (1 << 20));  // max over ranks
  EXPECT_DOUBLE_EQ(ok["predicted_step_s"].get<double>(), 0.25);
  EXPECT_NEAR(ok["measured_step_s"].get<double>(), 0.4, 1e-12);
  EXPECT_EQ(j[1]["status"], "failed");
  EXPECT_TRUE(j[1]["measured_peak_bytes"].is_null());
  EXPECT_NE(j[1]["error"].get<std::string>().find("truncated"), std::string::npos);
}

// The README's example output is what the binary prints today: every line of the block after the
// "$ build/cli/paraplan ..." command (except "..." elisions) appears in the output.
TEST(CliDocs, ReadmeExampleOutputIsCurrent) {
  std::ifstream in(std::string(PARAPLAN_SOURCE_DIR) + "/README.md");
  ASSERT_TRUE(in) << "README.md not found";
  std::string line, args;
  std::vector<std::string> expected;
  bool in_block = false;
  while (std::getline(in, line)) {
    if (!in_block && line.rfind("$ build/cli/paraplan ", 0) == 0) {
      args = line.substr(std::string("$ build/cli/paraplan ").size());
      in_block = true;
      continue;
    }
    if (in_block && line.rfind("```", 0) == 0) break;
    if (in_block && line.find("...") == std::string::npos && !line.empty()) expected.push_back(line);
  }
  ASSERT_FALSE(args.empty()) << "no example command in README.md";
  ASSERT_GE(expected.size(), 3u);
  const auto r = run("plan " + std::string(PARAPLAN_SOURCE_DIR) + "/" + args.substr(args.find(' ') + 1));
  ASSERT_EQ(r.code, 0) << r.out;
  for (const std::string& e : expected) EXPECT_NE(r.out.find(e), std::string::npos) << "README line not printed: " << e;
}
