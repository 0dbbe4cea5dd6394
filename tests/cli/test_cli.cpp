// The paraplan command end to end: exit codes, messages, and the --json contract later tools rely on.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>

#include "paraplan/presets.hpp"
#include "run_paraplan.hpp"

using nlohmann::json;

using clitest::example;
using clitest::Result;
using clitest::run;
using clitest::write_temp;

TEST(Cli, PlanPrintsTheTableAndVerdict) {
  const Result r = run("plan " + example() + " --set parallel.zero=3");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("Memory per GPU, GiB (2^30 bytes)"), std::string::npos);
  EXPECT_NE(r.out.find("Verdict: FITS"), std::string::npos) << r.out;
}

// FP8 under Megatron-LM (Transformer Engine): the FP8 copies of LLaMA 3 8B's GEMM weights, 2 B x 32 layers x
// 218,103,808 parameters = 13,958,643,712 B = 13.00 GiB, are part of the weights and said so.
TEST(Cli, PlanSaysWhatTheFp8WeightCopiesTake) {
  const Result r = run("plan " + example() + " --set training.precision=\\\"fp8\\\"");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("weights: include 13.00 GiB of FP8 weight copies"), std::string::npos) << r.out;
  const Result j = run("plan " + example() + " --json --set training.precision=\\\"fp8\\\"");
  ASSERT_EQ(j.code, 0) << j.out;
  EXPECT_EQ(json::parse(j.out)["memory"]["per_stage"][0]["detail"]["fp8_weight_cache_bytes"], 13'958'643'712LL);
}

TEST(Cli, PlanJsonContract) {
  const Result r = run("plan " + example() + " --json --set training.lora={\\\"rank\\\":8}");
  ASSERT_EQ(r.code, 0) << r.out;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["model"]["params"], 8'030'261'248);
  EXPECT_EQ(j["model"]["trainable_params"], 3'407'872);
  EXPECT_EQ(j["model"]["all_params"], 8'033'669'120);
  const json& mem = j["memory"];
  ASSERT_EQ(mem["per_stage"].size(), 1u);
  for (const char* k : {"stage", "weights_bytes", "gradients_bytes", "master_weights_bytes", "optimizer_bytes",
                        "activations_bytes", "buffers_bytes", "overhead_bytes", "total_bytes"})
    EXPECT_TRUE(mem["per_stage"][0].contains(k)) << k;
  for (const char* k : {"peak_bytes", "gpu_memory_bytes", "fits"}) EXPECT_TRUE(mem.contains(k)) << k;
  // bf16 frozen base: 2 B x 8,030,261,248 + bf16 adapters 2 B x 3,407,872
  EXPECT_EQ(mem["per_stage"][0]["weights_bytes"], 2LL * 8'030'261'248 + 2 * 3'407'872);
  // the plan section is a plan file `paraplan plan` accepts again
  const std::string again = write_temp("paraplan_roundtrip.json", j["plan"].dump());
  const Result r2 = run("plan " + again + " --json");
  ASSERT_EQ(r2.code, 0) << r2.out;
  EXPECT_EQ(json::parse(r2.out)["memory"], mem);
}

TEST(Cli, BadInputExitsWithTwo) {
  Result r = run("plan " + write_temp("paraplan_bad.json", "{\"model\": \"llama3-8b\", \"training\": {"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("malformed JSON at line 1"), std::string::npos) << r.out;
  r = run("plan " + example() + " --set parallel.tp=3");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("parallel.tp = 3: must divide model.heads (32)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cluster.gpus = 8: must equal dp*tp*pp*cp"), std::string::npos) << r.out;
  r = run("plan " + example() + " --set training.seqlen=4096");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("did you mean training.seq_len?"), std::string::npos) << r.out;
  r = run("plan /nonexistent/plan.json");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("File does not exist: /nonexistent/plan.json"), std::string::npos) << r.out;
  r = run("frobnicate");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("\"frobnicate\" is not a command; the commands are plan, search,"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Run with --help"), std::string::npos) << r.out;
}

// The MoE line's figures as plan prints them.
static std::string fmt_line(int rows, int too_fast, double lo, double hi) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "predicted %+.1f%% to %+.1f%% of the measured step time, %d of %d too fast", 100 * lo,
                100 * hi, too_fast, rows);
  return buf;
}

// A number out of its range names the option, the value and the rule, exit 2, before anything runs
// (CLI11's own PositiveNumber printed its range as 0 to 1.8e308; a negative --lr or --seed was taken).
TEST(Cli, ANumberOutOfItsRangeNamesTheRule) {
  const std::string tiny = std::string(PARAPLAN_SOURCE_DIR) + "/data/examples/tiny-dp2.json";
  const std::pair<std::string, std::string> cases[] = {
      {"search " + example() + " --gpus 0", "--gpus: 0 is not > 0"},
      {"search " + example() + " --threads -2", "--threads: -2 is not > 0"},
      {"plan " + example() + " --price -1 --tokens 1e9", "--price: -1 is not >= 0"},
      {"plan " + example() + " --tokens lots", "--tokens: lots is not a number"},
      {"run " + tiny + " --db '' --lr -0.001", "--lr: -0.001 is not > 0"},
      {"run " + tiny + " --db '' --weight-decay -0.1", "--weight-decay: -0.1 is not >= 0"},
      {"run " + tiny + " --db '' --seed -1", "--seed: -1 is not >= 0"},
      {"run " + tiny + " --db '' --fake-rank -2", "--fake-rank: -2 is not >= 0"},
      {"probe --db '' --timeout 0", "--timeout: 0 is not > 0"},
  };
  for (const auto& [args, message] : cases) {
    const Result r = run(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(message), std::string::npos) << args << "\n" << r.out;
    EXPECT_EQ(r.out.find("starting"), std::string::npos) << args << "\n" << r.out;
  }
}

// A plan of a MoE model says how far the model's step times were off on the published MoE runs; its
// figures are validate's own rows of MoE models (each source's profile), counted here from validate --json.
TEST(Cli, AMoePlanSaysHowFarMoeStepTimesWereOff) {
  const Result v = run("validate --json --source mbridge-h100,mbridge-b200,mbridge-gb200,mbridge-h100-26.04");
  ASSERT_EQ(v.code, 0) << v.out;
  int rows = 0, too_fast = 0;
  double lo = 1e9, hi = -1e9;
  const json validated = json::parse(v.out);
  for (const json& r : validated["rows"]) {
    if (!paraplan::planner::model_preset(r["model"].get<std::string>()).moe) continue;
    const double e = r["error"].get<double>();
    ++rows;
    too_fast += e < 0;
    lo = std::min(lo, e);
    hi = std::max(hi, e);
  }
  ASSERT_GE(rows, 12);  // GPT-OSS and the two Qwen3 MoE models on H100, B200, GB200 and H100 of 26.04
  const std::string plan = write_temp("paraplan_moe.json", R"({"model": "qwen3-30b-a3b", "training": {"seq_len": 4096,
      "global_batch": 512, "precision": "fp8"}, "parallel": {"dp": 8, "ep": 8, "zero": 1}, "cluster": {"gpu": "b200", "gpus": 8}})");
  Result r = run("plan " + plan + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const json t = json::parse(r.out)["moe_track_record"];
  EXPECT_EQ(t["rows"].get<int>(), rows);
  EXPECT_EQ(t["too_fast"].get<int>(), too_fast);
  EXPECT_NEAR(t["min_error"].get<double>(), lo, 1e-12);
  EXPECT_NEAR(t["max_error"].get<double>(), hi, 1e-12);
  r = run("plan " + plan);
  EXPECT_NE(r.out.find(fmt_line(rows, too_fast, lo, hi)), std::string::npos) << r.out;
  r = run("plan " + example());
  EXPECT_EQ(r.out.find("MoE step times"), std::string::npos) << r.out;
  EXPECT_FALSE(json::parse(run("plan " + example() + " --json").out).contains("moe_track_record"));
}

TEST(Cli, PresetLists) {
  Result r = run("models");
  ASSERT_EQ(r.code, 0);
  for (const char* id : {"gpt3-175b", "llama3-8b", "llama3-70b", "llama3-405b", "mixtral-8x7b", "deepseek-v3"})
    EXPECT_NE(r.out.find(id), std::string::npos) << id;
  EXPECT_NE(r.out.find("8,030,261,248"), std::string::npos);
  r = run("hardware --json");
  ASSERT_EQ(r.code, 0);
  const json hw = json::parse(r.out);
  std::set<std::string> ids;
  for (const auto& g : hw) ids.insert(g["id"].get<std::string>());
  for (const char* id : {"v100-32gb", "a100-40gb", "a100-80gb", "h100-sxm-80gb", "h800", "h200", "b200", "gb200"})
    EXPECT_TRUE(ids.count(id)) << id;
  for (const auto& g : hw) EXPECT_FALSE(g["source"].get<std::string>().empty()) << g["id"];
  // The table names each GPU's NVLink domain: 18 trays of 4 on one GB200 NVL72 rack, 8 in a DGX H100.
  r = run("hardware");
  ASSERT_EQ(r.code, 0);
  auto row = [&](const std::string& id) {
    const auto at = r.out.find("\n" + id + " ");
    return at == std::string::npos ? std::string() : r.out.substr(at + 1, r.out.find('\n', at + 1) - at - 1);
  };
  EXPECT_NE(row("gb200").find("     72 "), std::string::npos) << row("gb200");
  EXPECT_NE(row("h100-sxm-80gb").find("      8 "), std::string::npos) << row("h100-sxm-80gb");
}
