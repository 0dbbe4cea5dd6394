// The memory tour (teach/tour.hpp) for LLaMA-3-8B: the formula each step prints agrees with the
// planner's numbers, and both with values derived by hand here.
#include <gtest/gtest.h>

#include "paraplan/teach/tour.hpp"

using namespace paraplan::teach;

namespace {

// LLaMA-3-8B: 8,030,261,248 parameters (meta-llama/Meta-Llama-3-8B; peft's print_trainable_parameters
// prints "all params: 8,033,669,120" with the recipe's 3,407,872 adapter parameters added).
constexpr double kN = 8030261248.0;

double states(const TourResult& r) {
  double s = 0;
  for (const TourRow& row : r.rows)
    if (row.what == "weights" || row.what == "gradients" || row.what == "master weights" || row.what == "optimizer states")
      s += row.now;
  return s;
}

}  // namespace

TEST(Tour, TenStepsEachTurningOneKnobOfAnEarlierStep) {
  const auto steps = tour_steps();
  ASSERT_EQ(steps.size(), 10u);
  for (size_t i = 0; i < steps.size(); ++i) {
    EXPECT_LT(steps[i].compare_with, static_cast<int>(i));
    const TourResult r = evaluate_tour_step(steps, static_cast<int>(i));
    EXPECT_TRUE(r.valid) << steps[i].title << ": " << r.error;
    EXPECT_EQ(r.rows.size(), 8u);
    EXPECT_FALSE(r.formula.empty()) << steps[i].title;
    EXPECT_FALSE(r.worked.empty()) << steps[i].title;
  }
}

TEST(Tour, ModelStatesFollowTheZeroFormulas) {
  const auto steps = tour_steps();
  // Step 1: 18 B per parameter (bf16 weights 2, fp32 gradients 4, master 4, Adam 8).
  const TourResult full = evaluate_tour_step(steps, 0);
  EXPECT_NEAR(states(full), 18 * kN, 1.0);
  EXPECT_NE(full.worked.find("144.5 GB"), std::string::npos) << full.worked;  // 18 x 8.03e9 = 144.54e9 B
  EXPECT_FALSE(full.memory.fits);
  // dp = 8 (Rajbhandari et al. 2020, Figure 1, with 4-byte gradients): ZeRO-1 2 + 4 + 12/8 = 7.5 B,
  // ZeRO-2 2 + 16/8 = 4 B, ZeRO-3 18/8 = 2.25 B per parameter.
  EXPECT_NEAR(states(evaluate_tour_step(steps, 3)), 18 * kN, 1.0);  // DDP: unchanged per GPU
  EXPECT_NEAR(states(evaluate_tour_step(steps, 4)), 7.5 * kN, 1.0);
  EXPECT_NEAR(states(evaluate_tour_step(steps, 5)), 4.0 * kN, 1.0);
  EXPECT_NEAR(states(evaluate_tour_step(steps, 6)), 2.25 * kN, 1.0);
  EXPECT_NE(evaluate_tour_step(steps, 4).worked.find("7.500 B x 8,030,261,248"), std::string::npos);
}

TEST(Tour, LoraStepCountsTheRecipesAdapters) {
  const auto steps = tour_steps();
  const TourResult r = evaluate_tour_step(steps, 1);
  // 32 layers x (q_proj 8(4096 + 4096) + v_proj 8(4096 + 1024)) = 32 x 106,496 = 3,407,872 (peft prints
  // "trainable params: 3,407,872 || all params: 8,033,669,120 || trainable%: 0.0424").
  EXPECT_NE(r.worked.find("= 3,407,872 trainable parameters, 0.0424% of 8,033,669,120"), std::string::npos) << r.worked;
  EXPECT_NE(r.formula.find("0.39%"), std::string::npos);  // the chapter's 0.76%, corrected
  EXPECT_TRUE(r.memory.fits);
  EXPECT_EQ(r.rows[1].what, "gradients");
  EXPECT_LT(r.rows[1].now, r.rows[1].before);
}

TEST(Tour, AStepAModelCannotTakeSaysWhy) {
  // tiny-llama has 4 heads: tp = 8 does not divide them.
  const auto steps = tour_steps("tiny-llama");
  const TourResult r = evaluate_tour_step(steps, 7);
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.error.find("parallel.tp = 8"), std::string::npos) << r.error;
}
