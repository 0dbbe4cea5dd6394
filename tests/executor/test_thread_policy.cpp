// The scheduling policy the gloo communicator gives the threads gloo starts, and where CPU workers keep
// (executor/src/thread_policy):
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
  EXPECT_EQ(set_thread_policy(started, SCHED_BATCH), "");
  for (int tid : started) EXPECT_EQ(thread_policy(tid), SCHED_BATCH);
  EXPECT_EQ(thread_policy(self), SCHED_OTHER);
  {
    std::lock_guard<std::mutex> lock(m);
    stop = true;
  }
  cv.notify_all();
  t.join();
  // A thread that has ended is no error (gloo may have stopped one between the snapshot and the call).
  EXPECT_EQ(set_thread_policy(started, SCHED_BATCH), "");
}

// Each CPU worker's slice of the allowed cores: k = max(1, cores / workers) of them, from r k on,
// wrapping; none when the worker wants more threads than its slice holds (worked by hand).
TEST(ThreadPolicy, EachWorkerGetsItsOwnSliceOfTheAllowedCores) {
  const std::vector<int> two{0, 1};
  EXPECT_EQ(worker_cores(0, 2, 1, two), (std::vector<int>{0}));
  EXPECT_EQ(worker_cores(1, 2, 1, two), (std::vector<int>{1}));
  // Four workers on two cores: two to a core, ranks 2 and 3 where 0 and 1 are.
  EXPECT_EQ(worker_cores(2, 4, 1, two), (std::vector<int>{0}));
  EXPECT_EQ(worker_cores(3, 4, 1, two), (std::vector<int>{1}));
  // Eight cores, two workers of four threads each: the upper half for rank 1.
  const std::vector<int> eight{0, 1, 2, 3, 4, 5, 6, 7};
  EXPECT_EQ(worker_cores(1, 2, 4, eight), (std::vector<int>{4, 5, 6, 7}));
  EXPECT_TRUE(worker_cores(1, 2, 5, eight).empty()) << "five threads on a slice of four: left unpinned";
  // The allowed set need not be contiguous (a container's cpuset): its own numbers are used.
  EXPECT_EQ(worker_cores(2, 3, 1, std::vector<int>{2, 3, 5}), (std::vector<int>{5}));
  EXPECT_TRUE(worker_cores(0, 1, 1, {}).empty()) << "no allowed set read: unpinned";
}

// Pinning the calling thread to one allowed core holds: the affinity read back is that core; the
// whole allowed set is restored after.
TEST(ThreadPolicy, PinningRestrictsTheProcessToItsCores) {
  const std::vector<int> allowed = allowed_cores();
  ASSERT_FALSE(allowed.empty());
  EXPECT_EQ(pin_process({allowed.back()}), "");
  EXPECT_EQ(allowed_cores(), (std::vector<int>{allowed.back()}));
  EXPECT_EQ(pin_process(allowed), "");
  EXPECT_EQ(allowed_cores(), allowed);
}

// gloo's event loop idles (SCHED_IDLE) only where the worker has its cores to itself; where workers
// outnumber the cores it must run beside another worker's compute (SCHED_BATCH).
TEST(ThreadPolicy, TheEventLoopIdlesOnlyOnCoresOfItsOwn) {
  const std::vector<int> allowed = allowed_cores();
  ASSERT_FALSE(allowed.empty());
  const int n = static_cast<int>(allowed.size());
  std::string err;
  EXPECT_EQ(pin_worker(0, 1, 1, err), allowed) << "one worker: all the cores, its own";
  EXPECT_EQ(err, "");
  EXPECT_EQ(event_loop_policy(), SCHED_IDLE);
  EXPECT_EQ(pin_worker(n, n + 1, 1, err), (std::vector<int>{allowed.front()})) << "worker n of n + 1 wraps to the first core";
  EXPECT_EQ(event_loop_policy(), SCHED_BATCH) << "it shares that core with worker 0";
  EXPECT_EQ(pin_process(allowed), "");
  note_own_cores(false);
}

// A launcher that does not say how many workers share the machine (local_world 0): none is pinned,
// and the event loop keeps to SCHED_BATCH.
TEST(ThreadPolicy, UnknownNeighboursLeaveTheWorkerUnpinned) {
  const std::vector<int> allowed = allowed_cores();
  std::string err;
  EXPECT_TRUE(pin_worker(0, 0, 1, err).empty());
  EXPECT_EQ(err, "");
  EXPECT_EQ(allowed_cores(), allowed);
  EXPECT_EQ(event_loop_policy(), SCHED_BATCH);
}
