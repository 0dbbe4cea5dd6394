// The scheduling policy the gloo communicator gives the threads gloo starts (executor/src/thread_policy):
// a thread started between two snapshots is found, made SCHED_BATCH, and the others keep theirs.
#include <gtest/gtest.h>

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "../../executor/src/thread_policy.hpp"

using namespace paraplan::exec;

TEST(ThreadPolicy, AThreadStartedBetweenSnapshotsBecomesBatchAndNoOtherDoes) {
  const int self = static_cast<int>(syscall(SYS_gettid));
  const std::set<int> before = thread_ids();
  ASSERT_TRUE(before.count(self)) << "this thread is one of the process's";
  std::mutex m;
  std::condition_variable cv;
  bool stop = false;
  std::thread t([&] {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return stop; });
  });
  std::set<int> started;
  for (int tid : thread_ids())
    if (!before.count(tid)) started.insert(tid);
  EXPECT_EQ(started.size(), 1u);
  EXPECT_EQ(make_batch_threads(started), "");
  for (int tid : started) EXPECT_EQ(thread_policy(tid), SCHED_BATCH);
  EXPECT_EQ(thread_policy(self), SCHED_OTHER);
  {
    std::lock_guard<std::mutex> lock(m);
    stop = true;
  }
  cv.notify_all();
  t.join();
  // A thread that has ended is no error (gloo may have stopped one between the snapshot and the call).
  EXPECT_EQ(make_batch_threads(started), "");
}
