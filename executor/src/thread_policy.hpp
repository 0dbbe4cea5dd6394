// Where a CPU worker's threads run: its own slice of the machine's cores, and the scheduling policy of
// the threads a library starts behind our back (gloo's TCP event loop).
#pragma once

#include <set>
#include <string>
#include <vector>

namespace paraplan::exec {

// The ids of this process's threads (Linux: /proc/self/task); empty elsewhere.
std::set<int> thread_ids();

// Gives each of `tids` the scheduling `policy` (sched(7); an unprivileged thread may switch to
// SCHED_BATCH or SCHED_IDLE). Returns "" or what failed, to print.
std::string set_thread_policy(const std::set<int>& tids, int policy);

// The policy for gloo's TCP event-loop threads. Woken by its socket, the loop thread could preempt the
// thread that holds a pair's lock, fail to take it and spin until the next scheduler tick (gloo
// tcp/pair.cc Pair::handleEvents, try_to_lock): about half of all small collectives took 3-5 ms.
// SCHED_BATCH keeps its CPU share but never preempts on wake-up. A worker pinned to cores of its own
// (no other worker's compute there: note_own_cores) gets SCHED_IDLE instead: a batch loop thread, rarely
// running and so owed CPU time, still took the core from the worker at a tick while the worker held a
// pair's lock (posting a send then took 2-15 ms); an idle one runs only while the worker waits, which is
// when it is needed. Small dp=2 ZeRO-3: 99 -> 82 ms a step. Where workers share cores, the loop must
// also run while another worker computes: SCHED_BATCH (four workers on two cores, SCHED_IDLE: mid dp=4
// ZeRO-3 416-449 -> 465-469 ms).
int event_loop_policy();
// Records whether this process was pinned to cores no other worker of the machine computes on.
void note_own_cores(bool own);

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
// Pins this CPU worker to its worker_cores (unless pinning_wanted() says no) and notes whether they are
// its own (workers <= cores). local_world 0: the launcher did not say how many workers share the
// machine (no LOCAL_WORLD_SIZE), so none is pinned. Returns the cores, empty when not pinned; `error`
// gets what failed.
std::vector<int> pin_worker(int local_rank, int local_world, int threads, std::string& error);
// False when the environment says PARAPLAN_PIN_CORES=0: the operating system places the workers.
bool pinning_wanted();
// Restricts the calling thread, and the threads it starts from then on, to `cores` (called first thing,
// before any library starts a thread, that is the whole process); "" or what failed, to print.
std::string pin_process(const std::vector<int>& cores);

}  // namespace paraplan::exec
