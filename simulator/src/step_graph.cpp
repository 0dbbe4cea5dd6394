// The step as a task graph (step_graph.hpp). Overlap rules and their sources:
// - DP gradient reduction bucket by bucket during the backward: PyTorch DDP (Li et al. 2020, VLDB,
//   "PyTorch Distributed" §3.2.3) and Megatron-Core --overlap-grad-reduce: a bucket is reduced once the
//   last backward of its layers has produced their gradients (for zero-bubble schedules, the last W);
//   without overlap every bucket waits for the end of the backward (Megatron: one bucket).
// - ZeRO-3 / FSDP: each unit (embedding, layer, head) is all-gathered before its forward and again before
//   its backward, the next unit's gather issued while the current one computes (FSDP forward/backward
//   prefetch, one unit ahead; Zhao et al. 2023, "PyTorch FSDP" §3.3), freed after use; its gradients are
//   reduce-scattered after its backward (every micro-batch, as step.cpp charges it).
// - TP/CP/EP: the part of each block's collectives the time model exposes runs on the TP stream after
//   the block's compute and the next compute waits for it; the hidden part is drawn under the compute.
// - Pipeline: a stage's output goes to the next chunk's stage as one send/recv on the sender's stream of
//   that direction (Megatron p2p_communication); chunks on the same stage (ZBV's V) pass it locally.
#include "paraplan/sim/step_graph.hpp"

#include <algorithm>
#include <cmath>

namespace paraplan::sim {

using planner::CommKind;
using planner::PipelineSchedule;

namespace {

struct SegCost {
  double compute = 0, exposed = 0, hidden = 0;
  double alloc = 0, release = 0;  // dynamic bytes taken at the start, given back at the end
  double dense = 0, expert = 0;   // trainable parameters whose gradients this segment finishes
};

class Builder {
 public:
  Builder(const Schedule& s, const StepCosts& c, const GraphOptions& o)
      : sched_(s), costs_(c), opt_(o), chunks_(s.p * s.v), m_(s.m) {
    const size_t pairs = static_cast<size_t>(chunks_) * static_cast<size_t>(m_);
    fwd_in_.assign(pairs, -1);
    fwd_out_.assign(pairs, -1);
    bwd_in_.assign(pairs, -1);
    bwd_out_.assign(pairs, -1);
  }

  StepGraph build() {
    out_.graph.reset(sched_.p);
    size_t ops = 0;
    for (const auto& st : sched_.stages) ops += st.size();
    // Per op: its compute, exposed collectives and one transfer (ZeRO-3: per unit, with gather and
    // reduce-scatter); per task about two edges (its stream and its data).
    const size_t per_op = costs_.zero3 ? 4 * static_cast<size_t>(costs_.units.size()) / costs_.chunks.size() + 4 : 3;
    out_.graph.reserve(ops * per_op + 8 * static_cast<size_t>(sched_.p), ops * per_op * 2 + 8 * static_cast<size_t>(sched_.p));
    out_.optimizer.assign(static_cast<size_t>(sched_.p), -1);
    out_.param_allgather.assign(static_cast<size_t>(sched_.p), -1);
    for (int s = 0; s < sched_.p; ++s) stage(s);
    for (int s = 0; s < sched_.p; ++s) transfers(s);
    return std::move(out_);
  }

 private:
  size_t pair(int chunk, int mb) const { return static_cast<size_t>(chunk) * static_cast<size_t>(m_) + static_cast<size_t>(mb); }

  // A unit's costs, or a share `frac` of its backward (a piece of a layer whose gradients fill several
  // buckets): the piece scales its time and parameters, keeps the unit's working set, and only the last
  // piece frees the unit's saved activations.
  static void add_unit(SegCost& c, const UnitCost& u, OpType t, bool split, double frac = 1, bool last_piece = true) {
    switch (t) {
      case OpType::F:
        c.compute += u.f_compute_s;
        c.exposed += u.f_exposed_s;
        c.hidden += u.f_hidden_s;
        c.alloc += u.saved_bytes;
        break;
      case OpType::B:
        c.compute += frac * (u.b_compute_s + (split ? 0 : u.w_compute_s));
        c.exposed += frac * u.b_exposed_s;
        c.hidden += frac * u.b_hidden_s;
        c.alloc = std::max(c.alloc, u.working_bytes);
        if (!split && last_piece) c.release += u.saved_bytes;
        break;
      case OpType::W:
        c.compute += frac * u.w_compute_s;
        if (last_piece) c.release += u.saved_bytes;
        break;
    }
    c.dense += frac * u.trainable_dense;
    c.expert += frac * u.trainable_expert;
  }

  SegCost chunk_cost(const ChunkCost& ch, OpType t, bool split) const {
    SegCost c;
    switch (t) {
      case OpType::F:
        c = {ch.f_compute_s, ch.f_exposed_s, ch.f_hidden_s, ch.saved_bytes, 0, 0, 0};
        break;
      case OpType::B:
        c = {ch.b_compute_s + (split ? 0 : ch.w_compute_s), ch.b_exposed_s, ch.b_hidden_s, ch.working_bytes,
             split ? 0 : ch.saved_bytes, 0, 0};
        break;
      case OpType::W:
        c = {ch.w_compute_s, 0, 0, 0, ch.saved_bytes, 0, 0};
        break;
    }
    return c;
  }

  // One compute segment (and its exposed collectives); returns {first task, output-ready task}.
  std::pair<TaskId, TaskId> segment(int s, const ScheduleOp& op, int chunk, const SegCost& c, bool working_set,
                                    bool grads_done) {
    Graph& g = out_.graph;
    Task t;
    t.rank = s;
    t.chunk = static_cast<int16_t>(chunk);
    t.microbatch = op.mb;
    t.kind = op.type == OpType::F ? TaskKind::forward : op.type == OpType::B ? TaskKind::backward : TaskKind::weight;
    t.duration_s = c.compute;
    t.mem_start_bytes = c.alloc;
    t.mem_end_bytes = -(c.release + (working_set ? c.alloc : 0));
    const TaskId id = g.add(t);
    if (gate_ >= 0) g.depend(gate_, id);
    gate_ = -1;
    if (c.hidden > 0) out_.hidden.push_back({id, c.hidden});
    TaskId ready = id;
    if (c.exposed > 0) {
      Task e = t;
      e.kind = TaskKind::tp_exposed;
      e.stream = Stream::tp;
      e.duration_s = c.exposed;
      e.mem_start_bytes = e.mem_end_bytes = 0;
      ready = gate_ = g.add(e);
      g.depend(id, ready);
    }
    if (grads_done && costs_.dp.reduce_grads && opt_.dp_overlap) {
      Task r = t;
      r.kind = TaskKind::grad_reduce;
      r.stream = Stream::dp;
      r.duration_s = costs_.dp.time(costs_.dp.reduce_kind, costs_.dp.grad_bytes_per_param, c.dense, c.expert);
      r.mem_start_bytes = r.mem_end_bytes = 0;
      const TaskId rid = g.add(r);
      g.depend(id, rid);
      rank_waits_.push_back(rid);
    }
    return {id, ready};
  }

  // ZeRO-3: one unit with its gather before and reduce-scatter after.
  std::pair<TaskId, TaskId> zero3_unit(int s, const ScheduleOp& op, int chunk, const UnitCost& u, bool split) {
    Graph& g = out_.graph;
    SegCost c;
    add_unit(c, u, op.type, split);
    const bool grads = op.type == OpType::W || (op.type == OpType::B && !split);
    const bool gather = op.type != OpType::W;
    TaskId gid = -1;
    if (gather) {
      Task t;
      t.rank = s;
      t.chunk = static_cast<int16_t>(chunk);
      t.microbatch = op.mb;
      t.kind = TaskKind::param_gather;
      t.stream = Stream::dp_gather;
      t.duration_s = u.gather_s;
      t.mem_start_bytes = u.gathered_bytes;
      gid = g.add(t);
      const TaskId after = opt_.dp_overlap ? prev2_ : prev1_;  // at most one unit gathered ahead
      if (after >= 0) g.depend(after, gid);
    }
    const double working = op.type == OpType::B ? c.alloc : 0;
    if (grads) c.alloc += u.unsharded_grad_bytes;
    auto [id, ready] = segment(s, op, chunk, c, false, false);
    Task& ct = g[id];
    ct.mem_end_bytes = -(c.release + working + (gather ? u.gathered_bytes : 0));
    if (gid >= 0) {
      g.depend(gid, id);
      prev2_ = prev1_;
      prev1_ = id;
    }
    if (grads) {
      Task r = ct;
      r.kind = TaskKind::grad_scatter;
      r.stream = Stream::dp;
      r.duration_s = u.scatter_s;
      r.mem_start_bytes = 0;
      r.mem_end_bytes = -u.unsharded_grad_bytes;
      const TaskId rid = g.add(r);
      g.depend(id, rid);
      rank_waits_.push_back(rid);
    }
    return {id, ready};
  }

  void stage(int s) {
    const auto& ops = sched_.stages[static_cast<size_t>(s)];
    const bool split = sched_.split_backward;
    std::vector<int> last_grad(static_cast<size_t>(sched_.v), -1);
    for (size_t i = 0; i < ops.size(); ++i)
      if (ops[i].type == (split ? OpType::W : OpType::B)) last_grad[static_cast<size_t>(ops[i].chunk)] = static_cast<int>(i);
    gate_ = prev1_ = prev2_ = -1;
    rank_waits_.clear();
    TaskId last = -1;
    for (size_t i = 0; i < ops.size(); ++i) {
      const ScheduleOp& op = ops[i];
      const int gc = sched_.model_chunk(s, op.chunk);
      const ChunkCost& ch = costs_.chunks[static_cast<size_t>(gc)];
      const bool fwd = op.type == OpType::F;
      TaskId first = -1;
      auto take = [&](std::pair<TaskId, TaskId> r) {
        if (first < 0) first = r.first;
        last = r.second;
      };
      const bool bucketed = costs_.dp.reduce_grads && opt_.dp_overlap && last_grad[static_cast<size_t>(op.chunk)] == static_cast<int>(i);
      if (costs_.zero3 || bucketed) {
        const int n = ch.units;
        SegCost acc;
        for (int k = 0; k < n; ++k) {
          const int ui = ch.first_unit + (fwd ? k : n - 1 - k);
          const UnitCost& u = costs_.units[static_cast<size_t>(ui)];
          if (costs_.zero3) {
            take(zero3_unit(s, op, gc, u, split));
            continue;
          }
          // Megatron-Core closes a bucket between parameters (param_and_grad_buffer.py), and a layer holds
          // several weight matrices: one with more than a bucket's worth is cut into floor(params / bucket)
          // pieces of its backward (at most one per matrix), each finishing its share of the gradients.
          // The embedding and the head are one matrix each and stay whole.
          const double params = u.trainable_dense + u.trainable_expert;
          const int pieces = static_cast<int>(
              std::clamp(std::floor(params / costs_.dp.bucket_params), 1.0, static_cast<double>(u.weight_tensors)));
          for (int piece = 0; piece < pieces; ++piece) {
            add_unit(acc, u, op.type, split, 1.0 / pieces, piece + 1 == pieces);
            if (acc.dense + acc.expert >= costs_.dp.bucket_params || (k + 1 == n && piece + 1 == pieces)) {
              take(segment(s, op, gc, acc, op.type == OpType::B, true));
              acc = SegCost{};
            }
          }
        }
      } else {
        take(segment(s, op, gc, chunk_cost(ch, op.type, split), op.type == OpType::B, false));
      }
      if (fwd) {
        fwd_in_[pair(gc, op.mb)] = first;
        fwd_out_[pair(gc, op.mb)] = last;
      } else if (op.type == OpType::B) {
        bwd_in_[pair(gc, op.mb)] = first;
        bwd_out_[pair(gc, op.mb)] = last;
      }
    }
    finish(s, last);
  }

  // Gradient reduction without overlap, the optimizer step and the ZeRO-1/2 parameter all-gather.
  void finish(int s, TaskId last) {
    Graph& g = out_.graph;
    const DataParallelCosts& dp = costs_.dp;
    double dense = 0, expert = 0;
    for (int local = 0; local < sched_.v; ++local) {
      const ChunkCost& ch = costs_.chunks[static_cast<size_t>(sched_.model_chunk(s, local))];
      double cd = 0, ce = 0;
      for (int k = 0; k < ch.units; ++k) {
        cd += costs_.units[static_cast<size_t>(ch.first_unit + k)].trainable_dense;
        ce += costs_.units[static_cast<size_t>(ch.first_unit + k)].trainable_expert;
      }
      dense += cd;
      expert += ce;
      if (dp.reduce_grads && !opt_.dp_overlap) {  // one bucket per chunk once the whole backward is done
        Task r;
        r.rank = s;
        r.chunk = static_cast<int16_t>(sched_.model_chunk(s, local));
        r.kind = TaskKind::grad_reduce;
        r.stream = Stream::dp;
        r.duration_s = dp.time(dp.reduce_kind, dp.grad_bytes_per_param, cd, ce);
        const TaskId rid = g.add(r);
        if (last >= 0) g.depend(last, rid);
        rank_waits_.push_back(rid);
      }
    }
    if (opt_.optimizer_s.empty()) return;
    Task o;
    o.rank = s;
    o.kind = TaskKind::optimizer;
    o.duration_s = opt_.optimizer_s[static_cast<size_t>(s)];
    const TaskId oid = g.add(o);
    if (gate_ >= 0) g.depend(gate_, oid);
    for (const TaskId w : rank_waits_) g.depend(w, oid);
    out_.optimizer[static_cast<size_t>(s)] = oid;
    if (dp.gather_params) {
      Task a = o;
      a.kind = TaskKind::param_allgather;
      a.stream = Stream::dp_gather;
      a.duration_s = dp.time(CommKind::all_gather, dp.weight_bytes_per_param, dense, expert);
      const TaskId aid = g.add(a);
      g.depend(oid, aid);
      out_.param_allgather[static_cast<size_t>(s)] = aid;
    }
  }

  TaskId send(int s, TaskId from, int to_stage, Stream dir, const ScheduleOp& op, int chunk) {
    if (to_stage == s || costs_.p2p_s <= 0) return from;
    Task t;
    t.rank = s;
    t.chunk = static_cast<int16_t>(chunk);
    t.microbatch = op.mb;
    t.kind = TaskKind::p2p;
    t.stream = dir;
    t.duration_s = costs_.p2p_s;
    const TaskId id = out_.graph.add(t);
    out_.graph.depend(from, id);
    return id;
  }

  // Activations to the next chunk's stage, gradients to the previous chunk's stage.
  void transfers(int s) {
    const bool v_shape = sched_.kind == PipelineSchedule::zbv;
    const int p = sched_.p;
    for (const ScheduleOp& op : sched_.stages[static_cast<size_t>(s)]) {
      const int gc = sched_.model_chunk(s, op.chunk);
      if (op.type == OpType::F && gc + 1 < chunks_) {
        const Stream dir = v_shape && gc >= p ? Stream::pp_prev : Stream::pp_next;
        const TaskId arrive = send(s, fwd_out_[pair(gc, op.mb)], sched_.stage_of(gc + 1), dir, op, gc);
        out_.graph.depend(arrive, fwd_in_[pair(gc + 1, op.mb)]);
      } else if (op.type == OpType::B && gc > 0) {
        const Stream dir = v_shape && gc > p ? Stream::pp_next : Stream::pp_prev;
        const TaskId arrive = send(s, bwd_out_[pair(gc, op.mb)], sched_.stage_of(gc - 1), dir, op, gc);
        out_.graph.depend(arrive, bwd_in_[pair(gc - 1, op.mb)]);
      }
    }
  }

  const Schedule& sched_;
  const StepCosts& costs_;
  const GraphOptions& opt_;
  int chunks_;
  long long m_;
  StepGraph out_;
  std::vector<TaskId> fwd_in_, fwd_out_, bwd_in_, bwd_out_;
  std::vector<TaskId> rank_waits_;  // what the stage's optimizer step waits for
  TaskId gate_ = -1;                // exposed collectives the next compute waits for
  TaskId prev1_ = -1, prev2_ = -1;  // the last two gathered compute units (ZeRO-3 prefetch window)
};

}  // namespace

StepGraph build_step_graph(const Schedule& schedule, const StepCosts& costs, const GraphOptions& options) {
  return Builder(schedule, costs, options).build();
}

}  // namespace paraplan::sim
