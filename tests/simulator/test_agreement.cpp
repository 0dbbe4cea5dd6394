// The simulator against the planner on real plans: where stages are uniform the two agree exactly
// (bubble and per-stage peak memory); where they are not (embedding and head on the end stages, uneven
// chunks, ZB's deferred W, ZBV's V) the simulator shows the difference and each test derives it.
#include <gtest/gtest.h>

#include "paraplan/comm.hpp"
#include "paraplan/context.hpp"
#include "paraplan/memory.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/sim/simulate.hpp"
#include "paraplan/timing.hpp"

using namespace paraplan;
using planner::PipelineSchedule;

namespace {

const std::string kExample = std::string(PARAPLAN_SOURCE_DIR) + "/data/examples/llama3-8b.json";

// LLaMA-3-8B (32 layers), pp = 4, dp = 2, 8 micro-batches, ZeRO-1.
planner::Plan llama8b(const std::string& schedule, int v) {
  return planner::load_plan(kExample, {"parallel.pp=4", "parallel.dp=2", "parallel.zero=1", "training.global_batch=16",
                                       "parallel.pp_schedule=\"" + schedule + "\"",
                                       "parallel.virtual_stages=" + std::to_string(v)});
}

// LLaMA-3.1-405B (126 layers), tp = 8 with sequence parallelism, pp = 16.
planner::Plan llama405b(const std::string& schedule, int v, int dp, long long m) {
  return planner::load_plan(kExample, {"model=\"llama3-405b\"", "parallel.tp=8", "parallel.pp=16", "parallel.dp=" + std::to_string(dp),
                                   "parallel.sequence_parallel=true", "cluster.gpus=" + std::to_string(128 * dp),
                                   "training.global_batch=" + std::to_string(dp * m),
                                   "parallel.pp_schedule=\"" + schedule + "\"",
                                   "parallel.virtual_stages=" + std::to_string(v)});
}

double headroom(const planner::Plan& p) { return planner::make_context(p).fw.overheads.allocator_headroom; }

}  // namespace

// 1F1B and GPipe: every stage's simulated peak equals estimate_memory's total (weights, gradients,
// master, optimizer, in-flight activations + working set, buffers, overheads) to the byte.
TEST(Agreement, PeakMemoryEqualsThePlannersOnUniformStages) {
  for (const char* schedule : {"1f1b", "gpipe"}) {
    const planner::Plan p = llama8b(schedule, 1);
    const sim::SimResult r = sim::simulate(p);
    const planner::MemoryBreakdown mem = planner::estimate_memory(p);
    for (int s = 0; s < 4; ++s)
      EXPECT_NEAR(r.stages[static_cast<size_t>(s)].peak_bytes, mem.per_stage[static_cast<size_t>(s)].total_bytes(),
                  1e-12 * mem.peak_bytes)
          << schedule << " stage " << s;
  }
}

// Interleaved, v = 2: stage 0 runs 2(p - 1) + (v - 1)p = 10 warm-up forwards (virtual micro-batches 0-3
// and 8-9 on chunk 0, which holds the embedding; 4-7 on chunk 1), then alternates forwards 10, 11 (chunk 0)
// with backwards 0, 1 (chunk 1): 11 chunk-micro-batches in flight throughout, 8 of them on chunk 0 after
// the second backward. The layers agree (4 per chunk); the embedding's saved token ids are held 8 times,
// where the planner's average over chunks holds them 11/2 = 5.5 times.
TEST(Agreement, InterleavedHoldsTheEmbeddingMoreOften) {
  const planner::Plan p = llama8b("interleaved", 2);
  const sim::SimResult r = sim::simulate(p);
  const planner::MemoryBreakdown mem = planner::estimate_memory(p);
  const double emb = planner::make_context(p).w.embedding.saved_bytes[0];
  EXPECT_NEAR(r.stages[0].peak_bytes, mem.per_stage[0].total_bytes() + (8 - 5.5) * emb * (1 + headroom(p)), 1);
  for (int s = 1; s < 4; ++s)
    EXPECT_NEAR(r.stages[static_cast<size_t>(s)].peak_bytes, mem.per_stage[static_cast<size_t>(s)].total_bytes(), 1);
}

// ZB-H1 frees activations at W: every stage holds min(m, p) = 4 micro-batches, the last one also the
// head's (fp32 logits) until their W. The planner keeps the same (pipeline.cpp, memory.cpp).
TEST(Agreement, ZeroBubbleH1KeepsTheHeadUntilW) {
  const planner::Plan p = llama8b("zb-h1", 1);
  const sim::SimResult r = sim::simulate(p);
  const planner::MemoryBreakdown mem = planner::estimate_memory(p);
  for (int s = 0; s < 4; ++s)
    EXPECT_NEAR(r.stages[static_cast<size_t>(s)].peak_bytes, mem.per_stage[static_cast<size_t>(s)].total_bytes(), 1);
  // 4 micro-batches of the head: the fp32 logits of 4096 tokens x 128256 words each
  const double head = planner::make_context(p).w.head.saved_bytes[0];
  EXPECT_GT(head, 4.0 * 4096 * 128256);
  EXPECT_GT(mem.per_stage[3].saved_activation_bytes, 4 * head);
}

// ZBV places chunks in a V: stage 0 holds the first chunk (embedding) and the last (head), and so does
// the planner (stage_of_chunk): their static memory agrees on every stage, and stage 3 holds no head.
TEST(Agreement, ZbvPutsTheHeadOnStageZero) {
  const planner::Plan p = llama8b("zbv", 2);
  const sim::SimResult r = sim::simulate(p);
  const planner::MemoryBreakdown mem = planner::estimate_memory(p);
  EXPECT_TRUE(r.stages[0].placed.has_embedding && r.stages[0].placed.has_head);
  EXPECT_TRUE(mem.per_stage[0].has_embedding && mem.per_stage[0].has_head);
  EXPECT_FALSE(mem.per_stage[3].has_head);
  auto states = [](const planner::StageMemory& s) {
    return s.weights_bytes + s.gradients_bytes + s.master_weights_bytes + s.optimizer_bytes + s.buffers_bytes;
  };
  for (int s = 0; s < 4; ++s)
    EXPECT_NEAR(r.stages[static_cast<size_t>(s)].placed.static_bytes, states(mem.per_stage[static_cast<size_t>(s)]), 1);
}

// The bubble on uniform stages: with the embedding and the head left out and no transfers, the 1F1B
// bubble is (p - 1)(F + B) with F and B one stage's forward and backward per micro-batch from the
// planner's block times: 8 layers x (forward + exposed TP) and 8 x (activation + weight gradients +
// exposed TP + selective recompute). That is (p - 1)/m of the ideal m(F + B).
TEST(Agreement, OneFOneBBubbleOnUniformStages) {
  planner::Plan p = llama8b("1f1b", 1);
  const planner::ShapeContext ctx = planner::make_context(p);
  sim::StepCosts costs = sim::build_costs(p, ctx);
  for (sim::ChunkCost& ch : costs.chunks) {
    for (int k = 0; k < ch.units; ++k) {
      const sim::UnitCost& u = costs.units[static_cast<size_t>(ch.first_unit + k)];
      if (u.kind == planner::BlockKind::dense_layer) continue;
      ch.f_compute_s -= u.f_compute_s;
      ch.f_exposed_s -= u.f_exposed_s;
      ch.b_compute_s -= u.b_compute_s;
      ch.b_exposed_s -= u.b_exposed_s;
      ch.w_compute_s -= u.w_compute_s;
    }
  }
  costs.p2p_s = 0;
  costs.dp.reduce_grads = false;
  const sim::Schedule s = sim::make_schedule(PipelineSchedule::one_f_one_b, 4, 1, 8);
  const sim::SimResult r = sim::simulate(s, costs, sim::GraphOptions{}, {});
  const planner::BlockTime& t = ctx.times.dense_layer;
  const int sel = static_cast<int>(planner::Recompute::selective);
  const double f = 8 * (t.fwd + t.exposed_fwd), b = 8 * (t.bwd_input + t.bwd_weight + t.exposed_bwd + t.recompute[sel]);
  EXPECT_NEAR(r.bubble_s, 3 * (f + b), 1e-9);
  EXPECT_NEAR(r.bubble_s / (8 * (f + b)), 3.0 / 8, 1e-12);
  EXPECT_NEAR(r.compute_s, 8 * (f + b), 1e-9);
}

// Uneven stages, worked by hand: p = 3, m = 3, F = (0.5, 1, 0.5), B = (1, 2, 1). Stage 1 (the slowest)
// runs F0 [0.5, 1.5], F1 [1.5, 2.5], waits for stage 2's B0 (F0 [1.5, 2], B0 [2, 3]), then B0 F2 B1 B2
// without a gap [3, 10]; stage 0's last backward [10, 11]. The planner's (m - 1) C_max + sum C = 12
// charges the light last stage its whole F + B = 1.5 after the slowest stage's forward; 1F1B exposes only
// F2 + B2 - F1 = 0.5 of it, because stage 1 runs its next forward meanwhile.
TEST(Agreement, UnevenStagesByHand) {
  sim::StepCosts c;
  const double fs[] = {0.5, 1, 0.5}, bs[] = {1, 2, 1};
  std::vector<planner::StageTime> stages(3);
  for (int j = 0; j < 3; ++j) {
    sim::UnitCost u;
    u.f_compute_s = fs[j];
    u.b_compute_s = bs[j];
    sim::ChunkCost ch;
    ch.first_unit = j;
    ch.units = 1;
    ch.f_compute_s = fs[j];
    ch.b_compute_s = bs[j];
    c.units.push_back(u);
    c.chunks.push_back(ch);
    stages[static_cast<size_t>(j)].fwd = fs[j];
    stages[static_cast<size_t>(j)].bwd = bs[j];
  }
  const sim::SimResult r = sim::simulate(sim::make_schedule(PipelineSchedule::one_f_one_b, 3, 1, 3), c, {}, {});
  EXPECT_DOUBLE_EQ(r.step_s, 11);
  EXPECT_DOUBLE_EQ(planner::pipeline_time(PipelineSchedule::one_f_one_b, 1, 3, stages).total, 12);
}

// LLaMA-3.1-405B on 16 stages: 7, 8 x 14, 7 layers, the embedding on stage 0, the head on stage 15.
// Each stage computes exactly what the planner says (m x its pure compute per micro-batch); the step
// is shorter than the planner's, which charges the pipeline transfers to every micro-batch and the
// light end stages their whole F + B (UnevenStagesByHand).
TEST(Agreement, UnevenStages405B) {
  const planner::Plan p = llama405b("1f1b", 1, 1, 32);
  const sim::SimResult r = sim::simulate(p);
  const planner::StepEstimate e = planner::estimate_time(p);
  ASSERT_EQ(r.stages.size(), 16u);
  EXPECT_EQ(r.stages[0].placed.dense_layers, 7);
  EXPECT_EQ(r.stages[1].placed.dense_layers, 8);
  EXPECT_EQ(r.stages[15].placed.dense_layers, 7);
  for (int s = 0; s < 16; ++s) {
    const sim::StageResult& st = r.stages[static_cast<size_t>(s)];
    EXPECT_NEAR(st.busy_s - st.optimizer_s, 32 * e.per_stage[static_cast<size_t>(s)].compute, 1e-9 * st.busy_s);
    EXPECT_NEAR(st.optimizer_s, e.per_stage[static_cast<size_t>(s)].optimizer, 1e-12);
  }
  // The planner's excess is at most what it charges beyond the simulation: both transfers on every
  // micro-batch (StageTime::p2p each) and the light last stage's shortfall from the slowest stage.
  const auto c = [&](int s) { return e.per_stage[static_cast<size_t>(s)].fwd + e.per_stage[static_cast<size_t>(s)].bwd; };
  EXPECT_LT(r.step_s, e.step_s);
  EXPECT_LT(e.step_s - r.step_s, 32 * e.per_stage[0].p2p + (c(1) - c(15)));
}

// Interleaved 405B, v = 4: 126 layers over 64 chunks, 1 in the first and last chunk, 2 elsewhere. Stage 15
// first backs up after (v - 1)p = 48 warm-up forwards on its 2-layer chunks (16 each) and one forward of
// its last chunk (1 layer + head): 97 layer activations, where the planner's average, (48 + 1)/4 = 12.25
// micro-batches of its 7 layers, gives 85.75. Stage 0 backs up after 79 forwards: 31 on its first chunk
// (1 layer + embedding) and 16 on each 2-layer chunk: 127 layers and 31 embeddings, against 19.75 x 7 =
// 138.25 layers and 19.75 embeddings.
TEST(Agreement, UnevenChunksInterleaved405B) {
  const planner::Plan p = llama405b("interleaved", 4, 8, 128);
  const sim::SimResult r = sim::simulate(p);
  const planner::MemoryBreakdown mem = planner::estimate_memory(p);
  const planner::ShapeContext ctx = planner::make_context(p);
  const double layer = ctx.w.dense_layer.saved_bytes[static_cast<int>(planner::Recompute::selective)];
  const double emb = ctx.w.embedding.saved_bytes[0], h = 1 + headroom(p);
  EXPECT_NEAR(r.stages[15].peak_bytes, mem.per_stage[15].total_bytes() + 11.25 * layer * h, 1);
  EXPECT_NEAR(r.stages[0].peak_bytes, mem.per_stage[0].total_bytes() + (-11.25 * layer + 11.25 * emb) * h, 1);
  for (int s = 1; s < 15; ++s)  // inner stages: four 2-layer chunks, uniform
    EXPECT_NEAR(r.stages[static_cast<size_t>(s)].peak_bytes, mem.per_stage[static_cast<size_t>(s)].total_bytes(), 1);
}

// A step of 2^40 micro-batches would not fit in memory as tasks: refused with the bound, not attempted.
TEST(Agreement, HugeStepsAreRefusedNotAttempted) {
  const planner::Plan p = planner::load_plan(kExample, {"model=\"tiny-llama\"", "parallel.dp=1", "cluster.gpus=1",
                                                       "training.seq_len=32", "training.global_batch=1099511627776"});
  try {
    sim::simulate(p);
    ADD_FAILURE() << "simulated";
  } catch (const planner::PlanError& e) {
    EXPECT_NE(std::string(e.what()).find("training.global_batch = 1099511627776: gives 1099511627776 micro-batches x 1 "
                                         "model chunks; the event simulation takes at most 4194304"),
              std::string::npos)
        << e.what();
  }
}
