// Overlap of communication with compute on small synthetic steps timed by hand: DP gradient buckets
// during the backward, ZeRO-3 prefetch, exposed TP collectives and pipeline transfers.
#include <gtest/gtest.h>

#include "helpers.hpp"
#include "paraplan/sim/simulate.hpp"

using namespace paraplan::sim;
using paraplan::planner::CommKind;
using paraplan::planner::PipelineSchedule;

namespace {

// One stage, one model chunk of three units, each forward 1 s and backward 1 s.
StepCosts three_units() {
  StepCosts c;
  ChunkCost ch;
  ch.units = 3;
  for (int i = 0; i < 3; ++i) {
    UnitCost u;
    u.f_compute_s = 1;
    u.b_compute_s = 1;
    u.saved_bytes = 10;
    u.trainable_dense = 1e9;
    c.units.push_back(u);
    ch.f_compute_s += 1;
    ch.b_compute_s += 1;
    ch.saved_bytes += 10;
  }
  c.chunks.push_back(ch);
  // DP over 2 ranks on a 1 GB/s link without latency: an all-reduce of 4 B x 1e9 gradients costs
  // 4e9 x 2(2-1)/2 / 1e9 = 4 s; set the gradients to 0.375e9 per unit for 1.5 s.
  c.dp.n_dense = c.dp.n_expert = 2;
  c.dp.link = {1e9, 1, 0, false};
  c.dp.grad_bytes_per_param = 4;
  return c;
}

// three_units() with 0.375e9 gradients a unit (1.5 s each to all-reduce), reduced in buckets of `bucket`.
StepCosts bucketed_units(double bucket) {
  StepCosts c = three_units();
  for (auto& u : c.units) u.trainable_dense = 0.375e9;
  c.dp.reduce_grads = true;
  c.dp.bucket_params = bucket;
  return c;
}

// One micro-batch through the one stage, then a 1 s optimizer step.
SimResult one_step(const StepCosts& c, bool dp_overlap = true) {
  GraphOptions go;
  go.optimizer_s = {1};
  go.dp_overlap = dp_overlap;
  return simulate(make_schedule(PipelineSchedule::one_f_one_b, 1, 1, 1), c, go, {});
}

}  // namespace

// Buckets of one unit each: the forward runs [0, 3], the backward's units end at 4, 5 and 6 (last unit
// first); their all-reduces (1.5 s each) queue on the DP stream: [4, 5.5], [5.5, 7], [7, 8.5]; the
// optimizer (1 s) waits for the last: [8.5, 9.5]. 2.5 s of reduction is exposed. Without overlap one
// bucket of all three (4.5 s) starts at 6: the optimizer runs [10.5, 11.5].
TEST(Overlap, GradientBucketsDuringTheBackward) {
  const StepCosts c = bucketed_units(1);
  SimResult r = one_step(c);
  EXPECT_DOUBLE_EQ(r.step_s, 9.5);
  EXPECT_DOUBLE_EQ(r.dp_s, 2.5);
  EXPECT_DOUBLE_EQ(r.compute_s, 6);
  EXPECT_DOUBLE_EQ(r.optimizer_s, 1);
  r = one_step(c, false);
  EXPECT_DOUBLE_EQ(r.step_s, 11.5);
  EXPECT_DOUBLE_EQ(r.dp_s, 4.5);
  // Buckets of two units (0.75e9 >= bucket size): units 2+1 end at 5 -> [5, 8]; unit 0 at 6 -> [8, 9.5].
  EXPECT_DOUBLE_EQ(one_step(bucketed_units(0.75e9)).step_s, 10.5);
}

// A layer of two weight matrices with two buckets' worth of gradients (0.375e9 parameters, buckets of
// 0.1875e9) closes a bucket halfway through its backward (Megatron-Core closes buckets between parameters):
// pieces end at 3.5, 4, 4.5, 5, 5.5 and 6; their all-reduces (0.75 s each) queue from 3.5 and end at 8; the
// optimizer runs [8, 9]: 2 s exposed, against 2.5 s with a bucket per layer. A unit of one matrix stays
// whole, whatever the bucket size.
TEST(Overlap, ALayerFillsSeveralBucketsDuringItsBackward) {
  StepCosts c = bucketed_units(0.1875e9);
  for (auto& u : c.units) u.weight_tensors = 2;
  SimResult r = one_step(c);
  EXPECT_DOUBLE_EQ(r.step_s, 9);
  EXPECT_DOUBLE_EQ(r.dp_s, 2);
  EXPECT_DOUBLE_EQ(r.compute_s, 6);
  for (auto& u : c.units) u.weight_tensors = 1;
  r = one_step(c);
  EXPECT_DOUBLE_EQ(r.step_s, 9.5);
  EXPECT_DOUBLE_EQ(r.dp_s, 2.5);
}

// ZeRO-3, gathers of 0.5 s, one unit prefetched: gathers G0 [0, .5], G1 [.5, 1]; forwards u0 [.5, 1.5],
// u1 [1.5, 2.5], u2 [2.5, 3.5] (G2 may start when u0 ends: [1.5, 2]); the backward re-gathers u2, u1, u0,
// each once the compute two units back has ended: G2' [2.5, 3], G1' [3.5, 4], G0' [4.5, 5], backwards
// [3.5, 4.5], [4.5, 5.5], [5.5, 6.5]. Only the first gather is exposed. At most two units are gathered:
// peak = 3 x 10 saved + 2 x 100 gathered. Without prefetch every gather waits for the previous unit:
// six 0.5 s gathers exposed, 9 s.
TEST(Overlap, ZeroThreePrefetchesOneUnit) {
  StepCosts c = three_units();
  c.zero3 = true;
  for (auto& u : c.units) {
    u.gather_s = 0.5;
    u.gathered_bytes = 100;
  }
  const Schedule s = make_schedule(PipelineSchedule::one_f_one_b, 1, 1, 1);
  GraphOptions go;
  SimResult r = simulate(s, c, go, {});
  EXPECT_DOUBLE_EQ(r.step_s, 6.5);
  EXPECT_DOUBLE_EQ(r.zero3_s, 0.5);
  EXPECT_DOUBLE_EQ(r.stages[0].peak_dynamic_bytes, 3 * 10 + 2 * 100);
  go.dp_overlap = false;
  r = simulate(s, c, go, {});
  EXPECT_DOUBLE_EQ(r.step_s, 9);
  EXPECT_DOUBLE_EQ(r.zero3_s, 3);
}

// TP collectives the time model exposes (0.25 s per unit forward, 0.5 s backward) run on the TP stream
// after each compute, and the next compute waits: 3 x 0.25 + 3 x 0.5 exposed in one pass (one segment).
TEST(Overlap, ExposedTensorParallelCollectives) {
  StepCosts c = three_units();
  c.chunks[0].f_exposed_s = 0.75;
  c.chunks[0].b_exposed_s = 1.5;
  c.chunks[0].f_hidden_s = 0.5;  // hidden under the GEMMs: drawn, costs nothing
  const SimResult r = simulate(make_schedule(PipelineSchedule::one_f_one_b, 1, 1, 1), c, GraphOptions{}, {});
  EXPECT_DOUBLE_EQ(r.step_s, 6 + 2.25);
  EXPECT_DOUBLE_EQ(r.tp_s, 2.25);
  ASSERT_EQ(r.graph.hidden.size(), 1u);
  EXPECT_DOUBLE_EQ(r.graph.hidden[0].duration_s, 0.5);
}

// Pipeline transfers on their own stream, p = 2, m = 1, F = 1, B = 2, transfer 0.25: stage 0 F [0, 1],
// send [1, 1.25], stage 1 F [1.25, 2.25], B [2.25, 4.25], send back [4.25, 4.5], stage 0 B [4.5, 6.5].
// Stage 0 waits from 1 to 4.5: 0.25 of it for the transfer, the rest for stage 1 (bubble).
TEST(Overlap, PipelineTransfers) {
  StepCosts c = paraplan::sim::testing::uniform_costs(2, 1, 2, 0);
  c.p2p_s = 0.25;
  const SimResult r = simulate(make_schedule(PipelineSchedule::one_f_one_b, 2, 1, 1), c, GraphOptions{}, {});
  EXPECT_DOUBLE_EQ(r.step_s, 6.5);
  EXPECT_EQ(r.critical_stage, 0);
  EXPECT_DOUBLE_EQ(r.pp_s, 0.25);
  EXPECT_DOUBLE_EQ(r.bubble_s, 3.25);
  EXPECT_DOUBLE_EQ(r.stages[1].busy_s, 3);
  EXPECT_DOUBLE_EQ(r.stages[1].idle_s, 3.5);
  // m = 3 (stage 0: F0 F1 B0 F2 B1 B2; stage 1: F0 B0 F1 B1 F2 B2): stage 1 runs F0 [1.25, 2.25], B0 [2.25,
  // 4.25], F1 [4.25, 5.25], B1 [5.25, 7.25]; stage 0 gets B0 at 4.5, runs it [4.5, 6.5] and only then F2
  // [6.5, 7.5], which reaches stage 1 at 7.75: F2 [7.75, 8.75], B2 [8.75, 10.75], back at 11, stage 0's B2
  // [11, 13]. The planner's (m + p - 1)(F + B + 2 x 0.25) = 14 charges both transfers to every micro-batch;
  // here stage 1's forward of the next micro-batch hides one of them until the round trip binds.
  const SimResult three = simulate(make_schedule(PipelineSchedule::one_f_one_b, 2, 1, 3), c, GraphOptions{}, {});
  EXPECT_DOUBLE_EQ(three.step_s, 13);
}
