// Absurd input (limits.hpp): refused with the field, the value and the bound, or computed without
// overflow — never wrapped, truncated or left to undefined behaviour (the sanitizer build runs these).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "paraplan/limits.hpp"
#include "paraplan/memory.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/presets.hpp"
#include "paraplan/report.hpp"
#include "paraplan/timing.hpp"
#include "plan_errors.hpp"

using namespace paraplan::planner;
using nlohmann::json;

namespace {

json tiny() {
  return json::parse(R"({"model": {"layers": 2, "hidden": 64, "heads": 4, "ffn_hidden": 128, "vocab": 256},
    "training": {"seq_len": 32, "micro_batch": 1}, "cluster": {"gpus": 1}})");
}

// True when one message contains `needle`; prints them all otherwise.
::testing::AssertionResult mentions(const json& doc, const std::string& needle) {
  const auto errs = plantest::errors_of(doc);
  for (const auto& e : errs)
    if (e.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  auto r = ::testing::AssertionFailure() << "no message contains \"" << needle << "\"; got:";
  for (const auto& e : errs) r << "\n  " << e;
  return r;
}

json set(const json& doc, const std::string& assignment) { return plantest::with(doc, assignment); }

}  // namespace

TEST(Limits, ModelDimensions) {
  EXPECT_TRUE(mentions(set(tiny(), "model.layers=1e12"), "model.layers = 1000000000000.0: must be <= 1048576"));
  EXPECT_TRUE(mentions(set(tiny(), "model.layers=1000000000000"), "model.layers = 1000000000000: must be <= 1048576"));
  EXPECT_TRUE(mentions(set(tiny(), "model.hidden=-64"), "model.hidden = -64: must be >= 1"));
  EXPECT_TRUE(mentions(set(tiny(), "model.vocab=0"), "model.vocab = 0: must be >= 1"));
  EXPECT_TRUE(mentions(set(tiny(), "model.ffn_hidden=1e300"), "model.ffn_hidden = 1e+300: must be <= 16777216"));
  EXPECT_TRUE(mentions(set(tiny(), "model.vocab=18446744073709551615"),
                       "model.vocab = 18446744073709551615: must be <= 16777216"));
  EXPECT_TRUE(mentions(set(tiny(), "model.heads=4.5"), "model.heads = 4.5: must be an integer"));
  json nan = tiny();
  nan["model"]["hidden"] = std::numeric_limits<double>::quiet_NaN();  // no JSON file can hold it; the API can
  EXPECT_TRUE(mentions(nan, "model.hidden = NaN: must be an integer"));
  EXPECT_TRUE(mentions(set(tiny(), "model.moe={\"experts\": 8, \"top_k\": 2, \"ffn_hidden\": -1}"),
                       "model.moe.ffn_hidden = -1: must be >= 1"));
  EXPECT_TRUE(mentions(set(tiny(), "model.sliding_window=0"), "model.sliding_window = 0: must be >= 1"));
}

// Every dimension within its range, the model far past any real one: 2^20 layers of hidden 2^24 and an
// MLP of 2^24 hold more than 2^20 x 3 x 2^48 = 3 x 2^68 (~8.9e20) parameters, which int64 products of
// the count would overflow; counted in double first, it is refused against the 1e15 bound.
TEST(Limits, ParameterCountBound) {
  json doc = tiny();
  doc["model"] = {{"layers", 1 << 20}, {"hidden", 1 << 24}, {"heads", 1 << 10}, {"ffn_hidden", 1 << 24},
                  {"vocab", 1 << 24}};
  EXPECT_TRUE(mentions(doc, "model = "));
  EXPECT_TRUE(mentions(doc, "parameters: must have at most 1e+15 parameters"));
}

// A 10-trillion-parameter model is within the bounds and counted exactly: 180 layers of 4h^2 (MHA) +
// 3hf (SwiGLU) + 2h (norms) with h = 65,536, f = 196,608, plus 2Vh embeddings (V = 65,536) and the final
// norm: 180 x 55,834,705,920 + 8,589,934,592 + 65,536 = 10,058,837,065,728.
TEST(Limits, TenTrillionParametersAreCountedExactly) {
  json doc = tiny();
  doc["model"] = {{"layers", 180}, {"hidden", 65536}, {"heads", 512}, {"ffn_hidden", 196608}, {"vocab", 65536}};
  doc["cluster"] = {{"gpus", 8}};
  const Plan p = plan_from_json(doc);
  EXPECT_EQ(count_params(p.model).total, 10'058'837'065'728);
  // bf16 weights, no sharding (dp 8, zero 0): 2 B per parameter on every GPU. 20 TB does not fit in 80 GB.
  const MemoryBreakdown m = estimate_memory(p);
  EXPECT_DOUBLE_EQ(m.per_stage[0].weights_bytes, 2.0 * 10'058'837'065'728);
  EXPECT_FALSE(m.fits);
  EXPECT_EQ(memory_report(m)["per_stage"][0]["weights_bytes"], 2 * int64_t{10'058'837'065'728});
}

TEST(Limits, ClusterAndDegrees) {
  EXPECT_TRUE(mentions(set(tiny(), "cluster.gpus=1099511627776"), "cluster.gpus = 1099511627776: must be <= 16777216"));
  EXPECT_TRUE(mentions(set(tiny(), "parallel.tp=2097152"), "parallel.tp = 2097152: must be <= 1048576"));
  EXPECT_TRUE(mentions(set(tiny(), "parallel.dp=-1"), "parallel.dp = -1: must be >= 1"));
  // Degrees each within bounds whose product is 2^84: the rule prints it exactly (in double), no wrap.
  json doc = tiny();
  doc["parallel"] = {{"dp", 1 << 24}, {"tp", 1 << 20}, {"pp", 1 << 20}, {"cp", 1 << 20}};
  doc["cluster"]["gpus"] = 8;
  EXPECT_TRUE(mentions(doc, "cluster.gpus = 8: must equal dp*tp*pp*cp = 16777216*1048576*1048576*1048576 = "
                            "19342813113834066795298816"));
  // Products of two degrees that pass 2^31 in rules and messages: pp*virtual_stages, cp*tp.
  json chunks = tiny();
  chunks["parallel"] = {{"pp", 1 << 20}, {"virtual_stages", 1 << 16}, {"pp_schedule", "interleaved"}};
  chunks["cluster"]["gpus"] = 1 << 20;
  EXPECT_TRUE(mentions(chunks, "parallel.pp = 1048576: pp*virtual_stages (68719476736) must be <= model.layers (2)"));
  json sp = tiny();
  sp["parallel"] = {{"tp", 1 << 20}, {"cp", 1 << 20}, {"sequence_parallel", true}};
  sp["cluster"]["gpus"] = 1;
  sp["training"]["seq_len"] = 3 << 20;  // seq_len / cp = 3, not divisible by tp
  EXPECT_TRUE(mentions(sp, "must be divisible by cp*tp (1099511627776) with sequence parallelism"));
  // Without cluster.gpus the default is that product, which is refused rather than truncated to an int.
  doc["cluster"].erase("gpus");
  EXPECT_TRUE(mentions(doc, "cluster.gpus: defaults to dp*tp*pp*cp = 16777216*1048576*1048576*1048576, which must "
                            "be <= 16777216"));
}

TEST(Limits, GpuNumbers) {
  json doc = tiny();
  doc["cluster"]["gpu"] = {{"memory_bytes", std::numeric_limits<double>::quiet_NaN()}, {"peak_flops", {{"bf16", 1e15}}},
                           {"hbm_bytes_per_s", -1}};
  EXPECT_TRUE(mentions(doc, "cluster.gpu.memory_bytes = NaN: must be between 1"));
  EXPECT_TRUE(mentions(doc, "cluster.gpu.hbm_bytes_per_s = -1: must be between 0"));
}

TEST(Limits, LoraRankBeyondTheModelWidth) {
  // Hu et al. 2021: the update BA has rank <= min(in, out); r past the width adds parameters only.
  EXPECT_TRUE(mentions(set(tiny(), "training.lora={\"rank\": 65}"),
                       "training.lora.rank = 65: must be <= model.hidden (64)"));
  EXPECT_TRUE(plantest::errors_of(set(tiny(), "training.lora={\"rank\": 64}")).empty());
}

// Batches and sequences at their bounds: byte counts pass 2^63 and stay finite doubles, written to JSON
// as floating-point numbers. Unfused attention keeps each layer's softmax output, b x heads x s^2
// elements of 4 B (fp32): 2^10 x 4 x 2^64 x 4 = 2^78 bytes for one layer, a lower bound of the peak.
TEST(Limits, ByteCountsPast2To63) {
  json doc = tiny();
  doc["training"] = {{"seq_len", int64_t{1} << 32}, {"micro_batch", 1 << 10}, {"global_batch", 1 << 10},
                     {"precision", "fp32"}, {"flash_attention", false}};
  const Plan p = plan_from_json(doc);
  const MemoryBreakdown m = estimate_memory(p);
  EXPECT_TRUE(std::isfinite(m.peak_bytes));
  EXPECT_GE(m.peak_bytes, std::ldexp(1.0, 78));
  const json r = memory_report(m);
  EXPECT_TRUE(r["peak_bytes"].is_number_float());
  EXPECT_EQ(r["peak_bytes"].get<double>(), std::round(m.peak_bytes));
  const StepEstimate t = estimate_time(p);
  EXPECT_TRUE(std::isfinite(t.step_s) && t.step_s > 0);
  // Below 2^63 a byte count is a JSON integer.
  EXPECT_TRUE(whole_bytes(std::ldexp(1.0, 62)).is_number_integer());
  EXPECT_EQ(whole_bytes(std::ldexp(1.0, 62)).get<int64_t>(), int64_t{1} << 62);
  EXPECT_TRUE(whole_bytes(std::ldexp(1.0, 63)).is_number_float());
}
