// Whatever paraplan writes, it reads: every model and GPU object that `paraplan models --json` and
// `paraplan hardware --json` print is accepted back as an inline model / cluster.gpu, and gives the same
// estimate as the preset id it was printed from.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "run_paraplan.hpp"

using nlohmann::json;

namespace {

// A plan every preset accepts: fp32 (every GPU and the CPU preset have it), sequences within GPT's
// learned position table (2048), one node.
json base_plan() {
  return json::parse(R"({"model": "llama3-8b",
    "training": {"seq_len": 2048, "micro_batch": 1, "global_batch": 8, "precision": "fp32",
                 "grad_dtype": "fp32", "recompute": "full"},
    "parallel": {"dp": 8}, "cluster": {"gpu": "h100-sxm-80gb", "gpus": 8}})");
}

// `paraplan plan --json` of a plan, without its "plan" echo (which spells the model or GPU as given).
json estimate(const json& plan, const std::string& name) {
  const auto path = clitest::write_temp(name, plan.dump());
  const clitest::Result r = clitest::run("plan " + path + " --json");
  EXPECT_TRUE(r.code == 0 || r.code == 1) << r.out;  // 1: does not fit, still estimated
  json j = json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.out;
  if (j.is_object()) j.erase("plan");
  return j;
}

json printed(const char* command) {
  const clitest::Result r = clitest::run(command);
  EXPECT_EQ(r.code, 0) << r.out;
  return json::parse(r.out);
}

}  // namespace

TEST(RoundTrip, EveryHardwarePresetAsPrinted) {
  const json all = printed("hardware --json");
  ASSERT_GE(all.size(), 8u);
  for (const json& gpu : all) {
    ASSERT_TRUE(gpu.contains("source")) << gpu.dump();  // the field that used to be refused
    json by_id = base_plan(), inline_gpu = base_plan();
    by_id["cluster"]["gpu"] = gpu["id"];
    inline_gpu["cluster"]["gpu"] = gpu;
    const json a = estimate(by_id, "paraplan_rt_gpu_id.json");
    const json b = estimate(inline_gpu, "paraplan_rt_gpu_inline.json");
    EXPECT_EQ(a, b) << gpu["id"];
    EXPECT_TRUE(a.contains("memory")) << gpu["id"];
  }
}

TEST(RoundTrip, EveryModelPresetAsPrinted) {
  const json all = printed("models --json");
  ASSERT_GE(all.size(), 20u);
  for (const json& model : all) {
    for (const char* k : {"id", "params", "active_params", "source"}) ASSERT_TRUE(model.contains(k)) << k;
    json by_id = base_plan(), inline_model = base_plan();
    by_id["model"] = model["id"];
    inline_model["model"] = model;
    const json a = estimate(by_id, "paraplan_rt_model_id.json");
    const json b = estimate(inline_model, "paraplan_rt_model_inline.json");
    EXPECT_EQ(a, b) << model["id"];
    EXPECT_EQ(a["model"]["params"], model["params"]) << model["id"];
  }
}

TEST(RoundTrip, PrintedCountsMustMatchEditedDimensions) {
  // A count left behind after editing a dimension would mislead: it is refused, naming both counts.
  json model = printed("models --json")[0];
  model["layers"] = model["layers"].get<int>() + 1;
  json plan = base_plan();
  plan["model"] = model;
  const clitest::Result r = clitest::run("plan " + clitest::write_temp("paraplan_rt_edited.json", plan.dump()));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("model.params = " + model["params"].dump() +
                       ": must equal the parameter count of the model's dimensions"),
            std::string::npos)
      << r.out;
}

// The normalized plan that `paraplan plan --json` echoes (inline model with biases and a window, inline
// GPU, LoRA) is itself a plan file that estimates the same.
TEST(RoundTrip, ThePlanEchoedByPlanJson) {
  const std::string seed = std::string(PARAPLAN_SOURCE_DIR) + "/tests/fuzz/corpus/plan_json/inline-gpu-lora.json";
  const clitest::Result first = clitest::run("plan " + seed + " --json");
  ASSERT_EQ(first.code, 0) << first.out;
  json a = json::parse(first.out);
  const json echoed = a["plan"];
  EXPECT_EQ(echoed["model"]["sliding_window"], 16);
  EXPECT_EQ(echoed["model"]["bias"], "attention");
  const json b = estimate(echoed, "paraplan_rt_echo.json");
  a.erase("plan");
  EXPECT_EQ(a, b);
}
