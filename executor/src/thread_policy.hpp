// Scheduling policy of the threads a library starts behind our back (gloo's TCP event loop).
#pragma once

#include <set>
#include <string>

namespace paraplan::exec {

// The ids of this process's threads (Linux: /proc/self/task); empty elsewhere.
std::set<int> thread_ids();

// Gives each of `tids` the SCHED_BATCH policy (sched(7): an unprivileged thread may switch to it; nice
// and so its share of the CPU are kept, but a batch thread that wakes never preempts the running one).
// Returns "" or what failed, to print.
std::string make_batch_threads(const std::set<int>& tids);

// The policy of thread `tid` (SCHED_OTHER, SCHED_BATCH, ...), -1 when it cannot be read.
int thread_policy(int tid);

}  // namespace paraplan::exec
