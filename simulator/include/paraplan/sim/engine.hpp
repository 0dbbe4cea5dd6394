#pragma once
// The discrete-event engine: tasks on per-rank streams with dependencies and fixed durations.
//
// A task starts when every task it depends on has finished; tasks on one stream of one rank run one
// at a time in the order they were added (a CUDA stream, a NCCL communicator's queue). The engine
// pops task completions from a binary heap keyed by (time, task id), applies each task's memory
// changes, and starts what became ready. Flat arrays, integer ids, successors in CSR form; a run
// allocates nothing per event.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace paraplan::sim {

// Streams of one rank. A pipeline transfer occupies the sender's outgoing stream of its direction:
// in a pipeline each directed link has one sender, so that stream is also the receiver's incoming link.
enum class Stream : uint8_t { compute, tp, dp, dp_gather, pp_next, pp_prev };
inline constexpr int kStreams = 6;
const char* to_string(Stream s);

enum class TaskKind : uint8_t {
  forward,        // F: forward of one model chunk (or of one unit of it) for one micro-batch
  backward,       // B: activation gradients (and, when the schedule does not split the backward, weight gradients)
  weight,         // W: weight gradients (zero-bubble schedules)
  tp_hidden,      // TP/CP/EP collectives that run under the GEMMs (tp_comm_overlap, CP ring)
  tp_exposed,     // TP/CP/EP collectives the compute waits for
  p2p,            // pipeline send/recv of a boundary activation or its gradient
  grad_reduce,    // DP gradient all-reduce / reduce-scatter of one bucket (ZeRO <= 2), once per step
  param_gather,   // ZeRO-3 all-gather of one unit's parameters before its forward or backward
  grad_scatter,   // ZeRO-3 reduce-scatter of one unit's gradients after its backward
  optimizer,      // the optimizer step
  param_allgather // ZeRO-1/2: all-gather of the updated parameter shards after the step
};
const char* to_string(TaskKind k);
bool is_compute(TaskKind k);

using TaskId = int32_t;

struct Task {
  double duration_s = 0;
  double mem_start_bytes = 0;  // allocated on the task's rank when it starts (>= 0)
  double mem_end_bytes = 0;    // released when it ends (<= 0)
  int32_t rank = 0;
  int32_t microbatch = -1;
  int16_t chunk = -1;          // global model chunk (-1: none)
  Stream stream = Stream::compute;
  TaskKind kind = TaskKind::forward;
};

// The task graph of one step. Tasks on the same (rank, stream) are chained in insertion order.
class Graph {
 public:
  explicit Graph(int ranks = 0) { reset(ranks); }
  void reset(int ranks);
  void reserve(size_t tasks, size_t edges);
  TaskId add(const Task& t);          // appends, chained after the previous task of its stream
  void depend(TaskId before, TaskId after);  // `after` starts only once `before` has ended
  int ranks() const { return ranks_; }
  size_t size() const { return tasks_.size(); }
  size_t edges() const { return from_.size(); }  // data dependencies (stream order not included)
  const Task& operator[](TaskId id) const { return tasks_[static_cast<size_t>(id)]; }
  Task& operator[](TaskId id) { return tasks_[static_cast<size_t>(id)]; }
  const std::vector<Task>& tasks() const { return tasks_; }
  const std::vector<TaskId>& edge_from() const { return from_; }
  const std::vector<TaskId>& edge_to() const { return to_; }
  // The next task on the same stream (-1: the last); stream order is kept here, not as edges.
  const std::vector<TaskId>& next_on_stream() const { return next_; }

 private:
  int ranks_ = 0;
  std::vector<Task> tasks_;
  std::vector<TaskId> next_;
  std::vector<TaskId> from_, to_;
  std::vector<TaskId> last_on_stream_;  // ranks x kStreams
};

struct MemorySample {
  double time_s;
  int32_t rank;
  double bytes;  // dynamic bytes on the rank after every change at this time
};

struct Timeline {
  std::vector<double> start_s, end_s;
  std::vector<TaskId> trigger;       // the dependency whose end let the task start (-1: none)
  std::vector<double> peak_bytes;    // per rank: highest dynamic bytes
  std::vector<double> peak_time_s;   // per rank: when it was first reached
  std::vector<MemorySample> memory;  // when recorded
  double makespan_s = 0;
  uint64_t events = 0;               // heap pops: one per task completion
};

class DeadlockError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Runs the graph. Throws DeadlockError naming a stuck task when the dependencies form a cycle (a
// schedule whose order cannot be executed).
Timeline run(const Graph& g, bool record_memory = false);

// "F c3 mb5" style label, for traces and errors.
std::string label(const Task& t);

}  // namespace paraplan::sim
