// Where a step's time goes (op_timer.hpp, issue 13): scopes charge only their own time, the classes of a
// step add up to it, and a trainer step counts each class once per op it runs.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "paraplan/exec/op_timer.hpp"
#include "paraplan/exec/trainer.hpp"
#include "paraplan/plan_io.hpp"

using namespace paraplan::exec;

namespace {

std::map<std::string, OpTally> by_class(const std::vector<OpTally>& v) {
  std::map<std::string, OpTally> m;
  for (const OpTally& t : v) m[t.op_class] = t;
  return m;
}

double sum(const std::vector<OpTally>& v) {
  double s = 0;
  for (const OpTally& t : v) s += t.seconds;
  return s;
}

// One step of rank 0 of tiny-llama (2 layers; micro-batch 2 of a global batch of 4: two
// micro-batches) under `parallel`, on `gpus` CPU ranks (the others faked).
StepStats tiny_llama_step(const nlohmann::json& parallel, int gpus) {
  const auto plan = paraplan::planner::plan_from_json(nlohmann::json{
      {"model", "tiny-llama"},
      {"training", {{"seq_len", 16}, {"micro_batch", 2}, {"global_batch", 4}, {"precision", "fp32"}}},
      {"parallel", parallel},
      {"cluster", {{"gpu", "cpu"}, {"gpus", gpus}}}});
  auto groups = make_fake_groups(0, paraplan::planner::RankGrid(plan));
  TrainOptions o;
  o.plan = plan;
  Trainer trainer(o, *groups);
  return trainer.step();
}

}  // namespace

// A 10 ms sleep inside "inner" inside "outer": inner holds at least its 10 ms, outer at least its own
// 5 ms but not the inner's (its total is at least 15 ms). Lower bounds only: a sleep lasts at least
// what it asked for, and this machine may be slower than that.
TEST(OpTimer, NestedScopesChargeOnlyTheirOwnTime) {
  using namespace std::chrono_literals;
  const auto t0 = std::chrono::steady_clock::now();
  op_timer_begin_step();
  {
    const OpScope outer("outer");
    std::this_thread::sleep_for(5ms);
    {
      const OpScope inner("inner");
      std::this_thread::sleep_for(10ms);
    }
  }
  { const OpScope again("outer"); }
  const double step = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::vector<OpTally> t = op_timer_end_step(step);
  auto m = by_class(t);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_GE(m["inner"].seconds, 0.010);
  EXPECT_GE(m["outer"].seconds, 0.005);
  EXPECT_EQ(m["outer"].calls, 2);
  EXPECT_EQ(m["inner"].calls, 1);
  EXPECT_EQ(t.back().op_class, "idle");
  EXPECT_NEAR(sum(t), step, 1e-12);
  // Outside a step nothing is counted.
  { const OpScope ignored("outer"); }
  op_timer_begin_step();
  EXPECT_EQ(op_timer_end_step(0).size(), 1u);
}

// One step of tiny-llama on one rank: per micro-batch the forward runs 4 linear ops per layer (q, k and v as one column-parallel group, o, gate
// and up as one group, down: model.cpp) and the head's (9), and the backward as many; memory-bound ops:
// 2 norms, 2 ropes (q and k) and the SwiGLU per layer, plus the embedding, the final norm and the loss
// (13) each way; attention once per layer each way (4).
TEST(OpTimer, ATrainerStepCountsEveryOpOfTheModel) {
  const StepStats s = tiny_llama_step({{"dp", 1}}, 1);
  auto m = by_class(s.op_times);
  EXPECT_EQ(m["gemm"].calls, 2 * 2 * 9);
  EXPECT_EQ(m["memory"].calls, 2 * 2 * 13);
  EXPECT_EQ(m["attention"].calls, 2 * 2 * 2);
  EXPECT_EQ(m["optimizer"].calls, 1);
  EXPECT_EQ(s.op_times.back().op_class, "idle");
  EXPECT_NEAR(sum(s.op_times), s.step_s, 1e-9);
  for (const OpTally& t : s.op_times) EXPECT_GE(t.seconds, 0) << t.op_class;
}

// The first of two pipeline stages (rank 0 alone, its neighbour faked) holds the embedding and layer
// 0. Under 1F1B each micro-batch runs its 4 linear ops forward and backward (2 * 2 * 4 gemm) and 6
// memory-bound ops each way (embedding, 2 norms, 2 ropes, SwiGLU: 2 * 2 * 6). Under ZB-H1 the backward
// leaves the weight gradients to the W pass, which counts them in their op's class as well: one more
// gemm per linear op (2 * 3 * 4) and one more memory op per norm and the embedding (2 * (12 + 3)).
TEST(OpTimer, TheWPassOfAZeroBubbleScheduleCountsItsWeightGradients) {
  auto one_f_one_b = by_class(tiny_llama_step({{"pp", 2}}, 2).op_times);
  EXPECT_EQ(one_f_one_b["gemm"].calls, 2 * 2 * 4);
  EXPECT_EQ(one_f_one_b["memory"].calls, 2 * 2 * 6);
  auto zb = by_class(tiny_llama_step({{"pp", 2}, {"pp_schedule", "zb-h1"}}, 2).op_times);
  EXPECT_EQ(zb["gemm"].calls, 2 * 3 * 4);
  EXPECT_EQ(zb["memory"].calls, 2 * (12 + 3));
  EXPECT_EQ(zb["attention"].calls, 2 * 2 * 1);
}
