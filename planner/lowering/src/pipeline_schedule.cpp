// Schedule generators. Sources:
// - GPipe: Huang et al. 2019 (arXiv 1811.06965) §2.3, Fig. 2(c): every forward, then every backward,
//   the backward in reverse micro-batch order.
// - 1F1B (PipeDream-Flush): Narayanan et al. 2021 (arXiv 2104.04473) §2.2, Fig. 3; Megatron-LM
//   forward_backward_pipelining_without_interleaving: p - s - 1 warm-up forwards on stage s, then
//   one forward and one backward in turn, then the remaining backwards.
// - interleaved 1F1B: Narayanan et al. 2021 §2.2, Fig. 4, in Megatron-Core's order
//   (megatron/core/pipeline_parallel/schedules.py, forward_backward_pipelining_with_interleaving):
//   2(p - s - 1) + (v - 1) p warm-up forwards; virtual micro-batch k runs chunk (k mod pv) / p
//   (backward: v - 1 minus that) on micro-batch (k / pv) p + k mod p.
// - ZB-H1: Qi et al. 2023, "Zero Bubble Pipeline Parallelism" (arXiv 2401.10241) §3.1, Fig. 3: 1F1B
//   with the backward split into B (activation gradient) and W (weight gradient), stage s delaying
//   its W passes by s micro-batches so that every stage holds the same number in flight; the order of
//   the authors' reference implementation (sail-sg/zero-bubble-pipeline-parallelism, DeepSpeed
//   ZeroBubbleH1Pipeline with exact semantics).
// - ZBV: the V-shaped zero-bubble schedule, Qi et al., newer version of arXiv 2401.10241 §6 ("ZB-V")
//   and Qi et al. 2024, "Pipeline Parallelism with Controllable Memory" (arXiv 2405.15362): two chunks
//   per stage, chunk s and 2p - 1 - s, so the forward goes down the stages and back up; the
//   hand-crafted order as PyTorch implements it (torch/distributed/pipelining/schedules.py,
//   ScheduleZBVZeroBubble), generated for max(m, 2p - 1) micro-batches and trimmed to m.
#include "paraplan/pipeline_schedule.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <fmt/format.h>

#include "paraplan/error.hpp"

namespace paraplan::planner {


int Schedule::model_chunk(int stage, int local) const {
  if (kind == PipelineSchedule::zbv) return local == 0 ? stage : 2 * p - 1 - stage;
  return local * p + stage;
}
int Schedule::stage_of(int model_chunk) const {
  if (kind == PipelineSchedule::zbv) return model_chunk < p ? model_chunk : 2 * p - 1 - model_chunk;
  return model_chunk % p;
}
int Schedule::local_of(int model_chunk) const {
  if (kind == PipelineSchedule::zbv) return model_chunk < p ? 0 : 1;
  return model_chunk / p;
}

namespace {

using Ops = std::vector<ScheduleOp>;
void emit(Ops& ops, OpType t, int chunk, long long mb) {
  ops.push_back({t, static_cast<int16_t>(chunk), static_cast<int32_t>(mb)});
}

Ops gpipe(long long m) {
  Ops o;
  for (long long j = 0; j < m; ++j) emit(o, OpType::F, 0, j);
  for (long long j = m - 1; j >= 0; --j) emit(o, OpType::B, 0, j);
  return o;
}

Ops one_f_one_b(int p, long long m, int s) {
  Ops o;
  const long long warm = std::min<long long>(p - s - 1, m);
  long long f = 0, b = 0;
  for (; f < warm; ++f) emit(o, OpType::F, 0, f);
  for (; f < m; ++f, ++b) {
    emit(o, OpType::F, 0, f);
    emit(o, OpType::B, 0, b);
  }
  for (; b < m; ++b) emit(o, OpType::B, 0, b);
  return o;
}

Ops interleaved(int p, int v, long long m, int s) {
  Ops o;
  const long long total = m * v, group = static_cast<long long>(p) * v;
  const long long warm = std::min<long long>(2LL * (p - s - 1) + static_cast<long long>(v - 1) * p, total);
  auto chunk = [&](long long k, bool fwd) {
    const int c = static_cast<int>((k % group) / p);
    return fwd ? c : v - 1 - c;
  };
  auto mb = [&](long long k) { return (k / group) * p + k % p; };
  for (long long k = 0; k < warm; ++k) emit(o, OpType::F, chunk(k, true), mb(k));
  for (long long i = 0; i < total - warm; ++i) {
    emit(o, OpType::F, chunk(warm + i, true), mb(warm + i));
    emit(o, OpType::B, chunk(i, false), mb(i));
  }
  for (long long i = total - warm; i < total; ++i) emit(o, OpType::B, chunk(i, false), mb(i));
  return o;
}

Ops zb_h1(int p, long long m, int s) {
  Ops o;
  long long f = 0, b = 0, w = 0;
  for (int i = 0; i < p - s - 1 && f < m; ++i) emit(o, OpType::F, 0, f++);
  for (int i = 0; i < s && f < m; ++i) {  // B without W: stage s lags its W by s micro-batches
    emit(o, OpType::F, 0, f++);
    emit(o, OpType::B, 0, b++);
  }
  while (f < m) {
    emit(o, OpType::F, 0, f++);
    emit(o, OpType::B, 0, b++);
    emit(o, OpType::W, 0, w++);
  }
  while (b < m) {
    emit(o, OpType::B, 0, b++);
    emit(o, OpType::W, 0, w++);
  }
  while (w < m) emit(o, OpType::W, 0, w++);
  return o;
}

Ops zbv(int p, long long m, int r) {
  const long long n = std::max<long long>(m, 2LL * p - 1);
  Ops o;
  long long f0 = 0, f1 = 0, b0 = 0, b1 = 0;
  for (int i = 0; i < 2 * (p - r) - 1; ++i) emit(o, OpType::F, 0, f0++);
  for (int i = 0; i < r; ++i) {
    emit(o, OpType::F, 1, f1++);
    emit(o, OpType::F, 0, f0++);
  }
  for (int i = 0; i < p - r; ++i) {
    emit(o, OpType::F, 1, f1++);
    emit(o, OpType::B, 1, b1);
    emit(o, OpType::W, 1, b1++);
  }
  while (f1 < f0 || f0 < n) {  // steady: F B W on chunk 0, then on chunk 1
    if (f0 < n) emit(o, OpType::F, 0, f0++);
    emit(o, OpType::B, 0, b0);
    emit(o, OpType::W, 0, b0++);
    emit(o, OpType::F, 1, f1++);
    emit(o, OpType::B, 1, b1);
    emit(o, OpType::W, 1, b1++);
  }
  long long w0 = b0, w1 = b1;
  for (int i = 0; i < r; ++i) {
    emit(o, OpType::B, 0, b0++);
    emit(o, OpType::B, 1, b1++);
  }
  for (int i = 0; i < p - r; ++i) {
    emit(o, OpType::B, 0, b0++);
    emit(o, OpType::W, 0, w0++);
  }
  while (w1 < b1) emit(o, OpType::W, 1, w1++);
  while (w0 < b0) emit(o, OpType::W, 0, w0++);
  std::erase_if(o, [m](const ScheduleOp& op) { return op.mb >= m; });
  return o;
}

}  // namespace

Schedule make_schedule(PipelineSchedule kind, int p, int v, long long m) {
  const std::string name = to_string(kind);
  if (p < 1) throw PlanError("parallel.pp", std::to_string(p), "must be >= 1");
  if (m < 1)
    throw PlanError("training.global_batch", fmt::format("{} micro-batches", m),
                    "must give at least one micro-batch per step");
  switch (kind) {
    case PipelineSchedule::interleaved:
      if (v < 2)
        throw PlanError("parallel.virtual_stages", std::to_string(v),
                        "the interleaved schedule needs v >= 2 model chunks per stage (v = 1 is 1f1b)");
      if (m % p != 0)
        throw PlanError("parallel.pp_schedule", name,
                        fmt::format("cannot apply: the interleaved schedule runs micro-batches in groups of pp, so "
                                    "m ({}) must be a multiple of pp ({}) (Megatron-Core)", m, p));
      break;
    case PipelineSchedule::zbv:
      if (v != 2)
        throw PlanError("parallel.virtual_stages", std::to_string(v),
                        "zbv cannot apply: it places exactly 2 model chunks per stage, in a V");
      break;
    default:
      if (v != 1)
        throw PlanError("parallel.virtual_stages", std::to_string(v),
                        fmt::format("{} has one model chunk per stage (v must be 1)", name));
  }
  Schedule s;
  s.kind = kind;
  s.p = p;
  s.v = v;
  s.m = m;
  s.split_backward = kind == PipelineSchedule::zb_h1 || kind == PipelineSchedule::zbv;
  s.stages.resize(static_cast<size_t>(p));
  for (int st = 0; st < p; ++st) {
    Ops& o = s.stages[static_cast<size_t>(st)];
    switch (kind) {
      case PipelineSchedule::gpipe: o = gpipe(m); break;
      case PipelineSchedule::one_f_one_b: o = one_f_one_b(p, m, st); break;
      case PipelineSchedule::interleaved: o = interleaved(p, v, m, st); break;
      case PipelineSchedule::zb_h1: o = zb_h1(p, m, st); break;
      case PipelineSchedule::zbv: o = zbv(p, m, st); break;
    }
  }
  return s;
}

std::vector<std::vector<int>> send_release(const Schedule& s) {
  const int p = s.p, chunks = p * s.v;
  const size_t np = static_cast<size_t>(p);
  // Where each (type, model chunk, micro-batch) runs: its op index on its stage.
  auto key = [&](OpType t, int chunk, long long mb) { return (static_cast<long long>(t) * chunks + chunk) * s.m + mb; };
  std::vector<int> index(static_cast<size_t>(3 * chunks * s.m), -1);
  for (int st = 0; st < p; ++st)
    for (size_t k = 0; k < s.stages[static_cast<size_t>(st)].size(); ++k) {
      const ScheduleOp& op = s.stages[static_cast<size_t>(st)][k];
      index[static_cast<size_t>(key(op.type, s.model_chunk(st, op.chunk), op.mb))] = static_cast<int>(k);
    }
  // The message an op receives (F of chunk c > 0 from F of c - 1; B of c < last from B of c + 1), or none.
  struct From {
    int stage = -1, op = -1;
  };
  auto receives = [&](int st, const ScheduleOp& op) {
    const int c = s.model_chunk(st, op.chunk);
    From f;
    if (op.type == OpType::F && c > 0) f.stage = s.stage_of(c - 1), f.op = index[static_cast<size_t>(key(OpType::F, c - 1, op.mb))];
    if (op.type == OpType::B && c + 1 < chunks)
      f.stage = s.stage_of(c + 1), f.op = index[static_cast<size_t>(key(OpType::B, c + 1, op.mb))];
    return f;
  };
  // Vector clocks in a topological order (the schedule is valid: some stage can always proceed).
  std::vector<std::vector<std::vector<int>>> clock(np);
  for (int st = 0; st < p; ++st) clock[static_cast<size_t>(st)].resize(s.stages[static_cast<size_t>(st)].size());
  std::vector<size_t> next(np, 0);
  for (bool progress = true; progress;) {
    progress = false;
    for (int st = 0; st < p; ++st) {
      const auto& ops = s.stages[static_cast<size_t>(st)];
      size_t& k = next[static_cast<size_t>(st)];
      while (k < ops.size()) {
        const From f = receives(st, ops[k]);
        if (f.stage >= 0 && static_cast<size_t>(f.op) >= next[static_cast<size_t>(f.stage)]) break;  // not sent yet
        std::vector<int> c = k > 0 ? clock[static_cast<size_t>(st)][k - 1] : std::vector<int>(np, -1);
        if (f.stage >= 0) {
          const auto& sender = clock[static_cast<size_t>(f.stage)][static_cast<size_t>(f.op)];
          for (size_t i = 0; i < np; ++i) c[i] = std::max(c[i], sender[i]);
        }
        c[static_cast<size_t>(st)] = static_cast<int>(k);
        clock[static_cast<size_t>(st)][k] = std::move(c);
        ++k;
        progress = true;
      }
    }
  }
  for (int st = 0; st < p; ++st)
    if (next[static_cast<size_t>(st)] != s.stages[static_cast<size_t>(st)].size())
      throw std::logic_error("pipeline schedule " + std::string(to_string(s.kind)) + ": stage " + std::to_string(st) +
                             " waits for a message that is never sent");
  std::vector<std::vector<int>> out(np);
  for (int st = 0; st < p; ++st) {
    const auto& ops = s.stages[static_cast<size_t>(st)];
    out[static_cast<size_t>(st)].assign(ops.size(), -1);
    for (size_t k = 0; k < ops.size(); ++k) {
      const ScheduleOp& op = ops[k];
      const int c = s.model_chunk(st, op.chunk);
      int to_stage = -1, to_op = -1;
      if (op.type == OpType::F && c + 1 < chunks)
        to_stage = s.stage_of(c + 1), to_op = index[static_cast<size_t>(key(OpType::F, c + 1, op.mb))];
      if (op.type == OpType::B && c > 0) to_stage = s.stage_of(c - 1), to_op = index[static_cast<size_t>(key(OpType::B, c - 1, op.mb))];
      if (to_stage < 0) continue;
      int release = static_cast<int>(ops.size());
      for (size_t x = k + 1; x < ops.size(); ++x)
        if (clock[static_cast<size_t>(st)][x][static_cast<size_t>(to_stage)] >= to_op) {
          release = static_cast<int>(x);
          break;
        }
      out[static_cast<size_t>(st)][k] = release;
    }
  }
  return out;
}

std::string to_string(const std::vector<ScheduleOp>& ops, int v) {
  std::string out;
  out.reserve(ops.size() * 6);
  for (const ScheduleOp& op : ops) {
    if (!out.empty()) out += ' ';
    out += op.type == OpType::F ? 'F' : op.type == OpType::B ? 'B' : 'W';
    out += std::to_string(op.mb);
    if (v > 1) out += fmt::format("c{}", op.chunk);
  }
  return out;
}

}  // namespace paraplan::planner
