// The search against a brute-force reference written independently: every combination of degrees,
// ZeRO stage, sequence parallelism, schedule, virtual stages, micro-batch, recompute and offload,
// checked with validate_plan and estimated with the full (per-stage) memory and time functions.
#include <gtest/gtest.h>

#include "paraplan/calibration.hpp"
#include "paraplan/memory.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/presets.hpp"
#include "paraplan/search.hpp"
#include "paraplan/timing.hpp"

using namespace paraplan::planner;

namespace {

struct Best {
  double step = 1e300;
  double min_peak = 1e300;
  int valid = 0, fitting = 0;
};

Best brute_force(const Plan& base, int gpus) {
  Best best;
  const PipelineSchedule schedules[] = {PipelineSchedule::gpipe, PipelineSchedule::one_f_one_b,
                                        PipelineSchedule::interleaved, PipelineSchedule::zb_h1, PipelineSchedule::zbv};
  const int experts = base.model.moe ? base.model.moe->experts : 1;
  for (int tp = 1; tp <= gpus; ++tp)
    for (int cp = 1; cp <= gpus; ++cp)
      for (int pp = 1; pp <= gpus; ++pp) {
        if (gpus % (tp * cp * pp)) continue;
        const int dp = gpus / (tp * cp * pp);
        for (int ep = 1; ep <= experts; ++ep)
          for (int zero = 0; zero <= 3; ++zero)
            for (int sp = 0; sp < 2; ++sp)
              for (PipelineSchedule sched : schedules)
                for (int v = 1; v <= 8; ++v)
                  for (int mb = 1; mb <= base.training.global_batch; ++mb)
                    for (int rc = 0; rc < 3; ++rc)
                      for (int off = 0; off < 3; ++off) {
                        if (pp == 1 && sched != PipelineSchedule::one_f_one_b) continue;  // one schedule without a pipeline
                        Plan p = base;
                        p.cluster.gpus = gpus;
                        p.parallel.dp = dp;
                        p.parallel.tp = tp;
                        p.parallel.cp = cp;
                        p.parallel.pp = pp;
                        p.parallel.ep = ep;
                        p.parallel.zero = zero;
                        p.parallel.sequence_parallel = sp == 1;
                        p.parallel.pp_schedule = sched;
                        p.parallel.virtual_stages = v;
                        p.training.micro_batch = mb;
                        p.training.recompute = static_cast<Recompute>(rc);
                        p.training.offload = static_cast<Offload>(off);
                        Violations errors;
                        validate_plan(p, errors);
                        if (!errors.empty()) continue;
                        ++best.valid;
                        const MemoryBreakdown mem = estimate_memory(p);
                        if (!mem.fits) continue;
                        ++best.fitting;
                        best.step = std::min(best.step, estimate_time(p).step_s);
                        best.min_peak = std::min(best.min_peak, mem.peak_bytes);
                      }
      }
  return best;
}

Plan small_llama() {
  Plan p;
  p.model.name = "small";
  p.model.layers = 4;
  p.model.hidden = 1024;
  p.model.heads = 8;
  p.model.kv_heads = 4;
  p.model.head_dim = 128;
  p.model.ffn_hidden = 2816;
  p.model.vocab = 32000;
  p.training.seq_len = 4096;
  p.training.global_batch = 8;
  p.cluster.gpu = hardware_preset("h100-sxm-80gb");
  p.cluster.gpu.memory_bytes = 3.0 * (1ull << 30);  // tight, so that plenty of plans do not fit
  p.cluster.calibration = builtin_calibration("published");
  return p;
}

void check_results(const SearchResult& r, double brute_step, double brute_min_peak) {
  ASSERT_FALSE(r.top.empty());
  EXPECT_NEAR(r.top.front().step_s, brute_step, 1e-12 * brute_step);
  // Results re-estimated with the full per-stage functions agree exactly, and are valid plans.
  for (const auto* list : {&r.top, &r.pareto})
    for (const Candidate& c : *list) {
      Violations errors;
      validate_plan(c.plan, errors);
      EXPECT_TRUE(errors.empty()) << (errors.empty() ? "" : errors.list()[0].to_string());
      EXPECT_NEAR(estimate_time(c.plan).step_s, c.step_s, 1e-12 * c.step_s);
      EXPECT_NEAR(estimate_memory(c.plan).peak_bytes, c.peak_bytes, 1e-6);
    }
  // The front starts at the lowest peak of any fitting plan and is sorted: memory up, time down.
  EXPECT_NEAR(r.pareto.front().peak_bytes, brute_min_peak, 1e-6);
  for (size_t i = 1; i < r.pareto.size(); ++i) {
    EXPECT_GT(r.pareto[i].peak_bytes, r.pareto[i - 1].peak_bytes);
    EXPECT_LT(r.pareto[i].step_s, r.pareto[i - 1].step_s);
  }
}

}  // namespace

TEST(Search, MatchesBruteForceOnADenseModel) {
  const Plan base = small_llama();
  for (int gpus : {4, 8}) {
    const Best b = brute_force(base, gpus);
    ASSERT_GT(b.fitting, 0);
    ASSERT_LT(b.fitting, b.valid);  // the memory limit bites
    SearchOptions o;
    o.gpus = gpus;
    const SearchResult r = search(base, o);
    EXPECT_EQ(r.fitting, static_cast<uint64_t>(b.fitting)) << gpus << " GPUs";
    check_results(r, b.step, b.min_peak);
  }
}

TEST(Search, MatchesBruteForceOnAMoeModel) {
  Plan base = small_llama();
  base.model.moe = MoeSpec{4, 2, 1408, 0, 1};
  base.cluster.gpu.memory_bytes = 4.0 * (1ull << 30);
  const Best b = brute_force(base, 8);
  ASSERT_GT(b.fitting, 0);
  SearchOptions o;
  o.gpus = 8;
  const SearchResult r = search(base, o);
  EXPECT_EQ(r.fitting, static_cast<uint64_t>(b.fitting));
  check_results(r, b.step, b.min_peak);
}

// Sorting by memory puts the lowest peak first; more threads change nothing.
TEST(Search, SortAndThreads) {
  const Plan base = small_llama();
  SearchOptions o;
  o.gpus = 8;
  o.sort = SearchSort::memory;
  o.threads = 1;
  const SearchResult one = search(base, o);
  o.threads = 3;
  const SearchResult three = search(base, o);
  ASSERT_FALSE(one.top.empty());
  EXPECT_DOUBLE_EQ(one.top.front().peak_bytes, one.pareto.front().peak_bytes);
  EXPECT_EQ(one.evaluated, three.evaluated);
  EXPECT_EQ(one.fitting, three.fitting);
  EXPECT_DOUBLE_EQ(one.top.front().peak_bytes, three.top.front().peak_bytes);
  for (size_t i = 1; i < one.top.size(); ++i) EXPECT_LE(one.top[i - 1].peak_bytes, one.top[i].peak_bytes);
}

// With dp x cp = 1 ZeRO has no group to shard over: under Megatron's layout (one main-grad buffer, no
// offload) every stage keeps all of the optimizer states, gradients and weights (memory.cpp: divided by a
// shard of 1) and adds no collective (a group of one), so ZeRO-1/2/3 are the ZeRO-0 plan again. The search
// lists such a plan once, at ZeRO-0, and counts the others as equivalent; every fitting plan is either
// listed (top_k large enough to hold them all) or equivalent to a listed one.
TEST(Search, ZeroStagesWithNothingToShardAreListedOnce) {
  const Plan base = small_llama();
  SearchOptions o;
  o.gpus = 4;
  o.top_k = 1000000;
  const SearchResult r = search(base, o);
  ASSERT_GT(r.equivalent, 0u);
  EXPECT_EQ(r.top.size() + r.equivalent, r.fitting);
  int unsharded = 0;
  for (const Candidate& c : r.top) {
    const ParallelPlan& p = c.plan.parallel;
    if (p.dp * p.cp != 1 || c.plan.training.offload != Offload::none) continue;
    ++unsharded;
    EXPECT_EQ(p.zero, 0) << "tp " << p.tp << " pp " << p.pp << " mb " << c.plan.training.micro_batch;
  }
  EXPECT_GT(unsharded, 0);
}
