// The step-time model: one training step from its stages — per-stage forward/backward per micro-batch
// (blocks from op_time.cpp, recompute, exposed TP/CP/EP, pipeline p2p, ZeRO-3 gathers), the pipeline
// schedule, the data-parallel reduction and the optimizer step. Sources:
// - overlap: DP reduction bucket by bucket during the backward (PyTorch DDP, Li et al. 2020; Megatron
//   --overlap-grad-reduce), ZeRO-3 gathers prefetched behind compute (FSDP);
// - pipeline bubbles: GPipe/1F1B (p-1)(F+B), interleaved /v (Narayanan 2021 §2.2), ZB-H1
//   (p-1)(F+B-W) (Qi et al. 2023 §3.1, B the activation gradient), ZBV (pipeline_time);
// - each term's own source where it is computed.
#include "paraplan/timing.hpp"

#include <algorithm>
#include <cmath>

#include "paraplan/bytes_per_param.hpp"
#include "paraplan/calibration.hpp"
#include "paraplan/comm.hpp"
#include "paraplan/context.hpp"
#include "paraplan/pipeline.hpp"

namespace paraplan::planner {

namespace {

// HBM bytes of the optimizer step per trainable parameter this rank updates (Megatron's optimizer,
// megatron/core/optimizer/optimizer.py): clip-grad-norm reads the fp32 gradient (where the framework
// clips: framework.hpp clips_grad_norm); fused Adam reads
// gradient, master weight and both moments and writes master and moments; the updated master is copied
// to the 16-bit model weight. With 16-bit model gradients (fp16/bf16 grad_dtype) they are first copied
// into fp32 main gradients, and under fp16 unscaled and checked for inf/NaN (Float16OptimizerWithFloat16Params).
double optimizer_step_bytes_per_param(const Plan& plan, const FrameworkProfile& fw) {
  const auto& tr = plan.training;
  const bool mixed = tr.precision != Precision::fp32;
  const double states = 2 * planner::optimizer_bytes_per_param(tr.optimizer);  // read + write
  double bytes = (fw.clips_grad_norm ? 4 : 0) + 4 /* grad in the update */ + 8 /* master or fp32 weight r/w */ + states;
  if (mixed) bytes += 4 + weight_bytes_per_param(tr.precision);  // master -> 16-bit weight copy
  if (mixed && tr.grad_dtype != GradDtype::fp32) {
    bytes += weight_bytes_per_param(tr.precision) + 4;  // 16-bit grads -> fp32 main grads
    if (tr.precision == Precision::fp16) bytes += 8;    // unscale in place and check for inf/NaN
  }
  return bytes;
}
// Per-plan constants; stage(s) then costs a few multiply-adds. Collective times are affine in bytes
// (latency + bytes / bandwidth), so a stage's gradient reduction is one latency per bucket plus its bytes.
class StepModel {
 public:
  StepModel(const Plan& plan, const ShapeContext& ctx) : plan_(plan), ctx_(ctx) {
    const auto& par = plan.parallel;
    const auto& tr = plan.training;
    const GpuSpec& g = plan.cluster.gpu;
    m_ = plan.micro_batches();
    rc_ = static_cast<int>(tr.recompute);
    wb_ = weight_bytes_per_param(tr.precision);
    gb_ = grad_bytes_per_param(tr.precision, tr.grad_dtype);
    n_dense_ = par.dp * par.cp;
    n_expert_ = n_dense_ / par.ep;
    const Efficiency& e = ctx.eff;
    dp_link_ = group_link(plan, Axis::dp_cp, e);
    // Pipeline p2p: one boundary activation per micro-batch and chunk each way; Megatron's
    // scatter-gather sends 1/tp of it per TP rank (Narayanan 2021 §4.1).
    const Link pp_link = par.pp > 1 ? group_link(plan, Axis::pp, e) : Link{};
    if (par.pp > 1) {
      const double bytes = ctx.w.act_bytes * ctx.w.tokens * plan.model.hidden / par.tp;
      const double send = collective_time(CommKind::send_recv, bytes, 2, pp_link);
      p2p_ = par.virtual_stages * send;
      // Megatron-Core's interleaved schedule overlaps the steady state's transfers with compute and blocks
      // on those of the warm-up and the cool-down (parallel.pp_comm_overlap, framework.hpp
      // interleaved_p2p_overlap; schedules.py send_forward_recv_forward in the warm-up): the first stage,
      // which has the most, runs interleaved_warmup forwards and as many cool-down backwards, one transfer each.
      if (par.pp_schedule == PipelineSchedule::interleaved && par.pp_comm_overlap && ctx.fw.interleaved_p2p_overlap) {
        const double warmup = std::min(static_cast<double>(m_) * par.virtual_stages,
                                       interleaved_warmup(par.pp, par.virtual_stages, 0));
        edge_p2p_ = 2 * warmup * send;
        p2p_ = 0;
      }
    }
    // paraplan's executor sums the loss over DP, then over the stages, after every step (trainer.cpp):
    // 8 bytes each, their latencies (collective_time is 0 over one rank).
    if (ctx.fw.step_loss_all_reduces > 0)
      loss_sum_ = ctx.fw.step_loss_all_reduces *
                  (collective_time(CommKind::all_reduce, 8, n_dense_, dp_link_) +
                   (par.pp > 1 ? collective_time(CommKind::all_reduce, 8, par.pp, pp_link) : 0));
    // The update streams at optimizer_memory x the memory-bound bandwidth: as fewer bytes at that bandwidth.
    opt_bytes_ = optimizer_step_bytes_per_param(plan, ctx.fw) / e.optimizer_memory;
    overlap_dp_ = dp_overlaps(plan, e);
    mb_overhead_ = e.microbatch_overhead_s;
    step_overhead_ = e.step_overhead_s;
    offload_ = tr.offload;
    host_link_ = g.host_link_bytes_per_s;
    host_mem_ = g.host_memory_bytes_per_s;
    bucket_params_ = dp_bucket_params(plan, ctx.fw);
  }

  // Stage s; also returns its gradient reduction and parameter gather (ZeRO <= 2) issued per step.
  StageTime stage(int s, const StageLayers& layers, double& reduce, double& gather) const {
    return stage(s, layers, s == 0, s == head_stage(plan_), reduce, gather);
  }
  // The embedding and the head where the flags say (stage_time: the simulator's ZBV places both on stage 0).
  StageTime stage(int s, const StageLayers& layers, bool emb, bool head, double& reduce, double& gather) const {
    const auto& par = plan_.parallel;
    const auto& t = ctx_.times;
    StageTime st;
    st.stage = s;
    const double nd = layers.dense, nm = layers.moe;
    auto add = [&](const BlockTime& b, double n) {
      st.fwd += n * (b.fwd + b.exposed_fwd);
      st.bwd += n * (b.bwd_input + b.bwd_weight + b.exposed_bwd);
      st.bwd_weight += n * b.bwd_weight;
      st.compute += n * (b.fwd + b.bwd_input + b.bwd_weight);
      st.exposed_comm += n * (b.exposed_fwd + b.exposed_bwd);
    };
    add(t.dense_layer, nd);
    add(t.moe_layer, nm);
    if (emb) add(t.embedding, 1);
    if (head) add(t.head, 1);
    // The host (op_time.cpp): launches the device waits for, and the framework's work per micro-batch.
    auto add_host = [&](const BlockTime& b, double n) {
      st.host += n * (b.host_fwd + b.host_bwd[rc_]);
      st.fwd += n * b.host_fwd;
      st.bwd += n * b.host_bwd[rc_];
    };
    add_host(t.dense_layer, nd);
    add_host(t.moe_layer, nm);
    if (emb) add_host(t.embedding, 1);
    if (head) add_host(t.head, 1);
    st.fwd += mb_overhead_;
    st.host += mb_overhead_;
    // Recompute re-runs layer forwards inside the backward (full recompute includes their TP comm).
    const double rec = nd * t.dense_layer.recompute[rc_] + nm * t.moe_layer.recompute[rc_];
    const double rec_comm =
        rc_ == static_cast<int>(Recompute::full) ? nd * t.dense_layer.exposed_fwd + nm * t.moe_layer.exposed_fwd : 0;
    st.bwd += rec;
    st.compute += rec - rec_comm;
    st.exposed_comm += rec_comm;
    st.fwd += p2p_;
    st.bwd += p2p_;
    st.p2p = 2 * p2p_;
    st.exposed_comm += st.p2p;

    // --- data parallelism ---
    RankParams rp;
    rp.add(ctx_.dense, nd);
    rp.add(ctx_.moe, nm);
    if (emb) rp.add(ctx_.embedding, 1);
    if (head) {
      rp.add(ctx_.head, 1);
      if (par.pp > 1 && head_stage(plan_) != 0) rp.add(ctx_.tied_head, 1);  // Megatron's tied copy
    }
    reduce = gather = 0;
    if (par.zero <= 2 && ctx_.fw.dp_per_unit) {
      // paraplan's executor (framework.hpp): a collective per unit with trainable parameters. Collective
      // times are affine in bytes, so U of them cost U latencies and the bytes once.
      double units = nd * (ctx_.dense.trainable() > 0) + nm * (ctx_.moe.trainable() > 0);
      if (emb && ctx_.embedding.trainable() > 0) units += 1;
      if (head && ctx_.head.trainable() > 0) units += 1;
      units = std::max(1.0, units);
      st.dp_buckets = units;
      auto per_unit = [&](CommKind kind, double bytes_per_param) {
        return units * dp_coll(kind, bytes_per_param * rp.trainable_dense / units,
                               bytes_per_param * rp.trainable_expert / units);
      };
      if (par.zero == 2 && n_dense_ > 1) {
        // reduce-scattered in every micro-batch's backward, waited for there
        const double rs = per_unit(CommKind::reduce_scatter, gb_);
        st.bwd += rs;
        st.exposed_comm += rs;
        st.dp_in_backward = rs;
        st.dp_comm += static_cast<double>(m_) * rs;
      } else if (n_dense_ > 1) {
        reduce = per_unit(CommKind::all_reduce, gb_);  // ZeRO-0 and ZeRO-1 alike
      }
      if (par.zero >= 1 && n_dense_ > 1) gather = per_unit(CommKind::all_gather, wb_);
    } else if (par.zero <= 2) {
      // Bucket by bucket (dp_bucket_params): each bucket pays its own latency. ZeRO-1/2 then gather
      // the updated parameters.
      const CommKind kind = par.zero == 0 ? CommKind::all_reduce : CommKind::reduce_scatter;
      // Buckets take the parameters in backward order and close once full (Megatron-Core
      // param_and_grad_buffer.py; PyTorch DDP's reverse-order buckets): the input embedding, the model's
      // first parameter, lands in the last bucket, ready only when the backward ends. When it fills a
      // bucket by itself (LLaMA 3: 525 M parameters against Megatron's 40 M) it is a bucket of its own
      // here, after B - 1 even ones of the rest (the simulator adds the remainder it shares it with).
      const double emb_params = emb ? ctx_.embedding.trainable_dense : 0;
      const bool emb_bucket = emb_params > bucket_params_;
      const double rest_dense = rp.trainable_dense - (emb_bucket ? emb_params : 0);
      const double buckets = std::max(1.0, std::ceil((rest_dense + rp.trainable_expert) / bucket_params_));
      reduce = buckets * dp_coll(kind, gb_ * rest_dense / buckets, gb_ * rp.trainable_expert / buckets);
      st.dp_buckets = buckets + emb_bucket;
      if (emb_bucket) {
        st.dp_last_bucket = dp_coll(kind, gb_ * emb_params, 0);
        reduce += st.dp_last_bucket;
      }
      if (par.zero >= 1) gather = dp_coll(CommKind::all_gather, wb_ * rp.trainable_dense, wb_ * rp.trainable_expert);
    } else if (n_dense_ > 1) {
      // ZeRO-3 / FSDP: every micro-batch gathers each unit (layer, embedding, head) in the forward and
      // again in the backward, and reduce-scatters its gradients; each collective pays its latency.
      double ag = 0, rs = 0;
      auto unit = [&](const RankParams& u, double count) {
        if (count == 0) return;
        if (ctx_.fw.dp_per_unit)  // the executor gathers a unit's trainable and frozen parameters apart
          ag += count * (dp_coll(CommKind::all_gather, wb_ * u.trainable_dense, wb_ * u.trainable_expert) +
                         dp_coll(CommKind::all_gather, u.frozen_bytes_dense, u.frozen_bytes_expert));
        else
          ag += count * dp_coll(CommKind::all_gather, wb_ * u.trainable_dense + u.frozen_bytes_dense,
                                wb_ * u.trainable_expert + u.frozen_bytes_expert);
        rs += count * dp_coll(CommKind::reduce_scatter, gb_ * u.trainable_dense, gb_ * u.trainable_expert);
      };
      unit(ctx_.dense, nd);
      unit(ctx_.moe, nm);
      if (emb) unit(ctx_.embedding, 1);
      if (head) unit(ctx_.head, 1);
      const double exposed_f = overlap_dp_ ? std::max(0.0, ag - st.fwd) : ag;
      const double exposed_b = overlap_dp_ ? std::max(0.0, ag + rs - st.bwd) : ag + rs;
      st.fwd += exposed_f;
      st.bwd += exposed_b;
      st.zero3_exposed = exposed_f + exposed_b;
      st.exposed_comm += st.zero3_exposed;
      st.dp_comm = static_cast<double>(m_) * (2 * ag + rs);
    }
    gather += loss_sum_;  // after the step, with the gathers
    st.dp_comm += reduce + gather;

    // --- optimizer step (GPU, or host under offload: ZeRO-Offload, Ren et al. 2021) ---
    const double shard_d = par.zero >= 1 ? n_dense_ : 1, shard_e = par.zero >= 1 ? n_expert_ : 1;
    const double opt_params = rp.trainable_dense / shard_d + rp.trainable_expert / shard_e;
    if (offload_ == Offload::none) {
      st.optimizer = memory_bound_time(plan_, opt_bytes_ * opt_params);
    } else {
      // Gradients down and parameters up over PCIe, then the step in host memory (fp32 gradient, master
      // and moments read, master and moments written).
      const double pcie = (gb_ + wb_) * opt_params / host_link_;
      const double host = (4 + 8 + 2 * optimizer_bytes_per_param(plan_.training.optimizer)) * opt_params / host_mem_;
      st.optimizer = pcie + host;
      if (offload_ == Offload::optimizer_params) {
        // parameter shards come up from the host for the forward and again for the backward
        const double fetch = wb_ * (rp.trainable_dense / n_dense_ + rp.trainable_expert / n_expert_) / host_link_;
        st.fwd += fetch;
        st.bwd += fetch;
        st.offload_fetch = 2 * fetch;
        st.exposed_comm += st.offload_fetch;
      }
    }
    return st;
  }

  long long micro_batches() const { return m_; }
  double step_overhead() const { return step_overhead_; }
  // Pipeline transfers charged to the step rather than to every micro-batch (the overlapped interleaved
  // schedule's warm-up and cool-down ones).
  double edge_p2p() const { return edge_p2p_; }
  bool overlap_dp() const { return overlap_dp_; }  // dp_overlaps (comm.hpp)

 private:
  double dp_coll(CommKind kind, double bytes_dense, double bytes_expert) const {
    return collective_time(kind, bytes_dense, n_dense_, dp_link_) + collective_time(kind, bytes_expert, n_expert_, dp_link_);
  }

  const Plan& plan_;
  const ShapeContext& ctx_;
  long long m_ = 1;
  int rc_ = 0, n_dense_ = 1, n_expert_ = 1;
  double wb_ = 2, gb_ = 4, p2p_ = 0, opt_bytes_ = 0, host_link_ = 0, host_mem_ = 0, bucket_params_ = 1;
  double mb_overhead_ = 0, step_overhead_ = 0, loss_sum_ = 0, edge_p2p_ = 0;
  bool overlap_dp_ = true;
  Offload offload_ = Offload::none;
  Link dp_link_;
};

// The step from its stages: pipeline + exposed gradient reduction + parameter gather + optimizer.
struct StepParts {
  double step = 0, bubble = 0, dp_exposed = 0, gather_exposed = 0, optimizer = 0;
  int critical = 0;
};

// How long the gradient reduction (ZeRO <= 2) of a stage runs past the end of its backward. With overlap,
// B buckets ready at even steps of the backward T, each reduced in R/B, end max(R/B, R - T (B-1)/B) after
// it; an embedding bucket of its own (dp_last_bucket), ready at the end, is reduced after them.
double reduce_after_backward(bool overlap_dp, const StageTime& st, double reduce) {
  if (!overlap_dp) return reduce;
  const double emb = st.dp_last_bucket, rest = reduce - emb;
  const double b = emb > 0 ? std::max(1.0, st.dp_buckets - 1) : st.dp_buckets;
  return emb + std::max(rest / b, rest - st.bwd * (b - 1) / b);
}

StepParts combine(const Plan& plan, const std::vector<StageTime>& stages, const double* reduce, const double* gather,
                  long long m, double step_overhead, double edge_p2p, bool overlap_dp) {
  const auto& par = plan.parallel;
  const PipelineTime pipe = pipeline_time(par.pp_schedule, par.virtual_stages, m, stages);
  StepParts out;
  // Gradient reduction (ZeRO <= 2) starts when a stage finishes its last backward; with overlap it
  // runs bucket by bucket during that backward: B buckets ready at even steps of the backward T, each
  // reduced in R/B, end max(R/B, R - T (B - 1)/B) after the backward — the last bucket is always
  // exposed (PyTorch DDP, Li et al. 2020 §3.2.3; the simulator plays it bucket by bucket), and on the
  // first stage it holds the embedding (reduce_after_backward). Stages
  // finish their last backward one after another (last stage first): stage s has the backward of the
  // stages < s as slack.
  double slack = 0;
  for (size_t s = 0; s < stages.size(); ++s) {
    const StageTime& st = stages[s];
    out.dp_exposed = std::max(out.dp_exposed, reduce_after_backward(overlap_dp, st, reduce[s]) - slack);
    // ZeRO-1/2 gather the updated parameters after the step; with overlap, behind the next forward.
    out.gather_exposed = std::max(out.gather_exposed, overlap_dp ? gather[s] - st.fwd : gather[s]);
    out.optimizer = std::max(out.optimizer, st.optimizer);
    slack += st.bwd;
    if (st.fwd + st.bwd > stages[out.critical].fwd + stages[out.critical].bwd) out.critical = static_cast<int>(s);
  }
  out.bubble = pipe.bubble;
  out.step = pipe.total + edge_p2p + out.dp_exposed + out.gather_exposed + out.optimizer + step_overhead;
  return out;
}

}  // namespace

StepEstimate estimate_time(const Plan& plan, AttentionFlops convention) {
  StepEstimate e = estimate_time(plan, make_context(plan), step_flops(plan, convention));
  e.convention = convention;
  return e;
}

StepEstimate estimate_time(const Plan& plan, const ShapeContext& ctx, const StepFlops& flops) {
  return estimate_time(plan, ctx, flops, stage_layers(plan));
}

StepEstimate estimate_time(const Plan& plan, const ShapeContext& ctx, const StepFlops& flops,
                           const std::vector<StageLayers>& layers) {
  const StepModel model(plan, ctx);
  const int p = plan.parallel.pp;
  StepEstimate est;
  est.per_stage.reserve(p);
  std::vector<double> reduce(p), gather(p);
  for (int s = 0; s < p; ++s) est.per_stage.push_back(model.stage(s, layers[s], reduce[s], gather[s]));
  const long long m = model.micro_batches();
  const StepParts parts = combine(plan, est.per_stage, reduce.data(), gather.data(), m, model.step_overhead(), model.edge_p2p(),
                                  model.overlap_dp());
  const StageTime& cs = est.per_stage[parts.critical];
  const double md = static_cast<double>(m);
  est.critical_stage = parts.critical;
  est.step_s = parts.step;
  est.bubble_s = parts.bubble;
  est.optimizer_s = parts.optimizer;
  est.compute_s = md * cs.compute;
  est.host_s = md * cs.host + model.step_overhead();
  est.exposed_comm_s = est.step_s - est.compute_s - est.bubble_s - est.optimizer_s - est.host_s;
  est.dp_exposed_s = std::max(0.0, parts.dp_exposed) + std::max(0.0, parts.gather_exposed) + md * cs.dp_in_backward;
  est.pp_p2p_s = md * cs.p2p + model.edge_p2p();
  est.zero3_exposed_s = md * cs.zero3_exposed;
  est.tp_exposed_s = md * (cs.exposed_comm - cs.p2p - cs.zero3_exposed - cs.offload_fetch - cs.dp_in_backward);
  est.flops = flops;
  const auto& tr = plan.training;
  const double tokens = static_cast<double>(tr.global_batch) * tr.seq_len;
  const double peak_total = static_cast<double>(plan.cluster.gpus) * plan.cluster.gpu.peak_flops(tr.precision);
  est.tokens_per_s = tokens / est.step_s;
  est.tflops_per_gpu = flops.model / plan.cluster.gpus / est.step_s / 1e12;
  est.mfu = flops.model / (peak_total * est.step_s);
  est.hfu = flops.hardware / (peak_total * est.step_s);
  return est;
}

StageTime stage_time(const Plan& plan, const ShapeContext& ctx, int stage, const StageLayers& layers,
                     bool has_embedding, bool has_head) {
  double reduce = 0, gather = 0;
  return StepModel(plan, ctx).stage(stage, layers, has_embedding, has_head, reduce, gather);
}

StepSummary step_summary(const Plan& plan, const ShapeContext& ctx, const StepFlops& flops,
                         const std::vector<StageLayers>& layers) {
  const StepModel model(plan, ctx);
  const auto& par = plan.parallel;
  const int p = par.pp;
  const bool overlap_dp = model.overlap_dp();
  // Inner stages that hold the same layers are identical: compute each distinct stage once and walk
  // the stages with their class (the same result as estimate_time, without per-stage copies).
  constexpr int kMaxClasses = 10;
  StageTime cls[kMaxClasses];
  double red[kMaxClasses], gat[kMaxClasses];
  int first_of[kMaxClasses];
  int n = 0;
  int prev = -1;
  auto class_of = [&](int s) {
    if (s >= 1 && s + 1 < p) {
      // neighbours usually hold the same layers: try the previous stage's class first
      if (prev >= 0 && first_of[prev] >= 1 && first_of[prev] + 1 < p && layers[first_of[prev]].dense == layers[s].dense &&
          layers[first_of[prev]].moe == layers[s].moe)
        return prev;
      for (int i = 0; i < n; ++i) {
        const int f = first_of[i];
        if (f >= 1 && f + 1 < p && layers[f].dense == layers[s].dense && layers[f].moe == layers[s].moe) return i;
      }
    }
    if (n == kMaxClasses) return -1;
    first_of[n] = s;
    cls[n] = model.stage(s, layers[s], red[n], gat[n]);
    return n++;
  };
  double sum = 0, slack = 0, dp_exposed = 0, gather_exposed = 0, optimizer = 0;
  int crit = -1;
  StageTime overflow;  // more distinct stages than classes: computed in place
  double red_o = 0, gat_o = 0;
  for (int s = 0; s < p; ++s) {
    const int c = prev = class_of(s);
    const StageTime& st = c >= 0 ? cls[c] : (overflow = model.stage(s, layers[s], red_o, gat_o));
    const double r = c >= 0 ? red[c] : red_o, g = c >= 0 ? gat[c] : gat_o;
    sum += st.fwd + st.bwd;
    dp_exposed = std::max(dp_exposed, reduce_after_backward(overlap_dp, st, r) - slack);
    gather_exposed = std::max(gather_exposed, overlap_dp ? g - st.fwd : g);
    optimizer = std::max(optimizer, st.optimizer);
    slack += st.bwd;
    if (c >= 0 && (crit < 0 || st.fwd + st.bwd > cls[crit].fwd + cls[crit].bwd)) crit = c;
  }
  const PipelineTime pipe = pipeline_time(par.pp_schedule, par.virtual_stages, model.micro_batches(), sum, cls[crit]);
  const double step =
      pipe.total + model.edge_p2p() + std::max(0.0, dp_exposed) + std::max(0.0, gather_exposed) + optimizer +
      model.step_overhead();
  const auto& tr = plan.training;
  StepSummary out;
  out.step_s = step;
  out.tokens_per_s = static_cast<double>(tr.global_batch) * tr.seq_len / step;
  out.mfu = flops.model / (static_cast<double>(plan.cluster.gpus) * plan.cluster.gpu.peak_flops(tr.precision) * step);
  return out;
}

PipelineTime pipeline_time(PipelineSchedule schedule, int v, long long m, const std::vector<StageTime>& stages) {
  double sum = 0;
  const StageTime* crit = &stages.front();
  for (const StageTime& s : stages) {
    sum += s.fwd + s.bwd;
    if (s.fwd + s.bwd > crit->fwd + crit->bwd) crit = &s;
  }
  return pipeline_time(schedule, v, m, sum, *crit);
}

PipelineTime pipeline_time(PipelineSchedule schedule, int v, long long m, double sum, const StageTime& crit) {
  const double cmax = crit.fwd + crit.bwd;
  double bubble = sum - cmax;  // GPipe and 1F1B: (p - 1)(F + B) for uniform stages
  switch (schedule) {
    case PipelineSchedule::gpipe:
    case PipelineSchedule::one_f_one_b:
      break;
    case PipelineSchedule::interleaved:
      bubble /= v;
      break;
    case PipelineSchedule::zb_h1:
    case PipelineSchedule::zbv: {
      // Zero bubble: the weight-gradient passes W fill the pipeline's drain. F, B (activation gradient only)
      // and W per stage and micro-batch; q = p - 1 for uniform stages. Both forms were derived from the
      // simulator's execution of each schedule's order and hold exactly on uniform stages
      // (tests/simulator/test_bubbles.cpp checks them on a grid of F, B, W, p and m).
      const double f = crit.fwd, w = crit.bwd_weight, b = crit.bwd - w;
      const double q = cmax > 0 ? bubble / cmax : 0, md = static_cast<double>(m);
      if (schedule == PipelineSchedule::zb_h1) {
        // ZB-H1 (Qi et al. 2023 §3.1): (p-1)(F + B - W) — a third of 1F1B's (p-1)(F + B + W) when F = B = W,
        // DeepSeek-V3 §3.2.1's (PP-1)(F + B_full - 2W) — while W <= min(F, B); in general (p-1) max(F + B - W,
        // F, B). With m < p only m - 1 W passes fill it: (p-1)(F + B) - (m-1) W (exact when W <= min(F, B)).
        bubble = std::max(q * std::max({f + b - w, f, b}), q * (f + b) - (md - 1) * w);
      } else {
        // ZBV (Qi et al., ZB-V; PyTorch ScheduleZBVZeroBubble): two chunks per stage, each f = F/2, b = B/2,
        // w = W/2. For m >= 2p - 1 the bubble is the longest of five chains; q f when F = B = W (the
        // unavoidable fill of the V: "zero bubble" in the paper's sense). Below 2p - 1 micro-batches the
        // warm-up cannot fill: (p-1)(F + B) - (m-1) F (exact when F = B = W).
        const double f2 = f / 2, b2 = b / 2, w2 = w / 2;
        bubble = std::max({b2 * q, 2 * (b2 - w2) * q, (2 * f2 - b2) * q - std::min(w2, f2 - b2),
                           2 * (f2 - w2) * q - w2, w2 * (q - 1) + std::max(f2, b2)});
        if (md < 2 * q + 1) bubble = std::max(bubble, q * (f + b) - (md - 1) * f);
      }
      bubble = std::max(0.0, bubble);
      break;
    }
  }
  return {static_cast<double>(m) * cmax + bubble, bubble};
}

}  // namespace paraplan::planner
