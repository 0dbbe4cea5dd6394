// When a pipeline stage may drop a tensor it sent (pipeline_schedule.hpp send_release): at the first op
// of its own that happens after the receiver began the op that takes it, by program order and the
// schedule's messages. Derived by hand from the generators' lists.
#include <gtest/gtest.h>

#include "paraplan/pipeline_schedule.hpp"

using namespace paraplan::planner;

TEST(SendRelease, OneFOneBOnTwoStages) {
  // p = 2, m = 4. Stage 0: F0 F1 B0 F2 B1 F3 B2 B3; stage 1: F0 B0 F1 B1 F2 B2 F3 B3.
  const Schedule s = make_schedule(PipelineSchedule::one_f_one_b, 2, 1, 4);
  ASSERT_EQ(to_string(s.stages[0], 1), "F0 F1 B0 F2 B1 F3 B2 B3");
  ASSERT_EQ(to_string(s.stages[1], 1), "F0 B0 F1 B1 F2 B2 F3 B3");
  const auto r = send_release(s);
  // Stage 0's F0 (op 0) goes to stage 1's F0 (op 0); stage 0 next hears from stage 1 at B0 (op 2), whose
  // gradient stage 1 sent after its F0: drop it there. F1 (op 1) is taken by stage 1's F1 (op 2), after
  // which stage 1 sends B1's gradient, received at stage 0's B1 (op 4). Backwards send nothing on stage 0.
  EXPECT_EQ(r[0], (std::vector<int>{2, 4, -1, 6, -1, 7, -1, -1}));
  // Stage 1's B0 (op 1) goes to stage 0's B0 (op 2); stage 1 next hears from stage 0 at F2 (op 4), sent
  // after stage 0's op 2. B1 (op 3) -> stage 0's op 4 -> heard at F3 (op 6). B2 and B3 are taken after
  // stage 0's last forward: nothing of stage 0 reaches stage 1 after them, so the end of the step (8).
  EXPECT_EQ(r[1], (std::vector<int>{-1, 4, -1, 6, -1, 8, -1, 8}));
}

TEST(SendRelease, GpipeHoldsEveryForwardOutputUntilTheBackwards) {
  // GPipe p = 2, m = 2: stage 0 F0 F1 B1 B0; stage 1 F0 F1 B1 B0. Stage 0's forwards are taken by stage
  // 1's forwards; stage 0 next hears from stage 1 at B1 (op 2).
  const Schedule s = make_schedule(PipelineSchedule::gpipe, 2, 1, 2);
  const auto r = send_release(s);
  EXPECT_EQ(r[0], (std::vector<int>{2, 2, -1, -1}));
  EXPECT_EQ(r[1], (std::vector<int>{-1, -1, 4, 4}));
}

TEST(SendRelease, ZbvHandsTheTurnOfTheVOverOnTheSameStage) {
  // ZBV p = 2: stage 1 holds chunks 1 and 2; chunk 1's output goes to chunk 2 on the same stage, where
  // it is dropped at the op that takes it (its index on that stage).
  const Schedule s = make_schedule(PipelineSchedule::zbv, 2, 2, 4);
  const auto r = send_release(s);
  const auto& ops = s.stages[1];
  for (size_t k = 0; k < ops.size(); ++k) {
    if (ops[k].type != OpType::F || s.model_chunk(1, ops[k].chunk) != 1) continue;
    int taker = -1;
    for (size_t j = 0; j < ops.size(); ++j)
      if (ops[j].type == OpType::F && s.model_chunk(1, ops[j].chunk) == 2 && ops[j].mb == ops[k].mb) taker = static_cast<int>(j);
    EXPECT_EQ(r[1][k], taker) << "F" << ops[k].mb << " of chunk 1";
  }
}
