// Bubbles and in-flight micro-batches on uniform stages (every chunk costs the same, no communication):
// the simulated step against the published closed forms, and the planner's closed forms
// (pipeline_time, inflight_microbatches) against the simulation over a grid of F, B, W, p and m.
#include <gtest/gtest.h>

#include <algorithm>

#include "helpers.hpp"
#include "paraplan/pipeline.hpp"
#include "paraplan/sim/simulate.hpp"
#include "paraplan/timing.hpp"

using namespace paraplan::sim;
using paraplan::planner::PipelineSchedule;
using paraplan::sim::testing::uniform_costs;

namespace {

// Per-stage F, B (activation gradient) and W for one micro-batch; each of the v chunks costs 1/v of it.
SimResult run_uniform(PipelineSchedule kind, int p, int v, long long m, double f, double b, double w) {
  const Schedule s = make_schedule(kind, p, v, m);
  return simulate(s, uniform_costs(p * v, f / v, b / v, w / v), GraphOptions{}, {});
}
double bubble(PipelineSchedule kind, int p, int v, long long m, double f, double b, double w) {
  return run_uniform(kind, p, v, m, f, b, w).step_s - static_cast<double>(m) * (f + b + w);
}

}  // namespace

// GPipe and 1F1B: (p - 1)(F + B) with B the whole backward, i.e. (p - 1)/m of the ideal m(F + B)
// (Narayanan et al. 2021 §2.2; GPipe §2.3). F = 1, B = 1.5 + W 0.5.
TEST(Bubble, GPipeAndOneFOneB) {
  for (auto kind : {PipelineSchedule::gpipe, PipelineSchedule::one_f_one_b})
    for (int p : {2, 3, 4, 8})
      for (long long m : {1LL * p, 2LL * p, 4LL * p, 3LL}) {
        const SimResult r = run_uniform(kind, p, 1, m, 1, 1.5, 0.5);
        const double ideal = static_cast<double>(m) * 3;
        EXPECT_DOUBLE_EQ(r.step_s - ideal, (p - 1) * 3.0) << to_string(kind) << " p=" << p << " m=" << m;
        EXPECT_DOUBLE_EQ(r.bubble_s / ideal, (p - 1.0) / static_cast<double>(m));
        EXPECT_DOUBLE_EQ(r.compute_s, ideal);  // the stage that ends last (stage 0) computes throughout
        EXPECT_EQ(r.critical_stage, 0);
      }
}

// Interleaved with v chunks per stage: (p - 1)(F + B)/v, a fraction (p - 1)/(v m) of the ideal
// (Narayanan et al. 2021 §2.2).
TEST(Bubble, Interleaved) {
  for (int v : {2, 3, 4})
    for (int p : {2, 4, 8})
      for (long long m : {1LL * p, 2LL * p, 4LL * p}) {
        const SimResult r = run_uniform(PipelineSchedule::interleaved, p, v, m, 1, 1.5, 0.5);
        const double ideal = static_cast<double>(m) * 3;
        EXPECT_NEAR(r.bubble_s / ideal, (p - 1.0) / (v * static_cast<double>(m)), 1e-12) << "p=" << p << " v=" << v;
      }
}

// ZB-H1: (p - 1)(F + B - W); with F = B = W a third of 1F1B's (zero-bubble README: (p - 1)/3m against
// (p - 1)/m). Hand check, p = 2, m = 2, F = B = W = 1: stage 1 runs F0 [1,2] B0 [2,3] F1 [3,4] B1 [4,5]
// W0 [5,6] W1 [6,7]; stage 0 B0 [3,4] W0 [4,5] B1 [5,6] W1 [6,7]: 7 = 6 + 1.
TEST(Bubble, ZeroBubbleH1) {
  EXPECT_DOUBLE_EQ(bubble(PipelineSchedule::zb_h1, 2, 1, 2, 1, 1, 1), 1);
  for (int p : {2, 3, 4, 8})
    for (long long m : {1LL * p, 2LL * p, 4LL * p}) {
      EXPECT_DOUBLE_EQ(bubble(PipelineSchedule::zb_h1, p, 1, m, 1, 1, 1), (p - 1) * 1.0);
      EXPECT_DOUBLE_EQ(bubble(PipelineSchedule::zb_h1, p, 1, m, 1, 1, 1) * 3,
                       bubble(PipelineSchedule::one_f_one_b, p, 1, m, 1, 1, 1));
      EXPECT_DOUBLE_EQ(bubble(PipelineSchedule::zb_h1, p, 1, m, 1, 1.5, 0.5), (p - 1) * (1 + 1.5 - 0.5));
    }
}

// ZBV with F = B = W: what remains is the V's fill. Stage p - 1 receives its first input after p - 1
// chunk forwards (F/2 each) and then has m(F + B + W) of work, so no order does better than
// m(F + B + W) + (p - 1)F/2; ZB-V reaches it once m >= 2p - 1 (the paper calls this zero bubble).
TEST(Bubble, ZeroBubbleV) {
  for (int p : {2, 3, 4, 8})
    for (long long m : {2LL * p - 1, 2LL * p, 4LL * p})
      EXPECT_DOUBLE_EQ(bubble(PipelineSchedule::zbv, p, 2, m, 1, 1, 1), (p - 1) * 0.5) << "p=" << p << " m=" << m;
}

// The planner's pipeline_time on uniform stages equals the simulation: GPipe, 1F1B and interleaved
// everywhere; ZB-H1 for m >= p (and m < p when W <= min(F, B)); ZBV for m >= 2p - 1 (and below when
// F = B = W). This is the test behind the ZB-H1 and ZBV forms in planner/costs/src/timing.cpp.
TEST(Bubble, PlannerClosedFormsMatchTheSimulation) {
  const double vals[] = {0.5, 1, 1.5, 2.5};
  int checked = 0;
  for (auto kind : {PipelineSchedule::gpipe, PipelineSchedule::one_f_one_b, PipelineSchedule::interleaved,
                    PipelineSchedule::zb_h1, PipelineSchedule::zbv})
    for (int p = 2; p <= 6; ++p)
      for (long long m : {1LL, 1LL * p - 1, 1LL * p, 1LL * p + 1, 2LL * p - 1, 2LL * p, 3LL * p}) {
        const int v = kind == PipelineSchedule::interleaved ? 2 : kind == PipelineSchedule::zbv ? 2 : 1;
        if (m < 1 || (kind == PipelineSchedule::interleaved && m % p != 0)) continue;
        for (double f : vals)
          for (double b : vals)
            for (double w : vals) {
              const bool exact = kind == PipelineSchedule::zb_h1   ? m >= p || w <= std::min(f, b)
                                 : kind == PipelineSchedule::zbv ? m >= 2 * p - 1 || (f == b && b == w)
                                                                 : true;
              if (!exact) continue;
              std::vector<paraplan::planner::StageTime> stages(static_cast<size_t>(p));
              for (auto& st : stages) {
                st.fwd = f;
                st.bwd = b + w;
                st.bwd_weight = w;
              }
              const double planner = paraplan::planner::pipeline_time(kind, v, m, stages).bubble;
              EXPECT_NEAR(bubble(kind, p, v, m, f, b, w), planner, 1e-9)
                  << to_string(kind) << " p=" << p << " m=" << m << " F=" << f << " B=" << b << " W=" << w;
              ++checked;
            }
      }
  EXPECT_GT(checked, 5000);
}

// In-flight micro-batches: the simulated activation peak (one byte per chunk and micro-batch, v chunks
// per stage) against the planner's inflight_microbatches, on every stage. ZBV below 2p - 1 micro-batches:
// stage s holds (min(m, 2p - s - 1) + min(m, s + 1))/2, which the planner's min(m, p) bounds (exact on the
// last stage).
TEST(Bubble, InflightMicrobatchesMatchThePlanner) {
  for (auto kind : {PipelineSchedule::gpipe, PipelineSchedule::one_f_one_b, PipelineSchedule::interleaved,
                    PipelineSchedule::zb_h1, PipelineSchedule::zbv})
    for (int p = 2; p <= 8; ++p)
      for (long long m = 1; m <= 3 * p; ++m) {
        const int v = kind == PipelineSchedule::interleaved ? 3 : kind == PipelineSchedule::zbv ? 2 : 1;
        if (kind == PipelineSchedule::interleaved && m % p != 0) continue;
        const SimResult r = run_uniform(kind, p, v, m, 1, 1, 1);
        for (int s = 0; s < p; ++s) {
          const double sim = r.stages[static_cast<size_t>(s)].peak_dynamic_bytes * 1.0 / v;
          const double planner = paraplan::planner::inflight_microbatches(kind, p, v, m, s);
          if (kind == PipelineSchedule::zbv && m < 2 * p - 1) {
            const double md = static_cast<double>(m);
            EXPECT_DOUBLE_EQ(sim, (std::min(md, 2.0 * p - s - 1) + std::min(md, s + 1.0)) / 2) << "p=" << p << " m=" << m;
            EXPECT_LE(sim, planner);
            if (s == p - 1) {
              EXPECT_DOUBLE_EQ(sim, planner);
            }
          } else {
            EXPECT_DOUBLE_EQ(sim, planner) << to_string(kind) << " p=" << p << " m=" << m << " stage " << s;
          }
        }
      }
}
