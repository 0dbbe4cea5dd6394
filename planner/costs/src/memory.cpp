// The memory model. Sources per term:
// - model states: ZeRO (Rajbhandari et al. 2019, arXiv 1910.02054) §3 and Table 1: (2 + 2 + K)Psi with
//   K = 12 for mixed-precision Adam, sharded by stage; Megatron's fp32 main grads give 18 B/param
//   (Megatron-LM theoretical_memory_usage.py); DeepSpeed's layouts per estimate_zero2/3_model_states_mem_needs.
// - activations: Korthikanti et al. 2022 Table 2 via the workload's op list (workload.cpp).
// - pipeline in-flight micro-batches: pipeline.hpp.
#include "paraplan/memory.hpp"

#include <algorithm>

#include "paraplan/bytes_per_param.hpp"
#include "paraplan/context.hpp"
#include "paraplan/executor_ops.hpp"
#include "executor_stage.hpp"
#include "paraplan/pipeline.hpp"

namespace paraplan::planner {

int64_t lora_params(int64_t in, int64_t out, int rank) { return static_cast<int64_t>(rank) * (in + out); }

ModelStateBytes model_state_bytes(double trainable, double frozen_weight_bytes, double shard,
                                  const StateConventions& c) {
  ModelStateBytes s;
  const bool mixed = c.precision != Precision::fp32;
  const double wb = weight_bytes_per_param(c.precision);
  const double os = c.zero >= 1 ? shard : 1;  // optimizer states and master weights: ZeRO-1 and up
  const double gs = c.zero >= 2 ? shard : 1;  // gradients: ZeRO-2 and up
  const double ps = c.zero >= 3 ? shard : 1;  // parameters: ZeRO-3
  s.weights = (trainable * wb + frozen_weight_bytes) / ps;
  s.master = mixed ? 4 * trainable / os : 0;
  s.optimizer = optimizer_bytes_per_param(c.optimizer) * trainable / os;
  if (c.fp32_sharded_params && c.zero >= 3 && mixed) {
    // FSDP2 keeps the fp32 shard as the parameter itself: it is the master copy; 16-bit copies exist
    // only while gathered (counted as buffers).
    s.weights = (4 * trainable + frozen_weight_bytes) / ps;
    s.master = 0;
  }
  if (!mixed || c.layout == GradLayout::single) {
    s.gradients = grad_bytes_per_param(c.precision, c.grad_dtype) * trainable / gs;
  } else {
    // DeepSpeed mixed precision: 16-bit gradients plus an fp32 partition for the optimizer.
    switch (c.zero) {
      case 0: s.gradients = wb * trainable; break;
      case 1: s.gradients = wb * trainable + 4 * trainable / shard; break;
      case 2:
        s.gradients = c.layout == GradLayout::deepspeed ? (wb + 4) * trainable / shard
                                                        : wb * trainable + 4 * trainable / shard;
        break;
      default: s.gradients = 4 * trainable / shard; break;  // 16-bit grads live in the gathered buffer
    }
  }
  // Offload (ZeRO-Offload, Ren et al. 2021; DeepSpeed estimators): the optimizer step runs on the host,
  // so master weights and optimizer states move there, and with sharded gradients (ZeRO-2/3) the
  // gradient partitions too; ZeRO-Infinity (optimizer+params) also moves the parameter shards.
  if (c.offload != Offload::none) {
    s.host += s.master + s.optimizer;
    s.master = s.optimizer = 0;
    if (c.zero >= 2 || c.offload == Offload::optimizer_params) {
      s.host += s.gradients;
      s.gradients = 0;
    }
    if (c.offload == Offload::optimizer_params) {
      s.host += s.weights;
      s.weights = 0;
    }
  }
  return s;
}

namespace {

// NCCL communicators one rank joins: one per parallel group of size > 1 (Megatron parallel_state.py
// creates TP, PP, CP, DP and DP x CP groups, and EP and expert-DP groups for MoE).
int communicator_count(const Plan& plan) {
  const auto& par = plan.parallel;
  int n = 0;
  n += par.tp > 1;
  n += par.pp > 1;
  n += par.cp > 1;
  n += par.dp > 1;
  n += par.cp > 1 && par.dp > 1;  // gradients reduce over DP x CP
  n += par.ep > 1;
  n += par.ep > 1 && par.dp * par.cp / par.ep > 1;
  return n;
}

// Per-plan constants; stage(s) then costs a few multiply-adds (the search calls it for every stage of
// every plan). Model states are linear in the parameters, so each block's states are computed once
// and scaled by how many of that block a stage holds.
class MemoryModel {
 public:
  MemoryModel(const Plan& plan, const ShapeContext& ctx) : plan_(plan), ctx_(ctx) {
    const auto& par = plan.parallel;
    const auto& tr = plan.training;
    shard_dense_ = static_cast<double>(par.dp) * par.cp;
    shard_expert_ = shard_dense_ / par.ep;
    wb_ = weight_bytes_per_param(tr.precision);
    gb_ = grad_bytes_per_param(tr.precision, tr.grad_dtype);
    rc_ = static_cast<int>(tr.recompute);
    StateConventions conv;
    conv.precision = tr.precision;
    conv.grad_dtype = tr.grad_dtype;
    conv.optimizer = tr.optimizer;
    conv.zero = par.zero;
    conv.layout = ctx.fw.grad_layout;
    conv.fp32_sharded_params = ctx.fw.id == Framework::fsdp || ctx.fw.id == Framework::fsdp_compile;
    conv.offload = tr.offload;
    dense_ = states(ctx.dense, conv);
    if (plan.model.moe) moe_ = states(ctx.moe, conv);
    emb_ = states(ctx.embedding, conv);
    head_ = states(ctx.head, conv);
    head_stage_ = head_stage(plan);
    if (head_stage_ != 0 && plan.model.tied_embeddings)
      add(head_, states(ctx.tied_head, conv), 1);  // Megatron keeps a tied copy where the head is
    m_ = plan.micro_batches();
    const double tsp = ctx.w.shape.sequence_parallel && ctx.w.shape.tp > 1 ? ctx.w.shape.tp : 1;
    p2p_buffers_ = par.pp > 1 ? 2 * ctx.w.act_bytes * ctx.w.tokens * plan.model.hidden / tsp : 0;  // send + recv
    nccl_ = ctx.fw.overheads.nccl_bytes_per_communicator * communicator_count(plan);
    fp8_weight_cache_ = ctx.fw.te_fp8 && tr.precision == Precision::fp8 && par.zero < 3;
  }

  bool has_embedding(int s) const { return s == 0; }
  bool has_head(int s) const { return s == head_stage_; }
  StageMemory stage(int s, const StageLayers& layers) const { return stage(s, layers, has_embedding(s), has_head(s)); }
  // The embedding and the head where the flags say (stage_memory: the simulator's ZBV places both on stage 0).
  StageMemory stage(int s, const StageLayers& layers, bool has_embedding, bool has_head) const {
    return finish(fixed(layers, has_embedding, has_head), s);
  }

  // What a stage holds independently of its position in the pipeline: model states, buffers, the working
  // set and the activations of one micro-batch. Stages with the same layers and ends share it.
  struct Fixed {
    StageMemory st;
    double saved_per_mb = 0;    // layers and embedding, one micro-batch
    double saved_head = 0;      // the head's, one micro-batch

    bool same_as(const StageLayers& l, bool emb, bool head) const {
      return st.dense_layers == l.dense && st.moe_layers == l.moe && st.has_embedding == emb && st.has_head == head;
    }
  };
  Fixed fixed(const StageLayers& layers, bool has_embedding, bool has_head) const {
    const auto& par = plan_.parallel;
    const FrameworkProfile& fw = ctx_.fw;
    const Workload& w = ctx_.w;
    Fixed f;
    StageMemory& st = f.st;
    st.dense_layers = layers.dense;
    st.moe_layers = layers.moe;
    st.has_embedding = has_embedding;
    st.has_head = has_head;

    // --- model states ---
    Block4 b;
    add(b, dense_, st.dense_layers);
    add(b, moe_, st.moe_layers);
    if (st.has_embedding) add(b, emb_, 1);
    if (st.has_head) add(b, head_, 1);
    st.weights_bytes = b.s.weights;
    // Transformer Engine's FP8 copies of the layers' GEMM weights, row-wise and column-wise, cached for the
    // step (framework.hpp te_fp8). Not under ZeRO-3, where a layer's weights are gathered for its use only.
    if (fp8_weight_cache_)
      st.fp8_weight_cache_bytes =
          2 * (layers.dense * w.dense_layer.gemm_weight_params + layers.moe * w.moe_layer.gemm_weight_params);
    st.weights_bytes += st.fp8_weight_cache_bytes;
    st.gradients_bytes = b.s.gradients;
    st.master_weights_bytes = b.s.master;
    st.optimizer_bytes = b.s.optimizer;
    st.host_bytes = b.s.host;
    st.trainable_params = b.trainable;
    st.params = b.held;

    // --- activations of one micro-batch, and the working set ---
    f.saved_per_mb = st.dense_layers * w.dense_layer.saved_bytes[rc_] + st.moe_layers * w.moe_layer.saved_bytes[rc_];
    if (st.has_embedding) f.saved_per_mb += w.embedding.saved_bytes[0];
    if (st.has_head) f.saved_head = w.head.saved_bytes[0];
    double working = 0;
    if (st.dense_layers > 0) working = w.dense_layer.bwd_working_bytes + w.dense_layer.recompute_working_bytes[rc_];
    if (st.moe_layers > 0)
      working = std::max(working, w.moe_layer.bwd_working_bytes + w.moe_layer.recompute_working_bytes[rc_]);
    if (st.has_head) working = std::max(working, w.head.bwd_working_bytes);
    st.working_bytes = working;

    // --- communication buffers ---
    if (shard_dense_ > 1 && par.zero <= 2) st.buffers_bytes += fw.dp_bucket_bytes;
    if (shard_dense_ > 1 && par.zero == 3) {
      if (fw.id == Framework::deepspeed) {
        // DeepSpeed ZeRO-3 estimator: largest_layer_memory = 4 x largest module (16-bit params + grads).
        int64_t largest = w.params.dense_layer.largest_module;
        if (st.moe_layers) largest = std::max(largest, w.params.moe_layer.largest_module);
        if (st.has_embedding) largest = std::max(largest, w.params.embedding.largest_module);
        if (st.has_head) largest = std::max(largest, w.params.head.largest_module);
        st.buffers_bytes += 2 * wb_ * static_cast<double>(largest) / w.shape.tp;
      } else {
        // FSDP: the layer in use plus prefetched ones, gathered in 16 bits, and one layer's
        // unsharded gradients before the reduce-scatter.
        const RankParams* unit = nullptr;
        auto consider = [&](const RankParams& one, bool present) {
          if (present && (!unit || one.total() > unit->total())) unit = &one;
        };
        consider(ctx_.dense, st.dense_layers > 0);
        consider(ctx_.moe, st.moe_layers > 0);
        consider(ctx_.embedding, st.has_embedding);
        consider(ctx_.head, st.has_head);
        if (unit) {
          st.buffers_bytes += (1 + fw.zero3_prefetch_layers) * unit->total() * wb_;
          if (fw.zero3_unsharded_grads) st.buffers_bytes += unit->trainable() * gb_;
        }
      }
    }
    st.buffers_bytes += p2p_buffers_;
    return f;
  }

  // Stage s holding `f`: its in-flight micro-batches, and the overheads that scale with what it allocates.
  StageMemory finish(const Fixed& f, int s) const {
    const auto& par = plan_.parallel;
    const FrameworkProfile& fw = ctx_.fw;
    const int p = par.pp;
    StageMemory st = f.st;
    st.stage = s;
    st.inflight_microbatches = inflight_microbatches(par.pp_schedule, p, par.virtual_stages, m_, s);
    // The head's activations (fp32 logits) live from its forward to its backward: one micro-batch under
    // 1F1B and interleaving (the loss backward follows its forward), m under GPipe, and until W under the
    // zero-bubble schedules, which hold min(m, p) micro-batches (the simulator shows it).
    double head_inflight = 1.0;
    if (p > 1 && par.pp_schedule == PipelineSchedule::gpipe) head_inflight = static_cast<double>(m_);
    if (p > 1 && (par.pp_schedule == PipelineSchedule::zb_h1 || par.pp_schedule == PipelineSchedule::zbv))
      head_inflight = st.inflight_microbatches;
    const double saved = st.inflight_microbatches * f.saved_per_mb + head_inflight * f.saved_head;
    st.saved_activation_bytes = saved;
    st.activations_bytes = saved + st.working_bytes;
    if (fw.exact_executor) {
      // paraplan's executor: its schedule walked tensor by tensor (executor_stage.hpp); the peak is one
      // instant, so it is all "saved" and no separate working set is added.
      const ExecutorStage e = executor_stage(plan_, s, ctx_.embedding, ctx_.dense, ctx_.head, wb_, gb_);
      st.saved_activation_bytes = st.activations_bytes = e.activations();
      st.working_bytes = 0;
      st.buffers_bytes = e.buffers();
      if (e.nf4_weights >= 0) st.weights_bytes = e.nf4_weights;
    }

    // --- per-process overheads (GPU only) ---
    if (!plan_.cluster.gpu.is_cpu) {
      st.cuda_context_bytes = fw.overheads.cuda_context_bytes;
      st.nccl_bytes = nccl_;
      st.headroom_bytes = fw.overheads.allocator_headroom * st.allocated_bytes();
      st.overhead_bytes = st.cuda_context_bytes + st.nccl_bytes + st.headroom_bytes;
    }
    return st;
  }

 private:
  // One block's model states on one rank, and its parameters (held after ZeRO-3; trainable before ZeRO).
  struct Block4 {
    ModelStateBytes s;
    double trainable = 0, held = 0;
  };
  Block4 states(const RankParams& rp, const StateConventions& conv) const {
    Block4 b;
    const ModelStateBytes d = model_state_bytes(rp.trainable_dense, rp.frozen_bytes_dense, shard_dense_, conv);
    const ModelStateBytes e = rp.trainable_expert + rp.frozen_bytes_expert > 0
                                  ? model_state_bytes(rp.trainable_expert, rp.frozen_bytes_expert, shard_expert_, conv)
                                  : ModelStateBytes{};
    b.s.weights = d.weights + e.weights;
    b.s.gradients = d.gradients + e.gradients;
    b.s.master = d.master + e.master;
    b.s.optimizer = d.optimizer + e.optimizer;
    b.s.host = d.host + e.host;
    b.trainable = rp.trainable();
    const bool z3 = conv.zero >= 3;
    b.held = (rp.trainable_dense + rp.frozen_dense) / (z3 ? shard_dense_ : 1) +
             (rp.trainable_expert + rp.frozen_expert) / (z3 ? shard_expert_ : 1);
    return b;
  }
  static void add(Block4& to, const Block4& b, double n) {
    to.s.weights += n * b.s.weights;
    to.s.gradients += n * b.s.gradients;
    to.s.master += n * b.s.master;
    to.s.optimizer += n * b.s.optimizer;
    to.s.host += n * b.s.host;
    to.trainable += n * b.trainable;
    to.held += n * b.held;
  }

  const Plan& plan_;
  const ShapeContext& ctx_;
  double shard_dense_ = 1, shard_expert_ = 1, wb_ = 2, gb_ = 4, p2p_buffers_ = 0, nccl_ = 0;
  int rc_ = 0, head_stage_ = 0;
  long long m_ = 1;
  bool fp8_weight_cache_ = false;
  Block4 dense_, moe_, emb_, head_;
};

}  // namespace

MemoryBreakdown estimate_memory(const Plan& plan) {
  return estimate_memory(plan, make_context(plan, ContextParts::memory));
}

MemoryBreakdown estimate_memory(const Plan& plan, const ShapeContext& ctx) {
  return estimate_memory(plan, ctx, stage_layers(plan));
}

MemoryBreakdown estimate_memory(const Plan& plan, const ShapeContext& ctx, const std::vector<StageLayers>& layers) {
  const MemoryModel model(plan, ctx);
  MemoryBreakdown out;
  out.gpu_memory_bytes = plan.cluster.gpu.memory_bytes;
  out.per_stage.reserve(plan.parallel.pp);
  // Neighbouring inner stages usually hold the same layers: compute what they hold once.
  MemoryModel::Fixed fixed;
  bool have_fixed = false;
  for (int s = 0; s < plan.parallel.pp; ++s) {
    const bool emb = model.has_embedding(s), head = model.has_head(s);
    if (!have_fixed || !fixed.same_as(layers[s], emb, head)) {
      fixed = model.fixed(layers[s], emb, head);
      have_fixed = true;
    }
    const StageMemory& st = out.per_stage.emplace_back(model.finish(fixed, s));
    const double total = st.total_bytes();
    if (total > out.peak_bytes) {
      out.peak_bytes = total;
      out.worst_stage = s;
    }
  }
  out.fits = out.peak_bytes <= out.gpu_memory_bytes;
  return out;
}

StageMemory stage_memory(const Plan& plan, const ShapeContext& ctx, int stage, const StageLayers& layers,
                         bool has_embedding, bool has_head) {
  return MemoryModel(plan, ctx).stage(stage, layers, has_embedding, has_head);
}

PeakMemory peak_memory(const Plan& plan, const ShapeContext& ctx, const std::vector<StageLayers>& layers) {
  const MemoryModel model(plan, ctx);
  PeakMemory out;
  auto consider = [&](int s) {
    const double total = model.stage(s, layers[s]).total_bytes();
    if (total > out.peak_bytes) {
      out.peak_bytes = total;
      out.worst_stage = s;
    }
  };
  // Exact shortcut: a stage's memory grows with its in-flight micro-batches, which never increase with
  // the stage index (pipeline.hpp), so among inner stages holding the same layers the first is the
  // worst. Only stage 0, the last stage and the first stage of each distinct layer count can peak.
  const int p = plan.parallel.pp;
  consider(0);
  if (p > 1) consider(p - 1);
  StageLayers seen[8];
  int n_seen = 0;
  for (int s = 1; s + 1 < p; ++s) {
    bool known = false;
    for (int i = 0; i < n_seen && !known; ++i) known = seen[i].dense == layers[s].dense && seen[i].moe == layers[s].moe;
    if (known) continue;
    if (n_seen < 8) seen[n_seen++] = layers[s];
    consider(s);
  }
  out.fits = out.peak_bytes <= plan.cluster.gpu.memory_bytes;
  return out;
}

}  // namespace paraplan::planner
