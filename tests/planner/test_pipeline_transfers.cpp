// Pipeline transfers of the interleaved schedule: blocking on every micro-batch (Megatron-LM of 2021-22,
// --no-overlap-p2p-communication) or under compute but for the warm-up and cool-down (Megatron-Core's
// overlap_p2p_comm, parallel.pp_comm_overlap), derived by hand on the idealised device of
// tiny_gpt_by_hand.hpp (no latency, efficiency 1).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "paraplan/plan_io.hpp"
#include "paraplan/timing.hpp"
#include "tiny_gpt_by_hand.hpp"

using namespace paraplan::planner;

namespace {

// The tiny GPT with 4 layers over pp 2 x v 2 interleaved chunks, dp 1: m = 8 micro-batches of 1,024 tokens.
Plan interleaved(bool overlap, const char* framework = "megatron") {
  nlohmann::json j = nlohmann::json::parse(tinygpt::plan_json(8));
  j["model"]["layers"] = 4;
  j["parallel"]["dp"] = 1;
  j["parallel"]["pp_schedule"] = "interleaved";
  j["parallel"]["virtual_stages"] = 2;
  j["parallel"]["pp_comm_overlap"] = overlap;
  j["training"]["framework"] = framework;
  j["cluster"]["gpus"] = 2;
  return plan_from_json(j);
}

}  // namespace

// One transfer: 1,024 tokens x 1,024 x 2 B = 2 MiB over NVLink's 1e11 B/s, t = 20.97 us. Blocking, each
// stage's forward and backward of a micro-batch carry v = 2 transfers each: 2 v t per micro-batch on the
// critical stage, m x 2 v t = 32 t in the step. Overlapped, only the first stage's warm-up forwards and
// cool-down backwards wait, min(m v, 2(p - 1) + (v - 1) p) = min(16, 4) = 4 each (Megatron-Core
// schedules.py): 8 t. The pipeline under blocking transfers: every C grows by 2 v t, so m C_max grows by
// 32 t and (sum C - C_max) / v by (p - 1) 2 v t / v = 2 t: 34 t, of which the overlapped schedule keeps 8 t.
TEST(PipelineTransfers, InterleavedOverlapLeavesTheWarmUpAndCoolDown) {
  const double t = 1024.0 * 1024 * 2 / 1e11;
  const StepEstimate blocking = estimate_time(interleaved(false));
  const StepEstimate overlapped = estimate_time(interleaved(true));
  EXPECT_NEAR(blocking.pp_p2p_s, 32 * t, 1e-12);
  EXPECT_NEAR(overlapped.pp_p2p_s, 8 * t, 1e-12);
  EXPECT_NEAR(blocking.step_s - overlapped.step_s, 34 * t - 8 * t, 1e-12);
  EXPECT_NEAR(blocking.compute_s, overlapped.compute_s, 1e-12);
}

// Only Megatron-Core overlaps: Megatron-LM of 2021-22 and the other frameworks block on every transfer
// whatever the plan asks; 1F1B blocks under every framework (Megatron-LM turns overlap_p2p_comm off without
// virtual stages, arguments.py).
TEST(PipelineTransfers, OnlyMegatronCoresInterleavedScheduleOverlaps) {
  const StepEstimate blocking = estimate_time(interleaved(false));
  for (const char* fw : {"megatron-2021", "fsdp", "deepspeed"})
    EXPECT_NEAR(estimate_time(interleaved(true, fw)).pp_p2p_s, blocking.pp_p2p_s, 1e-12) << fw;
  Plan one_f_one_b = plan_from_json(nlohmann::json::parse(tinygpt::plan_json(8)));
  const double p2p = estimate_time(one_f_one_b).pp_p2p_s;
  one_f_one_b.parallel.pp_comm_overlap = false;
  EXPECT_EQ(estimate_time(one_f_one_b).pp_p2p_s, p2p);
}

// The field round-trips, written only when it is not the default.
TEST(PipelineTransfers, PlanFieldRoundTrips) {
  EXPECT_FALSE(plan_to_json(interleaved(true))["parallel"].contains("pp_comm_overlap"));
  const nlohmann::json j = plan_to_json(interleaved(false));
  EXPECT_EQ(j["parallel"]["pp_comm_overlap"], false);
  EXPECT_FALSE(plan_from_json(j).parallel.pp_comm_overlap);
}
