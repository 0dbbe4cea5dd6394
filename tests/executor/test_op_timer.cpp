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

// One step of tiny-llama (2 layers; micro-batch 2 of a global batch of 4: two micro-batches): per
// micro-batch the forward runs 7 linear layers per layer and the head's (15) and the backward as many;
// memory-bound ops: 2 norms, 2 ropes (q and k) and the SwiGLU per layer, plus the embedding, the final
// norm and the loss (13) each way; attention once per layer each way (4).
TEST(OpTimer, ATrainerStepCountsEveryOpOfTheModel) {
  const auto plan = paraplan::planner::plan_from_json(nlohmann::json{
      {"model", "tiny-llama"},
      {"training", {{"seq_len", 16}, {"micro_batch", 2}, {"global_batch", 4}, {"precision", "fp32"}}},
      {"parallel", {{"dp", 1}}},
      {"cluster", {{"gpu", "cpu"}, {"gpus", 1}}}});
  auto groups = make_fake_groups(0, paraplan::planner::RankGrid(plan));
  TrainOptions o;
  o.plan = plan;
  Trainer trainer(o, *groups);
  const StepStats s = trainer.step();
  auto m = by_class(s.op_times);
  EXPECT_EQ(m["gemm"].calls, 2 * 2 * 15);
  EXPECT_EQ(m["memory"].calls, 2 * 2 * 13);
  EXPECT_EQ(m["attention"].calls, 2 * 2 * 2);
  EXPECT_EQ(m["optimizer"].calls, 1);
  EXPECT_EQ(s.op_times.back().op_class, "idle");
  EXPECT_NEAR(sum(s.op_times), s.step_s, 1e-9);
  for (const OpTally& t : s.op_times) EXPECT_GE(t.seconds, 0) << t.op_class;
}
