// One pipeline stage of the executor (or the whole model, pp = 1) through one step: the schedule's ops
// in order (pipeline_schedule.hpp, as executor/src/pipeline_runner.cpp runs them), each micro-batch's
// forward and backward replayed (executor_replay.cpp), received activations and gradients allocated
// where the runner receives them, sent ones freed at the op send_release names.
#include "executor_stage.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "executor_replay.hpp"
#include "paraplan/pipeline.hpp"
#include "paraplan/pipeline_schedule.hpp"

namespace paraplan::planner {

namespace {

double round_up(double n, double m) { return m <= 1 ? n : std::ceil(n / m) * m; }

// Bytes of one NF4 tensor of n weights as executor/src/nf4.cpp stores it: two 4-bit codes per byte, an
// 8-bit quantised maximum per block of 64, an fp32 scale per 256 of those, and the fp32 mean of the
// maxima (Dettmers et al. 2023 §3, double quantisation).
double nf4_tensor_bytes(double n) {
  const double nb = std::ceil(n / 64);
  return std::ceil(n / 2) + nb + 4 * std::ceil(nb / 256) + 4;
}

// QLoRA: one layer's frozen base as the executor stores it (zero_engine.cpp: the linear weights NF4,
// norms and biases bf16), and how many parameters it dequantises.
struct FrozenUnit {
  double bytes = 0, numel = 0;
};
FrozenUnit frozen_layer(const ExecDims& x) {
  FrozenUnit u;
  auto linear = [&](double n) {
    u.bytes += nf4_tensor_bytes(n);
    u.numel += n;
  };
  auto other = [&](double n) {
    u.bytes += 2 * n;
    u.numel += n;
  };
  linear(x.q * x.h);
  linear(x.k * x.h);
  linear(x.k * x.h);
  linear(x.h * x.q);
  if (x.swiglu) linear(x.f * x.h);
  linear(x.f * x.h);
  linear(x.h * x.f);
  other((x.rms ? 2 : 4) * x.h);  // two norms (and their biases)
  if (x.qkv_bias) other(x.q + 2 * x.k);
  if (x.all_bias) other(x.h + (x.swiglu ? 2 : 1) * x.f + x.h);
  return u;
}

}  // namespace

StageUnits stage_units(const Plan& plan, int stage) {
  StageUnits u;
  const std::vector<int> split = chunk_layers(plan);
  const int chunks = static_cast<int>(split.size());
  for (int c = 0; c < chunks; ++c) {
    if (stage_of_chunk(plan, c) != stage) continue;
    u.chunks.push_back(c);
    u.embedding = u.embedding || c == 0;
    u.head = u.head || c == chunks - 1;
    u.layers += split[static_cast<size_t>(c)];
  }
  return u;
}

ExecutorStage executor_stage(const Plan& plan, int stage, const RankParams& embedding, const RankParams& layer,
                             const RankParams& head, double wb, double gb) {
  const ExecDims x = exec_dims(plan);
  const StageUnits units = stage_units(plan, stage);
  const int zero = plan.parallel.zero;
  const double n = plan.parallel.dp;
  ExecutorStage out;
  // Persistent buffers: the RoPE tables and causal mask (model.cpp, made once), and ZeRO-2/3's bucket,
  // its reduce-scatter chunk and ZeRO-3's gather buffer, each for the largest unit of the stage
  // (zero_engine.cpp; units padded to a multiple of dp).
  out.tables = (x.rope ? x.s * x.hd * x.d : 0) + x.s * x.s;
  double max_t = 0, max_total = 0;
  auto consider = [&](const RankParams& p, bool present) {
    if (!present) return;
    max_t = std::max(max_t, round_up(p.trainable(), n));
    max_total = std::max(max_total, round_up(p.trainable(), n) + round_up(p.total() - p.trainable(), n));
  };
  consider(embedding, units.embedding);
  consider(layer, units.layers > 0);
  consider(head, units.head);
  if (zero >= 2) out.engine_buffers = max_t * gb * (1 + 1 / n);
  if (zero == 3) out.engine_buffers += max_total * wb;
  // A tied table used by the head on the same rank: its gradients get a bucket of their own (ZeRO-2/3)
  // and its parameters a gather buffer of their own (ZeRO-3): ZeroEngineOptions::shared_unit.
  if (plan.model.tied_embeddings && units.embedding && units.head) {
    const double t = round_up(embedding.trainable(), n), f = round_up(embedding.total() - embedding.trainable(), n);
    if (zero >= 2) out.engine_buffers += t * gb;
    if (zero == 3) out.engine_buffers += (t + f) * wb;
  }
  // QLoRA: the base as stored (NF4 linears, bf16 others), and one buffer of the compute dtype for the
  // frozen parameters of the unit running (the tied embedding shared with the head: its own).
  if (plan.training.lora && plan.training.lora->base == LoraBase::nf4) {
    const FrozenUnit lay = frozen_layer(x);
    const double emb = embedding.total() - embedding.trainable();
    double hd = head.total() - head.trainable();
    out.nf4_weights = units.layers * (lay.bytes + layer.trainable() * wb) + (units.embedding ? 2 * emb : 0) +
                      (units.head ? 2 * hd : 0);
    // The head's copy of a tied table, on a stage without the embedding (layout.cpp head_unit).
    const bool copy = plan.model.tied_embeddings && units.head && !units.embedding;
    if (copy) {
      out.nf4_weights += 2 * x.vocab_rows * x.h;
      hd += x.vocab_rows * x.h;
    }
    const bool shared = plan.model.tied_embeddings && units.embedding && units.head;
    double max_f = 0;
    if (units.layers > 0) max_f = round_up(lay.numel, n);
    if (units.embedding && !shared) max_f = std::max(max_f, round_up(emb, n));
    if (units.head) max_f = std::max(max_f, round_up(hd, n));
    out.engine_buffers += (max_f + (shared ? round_up(emb, n) : 0)) * x.d;
  }
  // The ring reduce-scatter of ZeRO-2/3 keeps one incoming chunk while a unit's gradients are reduced.
  UnitReduce rs;
  if (zero >= 2 && n > 1) {
    rs.embedding = round_up(embedding.trainable(), n) / n * gb;
    rs.layer = round_up(layer.trainable(), n) / n * gb;
    rs.head = round_up(head.trainable(), n) / n * gb;
  }

  const Schedule sched = make_schedule(plan.parallel.pp_schedule, plan.parallel.pp, plan.parallel.virtual_stages,
                                       plan.micro_batches());
  const auto& ops = sched.stages.at(static_cast<size_t>(stage));
  const std::vector<int> release = send_release(sched).at(static_cast<size_t>(stage));
  const std::vector<int> split = chunk_layers(plan);
  const int chunks = static_cast<int>(split.size());
  const double act = x.d * x.Tl * x.h;
  Replay r;
  std::vector<int> pending;  // release ops of the tensors sent and not yet dropped
  std::map<std::pair<int, long long>, Deferred> kept;  // (chunk, micro-batch) -> weight gradients for W
  for (size_t k = 0; k < ops.size(); ++k) {
    const ScheduleOp& op = ops[k];
    const int c = sched.model_chunk(stage, op.chunk);
    ChunkShape shape;
    shape.embedding = c == 0;
    shape.head = c == chunks - 1;
    shape.layers = split[static_cast<size_t>(c)];
    shape.first = c == 0;
    r.mark(to_string(std::vector<ScheduleOp>{op}, sched.v));
    const double before = r.peak;
    r.peak = r.cur;  // this op's own peak
    r.buffers_at_peak = r.buffers;
    bool received = false;
    if (op.type == OpType::F && c > 0 && sched.stage_of(c - 1) != stage) {
      r.alloc(act);
      received = true;
    }
    if (op.type == OpType::B && !shape.head) received = sched.stage_of(c + 1) != stage;
    // pipeline_runner drop_sent: after the receive (B: inside replay_backward's first allocation; the
    // order of a free and an allocation of the same op does not move the op's peak).
    auto drop = [&] {
      for (auto it = pending.begin(); it != pending.end();)
        if (*it <= static_cast<int>(k)) {
          r.free(act);
          it = pending.erase(it);
        } else {
          ++it;
        }
    };
    if (op.type == OpType::F) {
      drop();
      replay_forward(r, x, shape);
      if (!shape.head && sched.stage_of(c + 1) != stage) pending.push_back(release[k]);
    } else if (op.type == OpType::B) {
      Deferred* w = sched.split_backward ? &kept[{c, op.mb}] : nullptr;
      replay_backward(r, x, shape, rs, received, [&] { drop(); }, w);
      if (c > 0 && sched.stage_of(c - 1) != stage) pending.push_back(release[k]);
    } else {
      drop();
      auto it = kept.find({c, op.mb});
      replay_weights(r, x, it->second);
      kept.erase(it);
    }
    if (r.peak > out.peak) {
      out.peak = r.peak;
      out.buffers_at_peak = r.buffers_at_peak;
      out.peak_op = static_cast<int>(k);
    }
    r.peak = std::max(before, r.peak);
  }
  for (size_t i = 0; i < pending.size(); ++i) r.free(act);
  return out;
}

}  // namespace paraplan::planner
