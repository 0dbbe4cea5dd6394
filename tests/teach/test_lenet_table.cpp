// The ddp-lenet table from worker events (teach/lenet_demo.hpp), with the expected cells worked out
// by hand.
#include <gtest/gtest.h>

#include "paraplan/teach/lenet_demo.hpp"

using namespace paraplan::teach;
using nlohmann::json;

TEST(LenetTable, RowsFromEvents) {
  LenetRun one, two;
  apply_lenet_event(one, {{"event", "start"}, {"workers", 1}, {"global_batch", 64}, {"steps_per_epoch", 937}});
  apply_lenet_event(one, {{"event", "step"}, {"step", 10}, {"epoch", 1}, {"loss", 1.5}});
  apply_lenet_event(one, {{"event", "epoch"}, {"epoch", 1}, {"epoch_s", {10.0}}, {"comm_s", {0.0}},
                          {"samples", 60000}, {"test_accuracy", 0.885}});
  apply_lenet_event(two, {{"event", "start"}, {"workers", 2}});
  // Two epochs: slowest worker 6 s and 4 s; communication means (1 + 2)/2 = 1.5 and (0.5 + 0.5)/2 = 0.5.
  apply_lenet_event(two, {{"event", "epoch"}, {"epoch", 1}, {"epoch_s", {6.0, 5.5}}, {"comm_s", {1.0, 2.0}},
                          {"samples", 60000}, {"test_accuracy", 0.80}});
  apply_lenet_event(two, {{"event", "epoch"}, {"epoch", 2}, {"epoch_s", {3.5, 4.0}}, {"comm_s", {0.5, 0.5}},
                          {"samples", 60000}, {"test_accuracy", 0.88}});
  apply_lenet_event(two, {{"event", "done"}});
  EXPECT_TRUE(two.done);
  ASSERT_EQ(one.steps.size(), 1u);
  const auto rows = lenet_rows({one, two});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_DOUBLE_EQ(rows[0].samples_per_s, 6000);      // 60,000 / 10 s
  EXPECT_DOUBLE_EQ(rows[1].epoch_s, 5.0);             // (6 + 4) / 2
  EXPECT_DOUBLE_EQ(rows[1].samples_per_s, 12000);     // 120,000 / 10 s
  EXPECT_DOUBLE_EQ(rows[1].speedup, 2.0);             // 10 / 5
  EXPECT_DOUBLE_EQ(rows[1].comm_share, 0.2);          // (1.5 + 0.5) / 10
  EXPECT_DOUBLE_EQ(rows[1].test_accuracy, 0.88);      // after the last epoch
  const TextTable t = lenet_table({one, two});
  EXPECT_EQ(t.rows[1], (std::vector<std::string>{"2", "5.00", "12000", "2.00", "20.0", "88.00"}));
  EXPECT_EQ(t.notes[0], "test accuracy spread over worker counts: 0.50 percentage points (88.00% to 88.50%)");
  const auto charts = lenet_charts({one, two});
  ASSERT_EQ(charts.size(), 3u);
  EXPECT_EQ(charts[1].series[1].y, (std::vector<double>{80.0, 88.0}));
}

TEST(LenetTable, RenderPadsByCodePoints) {
  TextTable t{{"a", "speed-up (×)"}, {{"1", "2.00"}}, {"note"}};
  EXPECT_EQ(render(t), "a  speed-up (×)\n1          2.00\nnote\n");
}
