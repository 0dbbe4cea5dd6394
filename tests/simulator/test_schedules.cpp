// Schedule generators against orders drawn by hand from each schedule's definition (schedule.cpp cites
// the papers and reference implementations). Notation: F/B/W, micro-batch, and for v > 1 the local chunk
// ("F2c1": forward of micro-batch 2 on the stage's second chunk).
#include <gtest/gtest.h>

#include "paraplan/error.hpp"
#include "paraplan/sim/schedule.hpp"

using namespace paraplan::sim;
using paraplan::planner::PipelineSchedule;
using paraplan::planner::PlanError;

namespace {
std::string order(const Schedule& s, int stage) { return to_string(s.stages[static_cast<size_t>(stage)], s.v); }
}  // namespace

// GPipe (Huang et al. 2019, Fig. 2c): all forwards, then the backwards in reverse micro-batch order.
TEST(Schedule, GPipe) {
  const Schedule s = make_schedule(PipelineSchedule::gpipe, 2, 1, 3);
  EXPECT_EQ(order(s, 0), "F0 F1 F2 B2 B1 B0");
  EXPECT_EQ(order(s, 1), "F0 F1 F2 B2 B1 B0");
}

// 1F1B (Narayanan et al. 2021 Fig. 3; Megatron): stage s warms up with p - s - 1 forwards, alternates
// forward and backward, then drains. p = 3, m = 5.
TEST(Schedule, OneFOneB) {
  const Schedule s = make_schedule(PipelineSchedule::one_f_one_b, 3, 1, 5);
  EXPECT_EQ(order(s, 0), "F0 F1 F2 B0 F3 B1 F4 B2 B3 B4");
  EXPECT_EQ(order(s, 1), "F0 F1 B0 F2 B1 F3 B2 F4 B3 B4");
  EXPECT_EQ(order(s, 2), "F0 B0 F1 B1 F2 B2 F3 B3 F4 B4");
  // m < p: the warm-up is cut at m.
  const Schedule short_m = make_schedule(PipelineSchedule::one_f_one_b, 4, 1, 2);
  EXPECT_EQ(order(short_m, 0), "F0 F1 B0 B1");
  EXPECT_EQ(order(short_m, 3), "F0 B0 F1 B1");
}

// Interleaved 1F1B in Megatron-Core's order, p = 2, v = 2, m = 4. Stage 0 warms up with
// 2(p - 1) + (v - 1)p = 4 forwards, stage 1 with 2. Virtual micro-batch k runs chunk (k mod 4) / 2 on
// micro-batch (k / 4) * 2 + k mod 2; backwards take the chunks in reverse (1 - that).
TEST(Schedule, InterleavedMegatronOrder) {
  const Schedule s = make_schedule(PipelineSchedule::interleaved, 2, 2, 4);
  EXPECT_EQ(order(s, 0), "F0c0 F1c0 F0c1 F1c1 F2c0 B0c1 F3c0 B1c1 F2c1 B0c0 F3c1 B1c0 B2c1 B3c1 B2c0 B3c0");
  EXPECT_EQ(order(s, 1), "F0c0 F1c0 F0c1 B0c1 F1c1 B1c1 F2c0 B0c0 F3c0 B1c0 F2c1 B2c1 F3c1 B3c1 B2c0 B3c0");
  // Megatron interleaving: local chunk k of stage s is model chunk k p + s.
  EXPECT_EQ(s.model_chunk(1, 1), 3);
  EXPECT_EQ(s.stage_of(2), 0);
}

// ZB-H1 (Qi et al. 2023 §3.1), p = 3, m = 5: stage s runs p - s - 1 warm-up forwards, then s forward/B
// pairs without W, then F B W triples (W of the oldest pending micro-batch), then B W, then the last Ws.
TEST(Schedule, ZeroBubbleH1) {
  const Schedule s = make_schedule(PipelineSchedule::zb_h1, 3, 1, 5);
  EXPECT_TRUE(s.split_backward);
  EXPECT_EQ(order(s, 0), "F0 F1 F2 B0 W0 F3 B1 W1 F4 B2 W2 B3 W3 B4 W4");
  EXPECT_EQ(order(s, 1), "F0 F1 B0 F2 B1 W0 F3 B2 W1 F4 B3 W2 B4 W3 W4");
  EXPECT_EQ(order(s, 2), "F0 B0 F1 B1 F2 B2 W0 F3 B3 W1 F4 B4 W2 W3 W4");
}

// ZBV (Qi et al., ZB-V; PyTorch ScheduleZBVZeroBubble), p = 2, m = 4. Stage r holds model chunks r
// (c0) and 2p - 1 - r (c1). Warm-up: 2(p - r) - 1 forwards of c0, r pairs (F c1, F c0), p - r triples
// (F B W of c1); steady: F B W of c0, then of c1; cool-down: r pairs (B c0, B c1), p - r pairs (B c0, W c0),
// then the remaining W of c1 and of c0.
TEST(Schedule, ZeroBubbleV) {
  const Schedule s = make_schedule(PipelineSchedule::zbv, 2, 2, 4);
  EXPECT_EQ(order(s, 0),
            "F0c0 F1c0 F2c0 F0c1 B0c1 W0c1 F1c1 B1c1 W1c1 F3c0 B0c0 W0c0 F2c1 B2c1 W2c1 B1c0 W1c0 F3c1 B3c1 W3c1 "
            "B2c0 W2c0 B3c0 W3c0");
  EXPECT_EQ(order(s, 1),
            "F0c0 F0c1 F1c0 F1c1 B0c1 W0c1 F2c0 B0c0 W0c0 F2c1 B1c1 W1c1 F3c0 B1c0 W1c0 F3c1 B2c1 W2c1 B2c0 B3c1 "
            "B3c0 W2c0 W3c1 W3c0");
  EXPECT_EQ(s.model_chunk(0, 1), 3);  // the V: stage 0 holds the first and the last chunk
  EXPECT_EQ(s.stage_of(2), 1);
  // Fewer than 2p - 1 micro-batches: the order for 3, without micro-batch 2.
  const Schedule few = make_schedule(PipelineSchedule::zbv, 2, 2, 2);
  EXPECT_EQ(order(few, 0), "F0c0 F1c0 F0c1 B0c1 W0c1 F1c1 B1c1 W1c1 B0c0 W0c0 B1c0 W1c0");
}

// Every schedule runs each (chunk, micro-batch) forward and backward exactly once, W too when split.
TEST(Schedule, EveryPassOnce) {
  for (auto kind : {PipelineSchedule::gpipe, PipelineSchedule::one_f_one_b, PipelineSchedule::interleaved,
                    PipelineSchedule::zb_h1, PipelineSchedule::zbv}) {
    const int v = kind == PipelineSchedule::interleaved ? 3 : kind == PipelineSchedule::zbv ? 2 : 1;
    for (int p = 1; p <= 5; ++p)
      for (long long m = p; m <= 3 * p; m += p) {
        const Schedule s = make_schedule(kind, p, v, m);
        for (int st = 0; st < p; ++st) {
          std::vector<int> seen(static_cast<size_t>(3 * v * m), 0);
          for (const ScheduleOp& op : s.stages[static_cast<size_t>(st)])
            ++seen[static_cast<size_t>((static_cast<int>(op.type) * v + op.chunk) * m + op.mb)];
          const int kinds = s.split_backward ? 3 : 2;
          for (size_t i = 0; i < seen.size(); ++i)
            EXPECT_EQ(seen[i], i < static_cast<size_t>(kinds * v * m) ? 1 : 0)
                << to_string(kind) << " p=" << p << " m=" << m << " stage " << st;
        }
      }
  }
}

// A schedule that cannot apply is named, with the rule.
TEST(Schedule, CannotApply) {
  try {
    make_schedule(PipelineSchedule::interleaved, 4, 2, 6);
    FAIL() << "expected a PlanError";
  } catch (const PlanError& e) {
    ASSERT_EQ(e.violations().size(), 1u);
    EXPECT_EQ(e.violations()[0].field, "parallel.pp_schedule");
    EXPECT_EQ(e.violations()[0].value, "interleaved");
    EXPECT_NE(e.violations()[0].rule.find("m (6) must be a multiple of pp (4)"), std::string::npos);
  }
  // Each refusal names the field, the value and the rule (a different exception, or none, fails).
  auto refusal = [](PipelineSchedule k, int p, int v, long long m) -> std::string {
    try {
      make_schedule(k, p, v, m);
    } catch (const PlanError& e) {
      return e.violations().empty() ? "no violation" : e.violations()[0].to_string();
    }
    return "no error";
  };
  EXPECT_EQ(refusal(PipelineSchedule::zbv, 4, 3, 8).rfind("parallel.virtual_stages = 3: zbv cannot apply", 0), 0u)
      << refusal(PipelineSchedule::zbv, 4, 3, 8);
  EXPECT_EQ(refusal(PipelineSchedule::interleaved, 4, 1, 8).rfind("parallel.virtual_stages = 1: the interleaved schedule needs v >= 2", 0), 0u)
      << refusal(PipelineSchedule::interleaved, 4, 1, 8);
  EXPECT_NE(refusal(PipelineSchedule::one_f_one_b, 4, 2, 8).find("parallel.virtual_stages = 2: "), std::string::npos)
      << refusal(PipelineSchedule::one_f_one_b, 4, 2, 8);
  EXPECT_NE(refusal(PipelineSchedule::one_f_one_b, 4, 2, 8).find("has one model chunk per stage (v must be 1)"), std::string::npos);
  EXPECT_EQ(refusal(PipelineSchedule::gpipe, 4, 1, 0).rfind("training.global_batch = 0 micro-batches: must give at least one", 0), 0u)
      << refusal(PipelineSchedule::gpipe, 4, 1, 0);
}
