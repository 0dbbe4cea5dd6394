// The event engine on graphs small enough to time by hand.
#include <gtest/gtest.h>

#include "paraplan/sim/engine.hpp"

using namespace paraplan::sim;

namespace {
Task task(int rank, Stream s, double d, double alloc = 0, double release = 0) {
  Task t;
  t.rank = rank;
  t.stream = s;
  t.duration_s = d;
  t.mem_start_bytes = alloc;
  t.mem_end_bytes = -release;
  return t;
}
}  // namespace

// A (2 s) then B (1 s) on rank 0's compute stream; C (3 s) on its TP stream after A; D (1 s) on rank 1
// after C. By hand: A [0, 2], B [2, 3], C [2, 5], D [5, 6].
TEST(Engine, StreamsRunInOrderAndWaitForDependencies) {
  Graph g(2);
  const TaskId a = g.add(task(0, Stream::compute, 2, 10));
  const TaskId b = g.add(task(0, Stream::compute, 1, 0, 10));
  const TaskId c = g.add(task(0, Stream::tp, 3));
  const TaskId d = g.add(task(1, Stream::compute, 1));
  g.depend(a, c);
  g.depend(c, d);
  const Timeline tl = run(g, true);
  EXPECT_DOUBLE_EQ(tl.start_s[static_cast<size_t>(b)], 2);
  EXPECT_DOUBLE_EQ(tl.end_s[static_cast<size_t>(b)], 3);
  EXPECT_DOUBLE_EQ(tl.start_s[static_cast<size_t>(c)], 2);
  EXPECT_DOUBLE_EQ(tl.start_s[static_cast<size_t>(d)], 5);
  EXPECT_DOUBLE_EQ(tl.makespan_s, 6);
  EXPECT_EQ(tl.trigger[static_cast<size_t>(d)], c);
  EXPECT_EQ(tl.trigger[static_cast<size_t>(b)], a);  // the stream's previous task
  EXPECT_EQ(tl.events, 4u);
  EXPECT_DOUBLE_EQ(tl.peak_bytes[0], 10);  // A's 10 bytes from 0 until B ends at 3
  EXPECT_DOUBLE_EQ(tl.peak_bytes[1], 0);
  ASSERT_GE(tl.memory.size(), 2u);
  EXPECT_DOUBLE_EQ(tl.memory.back().time_s, 3);
  EXPECT_DOUBLE_EQ(tl.memory.back().bytes, 0);
}

// Frees at a time come before allocations at the same time: X (5 bytes, ends at 1) and Y (5 bytes,
// starts at 1 after Z) never coexist, even though Z ends first in id order.
TEST(Engine, FreesBeforeAllocationsAtTheSameTime) {
  Graph g(1);
  const TaskId z = g.add(task(0, Stream::tp, 1));
  g.add(task(0, Stream::compute, 1, 5, 5));            // X
  const TaskId y = g.add(task(0, Stream::dp, 1, 5, 5));  // Y
  g.depend(z, y);
  const Timeline tl = run(g);
  EXPECT_DOUBLE_EQ(tl.peak_bytes[0], 5);
  EXPECT_DOUBLE_EQ(tl.makespan_s, 2);
}

// Dependencies that form a cycle cannot run; the error names a stuck task.
TEST(Engine, DeadlockIsReported) {
  Graph g(1);
  const TaskId a = g.add(task(0, Stream::compute, 1));
  const TaskId b = g.add(task(0, Stream::tp, 1));
  g.depend(b, a);
  g.depend(a, b);
  EXPECT_THROW(run(g), DeadlockError);
  try {
    run(g);
  } catch (const DeadlockError& e) {
    EXPECT_NE(std::string(e.what()).find("waits forever"), std::string::npos);
  }
}

// Zero-duration tasks complete at their start time and release their successors at once.
TEST(Engine, ZeroDurationTasks) {
  Graph g(1);
  const TaskId a = g.add(task(0, Stream::compute, 0));
  const TaskId b = g.add(task(0, Stream::tp, 0));
  const TaskId c = g.add(task(0, Stream::compute, 2));
  g.depend(a, b);
  g.depend(b, c);
  const Timeline tl = run(g);
  EXPECT_DOUBLE_EQ(tl.start_s[static_cast<size_t>(c)], 0);
  EXPECT_DOUBLE_EQ(tl.makespan_s, 2);
}
