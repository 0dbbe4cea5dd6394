// The memory model. Sources per term:
// - model states: ZeRO (Rajbhandari et al. 2019, arXiv 1910.02054) §3 and Table 1: (2 + 2 + K)Psi with
//   K = 12 for mixed-precision Adam, sharded by stage; Megatron's fp32 main grads give 18 B/param
//   (Megatron-LM theoretical_memory_usage.py); DeepSpeed's layouts per estimate_zero2/3_model_states_mem_needs.
// - activations: Korthikanti et al. 2022 Table 2 via the workload's op list (workload.cpp).
// - pipeline in-flight micro-batches: pipeline.hpp.
#include "paraplan/memory.hpp"

#include <algorithm>

#include "paraplan/pipeline.hpp"

namespace paraplan::planner {

double weight_bytes_per_param(Precision p) { return p == Precision::fp32 ? 4 : 2; }

double grad_bytes_per_param(Precision p, GradDtype g) {
  if (p == Precision::fp32) return 4;
  return g == GradDtype::fp32 ? 4 : 2;
}

double optimizer_bytes_per_param(Optimizer o) {
  switch (o) {
    case Optimizer::adam:
    case Optimizer::adamw:
      return 8;  // two fp32 moments (Kingma & Ba 2015; ZeRO's K = 12 is these 8 + the 4 B master)
    case Optimizer::sgd_momentum:
      return 4;  // one fp32 momentum buffer
    case Optimizer::sgd:
      return 0;
    case Optimizer::adam8bit:
      // Two 8-bit moments with one fp32 absmax per 2048-value block (Dettmers et al. 2021, arXiv 2110.02861 §2).
      return 2 * (1 + 4.0 / 2048);
  }
  return 8;
}

double nf4_bytes_per_param() {
  // 4-bit NF4 + double-quantised constants: 8/64 + 32/(64*256) bits (Dettmers et al. 2023, QLoRA §3).
  return (4 + 8.0 / 64 + 32.0 / (64 * 256)) / 8;
}

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

// Parameters of one block held by one rank (after TP/EP sharding, before ZeRO), split into the parts
// ZeRO shards over different groups (dense over dp*cp, experts over dp*cp/ep).
struct LocalParams {
  double trainable_dense = 0, trainable_expert = 0;
  double frozen_dense = 0, frozen_expert = 0;              // frozen base weights, in parameters
  double frozen_bytes_dense = 0, frozen_bytes_expert = 0;  // the same, in bytes
  double total() const { return trainable_dense + trainable_expert + frozen_dense + frozen_expert; }
  double trainable() const { return trainable_dense + trainable_expert; }
  void add(const LocalParams& o, double count) {
    trainable_dense += count * o.trainable_dense;
    trainable_expert += count * o.trainable_expert;
    frozen_dense += count * o.frozen_dense;
    frozen_expert += count * o.frozen_expert;
    frozen_bytes_dense += count * o.frozen_bytes_dense;
    frozen_bytes_expert += count * o.frozen_bytes_expert;
  }
};

LocalParams local_params(const BlockParams& bp, const std::optional<LoraSpec>& lora, double t, double ep) {
  auto dense = [&](const ShardedParams& s) { return s.tp_sharded / t + static_cast<double>(s.replicated); };
  auto expert = [&](const ShardedParams& s) { return static_cast<double>(s.expert) / (ep * t); };
  LocalParams lp;
  if (!lora) {
    const ShardedParams base = bp.base();
    lp.trainable_dense = dense(base);
    lp.trainable_expert = expert(base);
    return lp;
  }
  // LoRA: the base is frozen in lora.base's dtype; QLoRA's NF4 applies to linear weights only.
  const double lin_b = lora->base == LoraBase::nf4 ? nf4_bytes_per_param() : (lora->base == LoraBase::fp32 ? 4.0 : 2.0);
  const double other_b = lora->base == LoraBase::fp32 ? 4.0 : 2.0;
  lp.trainable_dense = dense(bp.lora);
  lp.frozen_dense = dense(bp.linear) + dense(bp.other);
  lp.frozen_expert = expert(bp.linear) + expert(bp.other);
  lp.frozen_bytes_dense = dense(bp.linear) * lin_b + dense(bp.other) * other_b;
  lp.frozen_bytes_expert = expert(bp.linear) * lin_b + expert(bp.other) * other_b;
  return lp;
}

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

}  // namespace

MemoryBreakdown estimate_memory(const Plan& plan) {
  const FrameworkProfile& fw = framework_profile(plan.framework());
  const Workload w = build_workload(plan, fw, shape_of(plan));
  return estimate_memory(plan, w, fw);
}

MemoryBreakdown estimate_memory(const Plan& plan, const Workload& w, const FrameworkProfile& fw_in) {
  const auto& par = plan.parallel;
  const auto& tr = plan.training;
  FrameworkProfile fw = fw_in;
  const auto& cl = plan.cluster;
  if (cl.cuda_context_bytes) fw.overheads.cuda_context_bytes = *cl.cuda_context_bytes;
  if (cl.nccl_bytes_per_communicator) fw.overheads.nccl_bytes_per_communicator = *cl.nccl_bytes_per_communicator;
  if (cl.allocator_headroom) fw.overheads.allocator_headroom = *cl.allocator_headroom;
  const int p = par.pp, v = par.virtual_stages;
  const long long m = plan.micro_batches();
  const double shard_dense = static_cast<double>(par.dp) * par.cp;
  const double shard_expert = shard_dense / par.ep;
  const double wb = weight_bytes_per_param(tr.precision);
  const double gb = grad_bytes_per_param(tr.precision, tr.grad_dtype);
  const int rc = static_cast<int>(tr.recompute);
  StateConventions conv;
  conv.precision = tr.precision;
  conv.grad_dtype = tr.grad_dtype;
  conv.optimizer = tr.optimizer;
  conv.zero = par.zero;
  conv.layout = fw.grad_layout;
  conv.fp32_sharded_params = fw.id == Framework::fsdp;
  conv.offload = tr.offload;
  const bool on_gpu = !plan.cluster.gpu.is_cpu;
  const double tsp = w.shape.sequence_parallel && w.shape.tp > 1 ? w.shape.tp : 1;

  MemoryBreakdown out;
  out.gpu_memory_bytes = plan.cluster.gpu.memory_bytes;
  const std::vector<StageLayers> layers = stage_layers(plan);
  out.per_stage.reserve(p);
  const double t = w.shape.tp, ep = w.shape.ep;
  const LocalParams dense_lp = local_params(w.params.dense_layer, tr.lora, t, ep);
  const LocalParams moe_lp = local_params(w.params.moe_layer, tr.lora, t, ep);
  const LocalParams emb_lp = local_params(w.params.embedding, tr.lora, t, ep);
  const LocalParams head_lp = local_params(w.params.head, tr.lora, t, ep);
  const LocalParams tied_lp = local_params(w.params.tied_head_copy, tr.lora, t, ep);
  for (int s = 0; s < p; ++s) {
    StageMemory st;
    st.stage = s;
    st.dense_layers = layers[s].dense;
    st.moe_layers = layers[s].moe;
    st.has_embedding = s == 0;
    st.has_head = s == p - 1;

    // --- model states ---
    LocalParams lp;
    lp.add(dense_lp, st.dense_layers);
    lp.add(moe_lp, st.moe_layers);
    if (st.has_embedding) lp.add(emb_lp, 1);
    if (st.has_head) {
      lp.add(head_lp, 1);
      if (p > 1) lp.add(tied_lp, 1);  // Megatron keeps a tied copy on the last stage
    }
    const ModelStateBytes dense = model_state_bytes(lp.trainable_dense, lp.frozen_bytes_dense, shard_dense, conv);
    const ModelStateBytes expert = model_state_bytes(lp.trainable_expert, lp.frozen_bytes_expert, shard_expert, conv);
    st.weights_bytes = dense.weights + expert.weights;
    st.gradients_bytes = dense.gradients + expert.gradients;
    st.master_weights_bytes = dense.master + expert.master;
    st.optimizer_bytes = dense.optimizer + expert.optimizer;
    st.host_bytes = dense.host + expert.host;
    st.trainable_params = lp.trainable_dense + lp.trainable_expert;
    const double ps_dense = par.zero >= 3 ? shard_dense : 1, ps_expert = par.zero >= 3 ? shard_expert : 1;
    st.params = (lp.trainable_dense + lp.frozen_dense) / ps_dense + (lp.trainable_expert + lp.frozen_expert) / ps_expert;

    // --- activations ---
    st.inflight_microbatches = inflight_microbatches(par.pp_schedule, p, v, m, s);
    const double head_inflight = (par.pp_schedule == PipelineSchedule::gpipe && p > 1) ? static_cast<double>(m) : 1.0;
    double saved = st.inflight_microbatches * (st.dense_layers * w.dense_layer.saved_bytes[rc] +
                                               st.moe_layers * w.moe_layer.saved_bytes[rc]);
    if (st.has_embedding) saved += st.inflight_microbatches * w.embedding.saved_bytes[0];
    if (st.has_head) saved += head_inflight * w.head.saved_bytes[0];
    double working = 0;
    if (st.dense_layers > 0)
      working = w.dense_layer.bwd_working_bytes + w.dense_layer.recompute_working_bytes[rc];
    if (st.moe_layers > 0)
      working = std::max(working, w.moe_layer.bwd_working_bytes + w.moe_layer.recompute_working_bytes[rc]);
    if (st.has_head) working = std::max(working, w.head.bwd_working_bytes);
    st.saved_activation_bytes = saved;
    st.working_bytes = working;
    st.activations_bytes = saved + working;

    // --- communication buffers ---
    if (shard_dense > 1 && par.zero <= 2) st.buffers_bytes += fw.dp_bucket_bytes;
    if (shard_dense > 1 && par.zero == 3) {
      if (fw.id == Framework::deepspeed) {
        // DeepSpeed ZeRO-3 estimator: largest_layer_memory = 4 x largest module (16-bit params + grads).
        int64_t largest = w.params.dense_layer.largest_module;
        if (st.moe_layers) largest = std::max(largest, w.params.moe_layer.largest_module);
        if (st.has_embedding) largest = std::max(largest, w.params.embedding.largest_module);
        if (st.has_head) largest = std::max(largest, w.params.head.largest_module);
        st.buffers_bytes += 2 * wb * static_cast<double>(largest) / w.shape.tp;
      } else {
        // FSDP: the layer in use plus prefetched ones, gathered in 16 bits, and one layer's
        // unsharded gradients before the reduce-scatter.
        const LocalParams* unit = nullptr;
        auto consider = [&](const LocalParams& one, bool present) {
          if (present && (!unit || one.total() > unit->total())) unit = &one;
        };
        consider(dense_lp, st.dense_layers > 0);
        consider(moe_lp, st.moe_layers > 0);
        consider(emb_lp, st.has_embedding);
        consider(head_lp, st.has_head);
        if (unit) {
          st.buffers_bytes += (1 + fw.zero3_prefetch_layers) * unit->total() * wb;
          if (fw.zero3_unsharded_grads) st.buffers_bytes += unit->trainable() * gb;
        }
      }
    }
    if (p > 1) st.buffers_bytes += 2 * w.act_bytes * w.tokens * plan.model.hidden / tsp;  // send + recv

    // --- per-process overheads (GPU only) ---
    if (on_gpu) {
      st.cuda_context_bytes = fw.overheads.cuda_context_bytes;
      st.nccl_bytes = fw.overheads.nccl_bytes_per_communicator * communicator_count(plan);
      st.headroom_bytes = fw.overheads.allocator_headroom * st.allocated_bytes();
      st.overhead_bytes = st.cuda_context_bytes + st.nccl_bytes + st.headroom_bytes;
    }
    out.per_stage.push_back(st);
  }
  for (const StageMemory& st : out.per_stage) {
    if (st.total_bytes() > out.peak_bytes) {
      out.peak_bytes = st.total_bytes();
      out.worst_stage = st.stage;
    }
  }
  out.fits = out.peak_bytes <= out.gpu_memory_bytes;
  return out;
}

}  // namespace paraplan::planner
