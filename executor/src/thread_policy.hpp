// Scheduling policy of the threads a library starts behind our back (gloo's TCP event loop).
#pragma once

#include <set>
#include <string>
#include <vector>

namespace paraplan::exec {

// The ids of this process's threads (Linux: /proc/self/task); empty elsewhere.
std::set<int> thread_ids();

// Gives each of `tids` the SCHED_BATCH policy (sched(7): an unprivileged thread may switch to it; nice
// and so its share of the CPU are kept, but a batch thread that wakes never preempts the running one).
// Returns "" or what failed, to print.
std::string make_batch_threads(const std::set<int>& tids);

// The policy of thread `tid` (SCHED_OTHER, SCHED_BATCH, ...), -1 when it cannot be read.
int thread_policy(int tid);

// The cores a CPU worker keeps to: local rank r of w workers on one machine, each wanting `threads`
// compute threads, gets its own slice of the cores this process may use (sched_getaffinity), k =
// max(1, cores / w) of them: cores[(r k + i) mod n], i < k. Why: Linux's wake-affine placement pulls a
// woken thread to its waker's core, so two workers that wake each other at every collective come to
// share one core while the other idles; pinned, small tp=2 took 40 ms a step instead of 55, its
// all-reduces 9.6 ms instead of 24 (docs/executor.md). Empty when a slice would hold fewer cores than
// `threads` (pinning would squeeze them), or when the allowed set cannot be read.
std::vector<int> worker_cores(int local_rank, int local_world, int threads, const std::vector<int>& allowed);
std::vector<int> allowed_cores();  // this process's CPU affinity, ascending; empty where unknown
// False when the environment says PARAPLAN_PIN_CORES=0: the operating system places the workers.
bool pinning_wanted();
// Restricts the calling thread, and the threads it starts from then on, to `cores` (called first thing,
// before any library starts a thread, that is the whole process); "" or what failed, to print.
std::string pin_process(const std::vector<int>& cores);

}  // namespace paraplan::exec
