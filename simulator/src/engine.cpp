// The discrete-event engine (engine.hpp): a binary heap of task completions over flat arrays.
#include "paraplan/sim/engine.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace paraplan::sim {

const char* to_string(Stream s) {
  switch (s) {
    case Stream::compute: return "compute";
    case Stream::tp: return "TP/CP/EP comm";
    case Stream::dp: return "DP grad reduce";
    case Stream::dp_gather: return "DP param gather";
    case Stream::pp_next: return "PP send to next stage";
    case Stream::pp_prev: return "PP send to previous stage";
  }
  return "?";
}

const char* to_string(TaskKind k) {
  switch (k) {
    case TaskKind::forward: return "F";
    case TaskKind::backward: return "B";
    case TaskKind::weight: return "W";
    case TaskKind::tp_hidden: return "TP (overlapped)";
    case TaskKind::tp_exposed: return "TP (exposed)";
    case TaskKind::p2p: return "p2p";
    case TaskKind::grad_reduce: return "grad reduce";
    case TaskKind::param_gather: return "ZeRO-3 gather";
    case TaskKind::grad_scatter: return "ZeRO-3 reduce-scatter";
    case TaskKind::optimizer: return "optimizer";
    case TaskKind::param_allgather: return "param all-gather";
  }
  return "?";
}

bool is_compute(TaskKind k) {
  return k == TaskKind::forward || k == TaskKind::backward || k == TaskKind::weight || k == TaskKind::optimizer;
}

std::string label(const Task& t) {
  std::string s = to_string(t.kind);
  if (t.chunk >= 0) s += fmt::format(" c{}", t.chunk);
  if (t.microbatch >= 0) s += fmt::format(" mb{}", t.microbatch);
  return s;
}

void Graph::reset(int ranks) {
  ranks_ = ranks;
  tasks_.clear();
  next_.clear();
  from_.clear();
  to_.clear();
  last_on_stream_.assign(static_cast<size_t>(ranks) * kStreams, -1);
}

void Graph::reserve(size_t tasks, size_t edges) {
  tasks_.reserve(tasks);
  next_.reserve(tasks);
  from_.reserve(edges);
  to_.reserve(edges);
}

TaskId Graph::add(const Task& t) {
  const auto id = static_cast<TaskId>(tasks_.size());
  tasks_.push_back(t);
  next_.push_back(-1);
  TaskId& last = last_on_stream_[static_cast<size_t>(t.rank) * kStreams + static_cast<size_t>(t.stream)];
  if (last >= 0) next_[static_cast<size_t>(last)] = id;
  last = id;
  return id;
}

void Graph::depend(TaskId before, TaskId after) {
  from_.push_back(before);
  to_.push_back(after);
}

namespace {

struct Event {
  double time;
  TaskId id;
};

// A binary min-heap of completions, earliest first, equal times by task id (runs are deterministic).
// Sift with a hole instead of swaps; the storage is reserved once per run.
class Heap {
 public:
  explicit Heap(size_t capacity) { v_.reserve(capacity); }
  bool empty() const { return v_.empty(); }
  const Event& top() const { return v_.front(); }
  void push(Event e) {
    size_t i = v_.size();
    v_.push_back(e);
    while (i > 0) {
      const size_t parent = (i - 1) / 2;
      if (!before(e, v_[parent])) break;
      v_[i] = v_[parent];
      i = parent;
    }
    v_[i] = e;
  }
  void pop() {
    const Event last = v_.back();
    v_.pop_back();
    const size_t n = v_.size();
    if (n == 0) return;
    size_t i = 0;
    while (true) {
      size_t c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && before(v_[c + 1], v_[c])) ++c;
      if (!before(v_[c], last)) break;
      v_[i] = v_[c];
      i = c;
    }
    v_[i] = last;
  }

 private:
  static bool before(const Event& a, const Event& b) { return a.time < b.time || (a.time == b.time && a.id < b.id); }
  std::vector<Event> v_;
};

}  // namespace

Timeline run(const Graph& g, bool record_memory) {
  const size_t n = g.size();
  const auto& tasks = g.tasks();
  // Successors in CSR form (counting sort of the edge list by source).
  std::vector<int32_t> offset(n + 1, 0), pending(n, 0);
  const auto& from = g.edge_from();
  const auto& to = g.edge_to();
  for (size_t e = 0; e < from.size(); ++e) {
    ++offset[static_cast<size_t>(from[e]) + 1];
    ++pending[static_cast<size_t>(to[e])];
  }
  const auto& next = g.next_on_stream();
  for (size_t i = 0; i < n; ++i) {
    offset[i + 1] += offset[i];
    if (next[i] >= 0) ++pending[static_cast<size_t>(next[i])];  // waits for its stream's previous task
  }
  std::vector<TaskId> succ(from.size());
  {
    std::vector<int32_t> fill(offset.begin(), offset.end() - 1);
    for (size_t e = 0; e < from.size(); ++e) succ[static_cast<size_t>(fill[static_cast<size_t>(from[e])]++)] = to[e];
  }

  Timeline tl;
  tl.start_s.assign(n, 0);
  tl.end_s.assign(n, 0);
  tl.trigger.assign(n, -1);
  const auto ranks = static_cast<size_t>(g.ranks());
  std::vector<double> bytes(ranks, 0);
  std::vector<uint8_t> touched(ranks, 0);
  std::vector<int32_t> touched_list;
  touched_list.reserve(ranks);
  tl.peak_bytes.assign(ranks, 0);
  tl.peak_time_s.assign(ranks, 0);
  if (record_memory) tl.memory.reserve(2 * n + ranks);

  Heap heap(n);
  std::vector<TaskId> ready;
  ready.reserve(n);
  for (size_t i = 0; i < n; ++i)
    if (pending[i] == 0) ready.push_back(static_cast<TaskId>(i));

  auto touch = [&](int32_t r, double delta) {
    if (delta == 0) return;
    bytes[static_cast<size_t>(r)] += delta;
    if (!touched[static_cast<size_t>(r)]) {
      touched[static_cast<size_t>(r)] = 1;
      touched_list.push_back(r);
    }
  };
  size_t done = 0;
  double now = 0;
  while (true) {
    // Start everything that became ready at `now` (after the frees of the tasks that ended at `now`).
    for (const TaskId id : ready) {
      const Task& t = tasks[static_cast<size_t>(id)];
      tl.start_s[static_cast<size_t>(id)] = now;
      touch(t.rank, t.mem_start_bytes);
      heap.push({now + t.duration_s, id});
    }
    ready.clear();
    for (const int32_t r : touched_list) {
      const auto ri = static_cast<size_t>(r);
      touched[ri] = 0;
      if (bytes[ri] > tl.peak_bytes[ri]) {
        tl.peak_bytes[ri] = bytes[ri];
        tl.peak_time_s[ri] = now;
      }
      if (record_memory) tl.memory.push_back({now, r, bytes[ri]});
    }
    touched_list.clear();
    if (heap.empty()) break;
    // Complete every task that ends at the earliest time.
    now = heap.top().time;
    while (!heap.empty() && heap.top().time == now) {
      const TaskId id = heap.top().id;
      heap.pop();
      ++tl.events;
      ++done;
      const Task& t = tasks[static_cast<size_t>(id)];
      tl.end_s[static_cast<size_t>(id)] = now;
      touch(t.rank, t.mem_end_bytes);
      auto release = [&](size_t s) {
        if (--pending[s] == 0) {
          tl.trigger[s] = id;
          ready.push_back(static_cast<TaskId>(s));
        }
      };
      if (next[static_cast<size_t>(id)] >= 0) release(static_cast<size_t>(next[static_cast<size_t>(id)]));
      for (int32_t k = offset[static_cast<size_t>(id)]; k < offset[static_cast<size_t>(id) + 1]; ++k)
        release(static_cast<size_t>(succ[static_cast<size_t>(k)]));
    }
  }
  if (done != n) {
    for (size_t i = 0; i < n; ++i)
      if (pending[i] > 0)
        throw DeadlockError(fmt::format("the schedule cannot run: task {} ({} on rank {}) waits forever for {} "
                                        "dependencies ({} of {} tasks ran)",
                                        i, label(tasks[i]), tasks[i].rank, pending[i], done, n));
  }
  tl.makespan_s = now;
  return tl;
}

}  // namespace paraplan::sim
